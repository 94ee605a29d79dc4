"""The control plane API end to end: real nats-server, real hosts, real HTTP on a socket."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import wasmtime

from tests.conftest import wait_for
from tests.host import guests


def manifest(name: str, image: str, replicas: int = 1, version: str = "v1", extra: str = "") -> str:
    return f"""
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: {name}
  annotations:
    version: {version}
spec:
  components:
    - name: echo
      type: actor
      properties:
        image: {image}
      traits:
        - type: spreadscaler
          properties:
            replicas: {replicas}
{extra}"""


async def upload(client: httpx.AsyncClient, wasm: bytes) -> dict[str, Any]:
    response = await client.post("/v1/artifacts", content=wasm, headers={"content-type": "application/wasm"})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def status(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    result: dict[str, Any] = (await client.get(f"/v1/applications/{name}")).json()
    return result


async def test_deploy_invoke_scale_and_undeploy(host_factory: Any, control_plane_factory: Any) -> None:
    hosts = [await host_factory(), await host_factory(), await host_factory()]
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 3)
    art = await upload(client, guests.ECHO)
    assert art["digest"].startswith("sha256:") and art["actor_id"].startswith("MU")

    put = await client.put("/v1/applications/echo", content=manifest("echo", art["digest"], replicas=3))
    assert put.status_code == 200, put.text
    await wait_for(lambda: _is(client, "echo", "deployed"))
    app = await status(client, "echo")
    placements = app["status"]["components"][0]["placements"]
    assert sorted(p["count"] for p in placements) == [1, 1, 1]  # spread by load: one per idle host

    invoke = await client.post(
        f"/v1/actors/{art['actor_id']}/invoke",
        json={"operation": "Echo.Echo", "payload_b64": base64.b64encode(b"hi").decode()},
    )
    assert invoke.status_code == 200, invoke.text
    assert base64.b64decode(invoke.json()["payload_b64"]) == b"hi"

    await client.put("/v1/applications/echo", content=manifest("echo", art["digest"], replicas=1, version="v2"))
    await wait_for(lambda: sum(h.actors[art["actor_id"]].count for h in hosts if art["actor_id"] in h.actors) == 1)
    app = await status(client, "echo")
    assert [v["version"] for v in app["versions"]] == ["v1", "v2"]

    assert (await client.delete("/v1/applications/echo")).status_code == 200
    await wait_for(lambda: all(art["actor_id"] not in h.actors for h in hosts))
    assert (await client.get("/v1/applications/echo")).status_code == 404


async def _is(client: httpx.AsyncClient, name: str, kind: str) -> bool:
    return bool((await status(client, name))["status"]["type"] == kind)


async def test_bad_manifests_name_field_and_line(host_factory: Any, control_plane_factory: Any) -> None:
    _, client = await control_plane_factory()
    bad = manifest("x", "sha256:" + "0" * 64, replicas=1).replace("replicas: 1", "replicas: -2")
    response = await client.put("/v1/applications/x", content=bad)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail["field"].endswith("replicas") and detail["line"] == 17
    missing = await client.put("/v1/applications/x", content=manifest("x", "sha256:" + "0" * 64))
    assert missing.status_code == 400 and "upload it first" in missing.text
    assert (await client.put("/v1/applications/x", content=b"{not yaml: [")).status_code == 400
    renamed = await client.put("/v1/applications/y", content=manifest("x", "builtin:httpserver"))
    assert renamed.status_code == 400


async def test_bad_artifacts_are_refused_with_the_reason(control_plane_factory: Any) -> None:
    _, client = await control_plane_factory()
    garbage = await client.post("/v1/artifacts", content=b"garbage")
    assert garbage.status_code == 400 and "magic" in garbage.text
    not_wapc = await client.post("/v1/artifacts", content=b"\0asm\x01\0\0\0")
    assert not_wapc.status_code == 400 and "__guest_call" in not_wapc.text
    for wat, reason in (
        ('(import "evil" "thing" (func))', "imports evil.thing"),
        ('(import "wapc" "__host_call" (func (param i32)))', "does not match the waPC ABI"),
    ):
        module = wasmtime.wat2wasm(
            f'(module {wat} (memory (export "memory") 1)'
            ' (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1))'
        )
        refused = await client.post("/v1/artifacts", content=bytes(module))
        assert refused.status_code == 400 and reason in refused.text, refused.text


async def test_unknown_actor_invoke_is_404(control_plane_factory: Any) -> None:
    _, client = await control_plane_factory()
    response = await client.post(f"/v1/actors/M{'A' * 55}/invoke", json={"operation": "X.Y", "payload_b64": ""})
    assert response.status_code == 404


async def test_trap_is_502_and_actor_keeps_serving(host_factory: Any, control_plane_factory: Any) -> None:
    await host_factory()
    _cp, client = await control_plane_factory()
    art = await upload(client, guests.TRAPS)
    await client.put("/v1/applications/trap", content=manifest("trap", art["digest"]))
    await wait_for(lambda: _is(client, "trap", "deployed"))
    for _ in range(2):
        response = await client.post(f"/v1/actors/{art['actor_id']}/invoke", json={"operation": "X.Y"})
        assert response.status_code == 502 and "unreachable" in response.text


async def test_bearer_token_auth(control_plane_factory: Any) -> None:
    _, client = await control_plane_factory(api_token="s3cret")
    assert (await client.get("/v1/hosts")).status_code == 401
    assert (await client.get("/v1/hosts", headers={"authorization": "Bearer nope"})).status_code == 403
    assert (await client.get("/v1/hosts", headers={"authorization": "Bearer s3cret"})).status_code == 200
    assert (await client.get("/healthz")).status_code == 200


async def test_no_eligible_host_is_failed_not_reconciling(host_factory: Any, control_plane_factory: Any) -> None:
    await host_factory(labels={"zone": "west"})
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    art = await upload(client, guests.ECHO)
    spread = manifest("east", art["digest"]).replace(
        "replicas: 1",
        "replicas: 1\n            spread:\n              - name: east\n                requirements: {zone: east}",
    )
    assert (await client.put("/v1/applications/east", content=spread)).status_code == 200
    await wait_for(lambda: _is(client, "east", "failed"))
    assert "zone" in (await status(client, "east"))["status"]["message"]


async def test_host_refusal_reason_reaches_the_status(host_factory: Any, control_plane_factory: Any) -> None:
    await host_factory(allow_unsigned=False)
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    art = await upload(client, guests.ECHO)
    await client.put("/v1/applications/unsigned", content=manifest("unsigned", art["digest"]))
    await wait_for(lambda: _is(client, "unsigned", "failed"))
    assert "unsigned actors are not allowed" in (await status(client, "unsigned"))["status"]["message"]


async def test_status_shows_each_actors_grants(host_factory: Any, control_plane_factory: Any, tmp_path: Any) -> None:
    await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    art = await upload(client, guests.ECHO)
    granted = manifest("granted", art["digest"]).replace(
        f"image: {art['digest']}",
        f"image: {art['digest']}\n        wasi: {{dirs: {{/data: {tmp_path}}}, readonly: true}}\n"
        "        limits: {deadline_ms: 500}",
    )
    assert (await client.put("/v1/applications/granted", content=granted)).status_code == 200, granted
    component = (await status(client, "granted"))["status"]["components"][0]
    assert component["grants"] == {
        "wasi": {"dirs": {"/data": str(tmp_path)}, "readonly": True},
        "limits": {"deadline_ms": 500},
    }


async def test_a_refusing_host_is_passed_over_and_failed_when_all_refuse(
    host_factory: Any, control_plane_factory: Any
) -> None:
    strict = await host_factory(allow_unsigned=False)
    lenient = await host_factory(allow_unsigned=True)
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 2)
    art = await upload(client, guests.ECHO)
    await client.put("/v1/applications/picky", content=manifest("picky", art["digest"], replicas=2))
    await wait_for(lambda: _is(client, "picky", "deployed"), timeout=20)
    assert art["actor_id"] in lenient.actors and art["actor_id"] not in strict.actors
    # a module both hosts load but neither may run: every eligible host refuses → failed, with the reasons
    bad = await upload(client, guests.host_caller("wasmcloud:keyvalue", "KeyValue.Get"))
    await strict.shutdown()
    await lenient.shutdown()
    await host_factory(allow_unsigned=False)
    await host_factory(allow_unsigned=False)
    await wait_for(lambda: len(cp.hosts()) == 2, timeout=30)
    await client.put("/v1/applications/refused", content=manifest("refused", bad["digest"]))
    await wait_for(lambda: _is(client, "refused", "failed"), timeout=20)
    message = (await status(client, "refused"))["status"]["message"]
    assert "refused by every eligible host" in message and message.count("unsigned actors are not allowed") == 2


async def test_file_images_are_read_only_under_the_files_root(control_plane_factory: Any, tmp_path: Any) -> None:
    (tmp_path / "echo.wasm").write_bytes(guests.ECHO)
    _, closed = await control_plane_factory()
    refused = await closed.put("/v1/applications/f", content=manifest("f", f"file://{tmp_path}/echo.wasm"))
    assert refused.status_code == 400 and "--files-root" in refused.text
    _, rooted = await control_plane_factory(files_root=tmp_path)
    ok = await rooted.put("/v1/applications/f", content=manifest("f", "file://echo.wasm"))
    assert ok.status_code == 200, ok.text
    outside = await rooted.put("/v1/applications/g", content=manifest("g", "file:///etc/passwd"))
    assert outside.status_code == 400 and "outside" in outside.text


async def test_one_application_name_rule_and_message_for_manifests_and_routes(control_plane_factory: Any) -> None:
    """New-user finding: a route said names may use '/', '=' and '.' and be 512 long; manifests allow neither."""
    _, client = await control_plane_factory()
    for bad, says in (("é", "may hold only ASCII letters, digits, '-' and '_'"), ("n" * 101, "at most 100")):
        applied = await client.put("/v1/applications/x", content=manifest(bad, "file://echo.wasm"))
        routed = await client.get(f"/v1/applications/{bad}")
        deleted = await client.delete(f"/v1/applications/{bad}")
        assert applied.status_code == routed.status_code == deleted.status_code == 400, (applied.text, routed.text)
        assert says in applied.text and says in routed.json()["detail"] and says in deleted.json()["detail"]
        assert "'/'" not in routed.text and "512" not in routed.text
    assert (await client.get("/v1/applications/a.b")).status_code == 400
    assert (await client.get("/v1/applications/" + "n" * 100)).status_code == 404


async def test_links_api_checks_ids(control_plane_factory: Any) -> None:
    _, client = await control_plane_factory()
    good = {"actor_id": "MU" + "A" * 54, "provider_id": "V" + "B" * 55, "contract_id": "wasmcloud:keyvalue"}
    assert (await client.put("/v1/links", json=good)).status_code == 200
    for field, value in (("actor_id", "nope"), ("provider_id", "M" + "A" * 55), ("contract_id", "keyvalue")):
        response = await client.put("/v1/links", json={**good, field: value})
        assert response.status_code == 422 and field in response.text
    deleted = await client.delete(f"/v1/links/{good['actor_id']}/wasmcloud:keyvalue/default")
    assert deleted.status_code == 200


async def test_api_docs_are_served_without_internet(control_plane_factory: Any) -> None:
    _, client = await control_plane_factory()
    page = await client.get("/docs")
    assert page.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in page.text
    assert (await client.get("/docs-assets/swagger-ui-bundle.js")).status_code == 200
    assert (await client.get("/openapi.json")).json()["info"]["title"] == "lattice control plane"


async def test_component_artifacts_are_checked_like_modules(control_plane_factory: Any) -> None:
    from tests.host.component.guests import probe, probe_importing

    _, client = await control_plane_factory()
    accepted = await client.post("/v1/artifacts", content=probe())
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["actor_id"].startswith("MU") and accepted.json()["abi"] == "component"
    evil = await client.post("/v1/artifacts", content=probe_importing("evil:thing/api@1.0.0"))
    assert evil.status_code == 400 and "imports evil:thing/api@1.0.0" in evil.text, evil.text
    empty = await client.post("/v1/artifacts", content=bytes(wasmtime.wat2wasm("(component)")))
    assert empty.status_code == 400 and "exports neither lattice:actor/guest@0.1.0" in empty.text, empty.text
