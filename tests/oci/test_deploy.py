"""Manifest images from a real registry: pulled by the control plane, verified, cached, run; bad ones fail whole."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx

from lattice import claims, keys, oci
from lattice.cli.natsserver import free_port
from tests.conftest import wait_for
from tests.control.test_api import manifest, status
from tests.host import guests
from tests.oci.registry import Registry, push_raw


async def _state(client: httpx.AsyncClient, name: str) -> str:
    return str((await status(client, name))["status"]["type"])


async def _echo(client: httpx.AsyncClient, actor_id: str) -> bytes:
    response = await client.post(
        f"/v1/actors/{actor_id}/invoke",
        json={"operation": "Echo.Echo", "payload_b64": base64.b64encode(b"from the registry").decode()},
    )
    assert response.status_code == 200, response.text
    return base64.b64decode(response.json()["payload_b64"])


async def test_oci_images_are_pulled_verified_cached_and_run(
    registry: Registry, host_factory: Any, control_plane_factory: Any
) -> None:
    host = await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    digest = oci.push(oci.parse_reference(f"{registry.address}/actors/echo:0.1.0"), guests.ECHO, insecure=True)

    put = await client.put(
        "/v1/applications/echo", content=manifest("echo", f"oci://{registry.address}/actors/echo:0.1.0")
    )
    assert put.status_code == 200, put.text
    await wait_for(lambda: _is(client, "echo", "deployed"))
    artifacts = (await client.get("/v1/artifacts")).json()
    stored = [a for a in artifacts if a["digest"] == oci.sha256_digest(guests.ECHO)]
    assert len(stored) == 1  # the same store as uploads: hosts fetched it from there
    assert await _echo(client, stored[0]["actor_id"]) == b"from the registry"

    # a bare reference pinned by digest (as wadm manifests write them): pulled once, then from the cache
    pinned = f"{registry.address}/actors/echo@{digest}"
    assert (
        await client.put("/v1/applications/echo", content=manifest("echo", pinned, version="v2"))
    ).status_code == 200
    await wait_for(lambda: _is(client, "echo", "deployed"))
    registry.stop()  # the registry is gone: a pinned reference is still known, a tag is not
    again = await client.put("/v1/applications/pinned", content=manifest("pinned", pinned))
    assert again.status_code == 200
    await wait_for(lambda: _is(client, "pinned", "deployed"))
    assert host.actors[stored[0]["actor_id"]].count == 2


async def _is(client: httpx.AsyncClient, name: str, kind: str) -> bool:
    return await _state(client, name) == kind


async def test_bad_registry_images_fail_the_application_whole(
    registry: Registry, host_factory: Any, control_plane_factory: Any, tmp_path: Path
) -> None:
    host = await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    ref = f"{registry.address}/actors/echo:1"
    oci.push(oci.parse_reference(ref), guests.ECHO, insecure=True)
    not_wasm = f"{registry.address}/actors/notes:1"
    push_raw(
        not_wasm,
        b"\x1f\x8b",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.config.v1+json",
        tmp_path,
    )
    corrupt = f"{registry.address}/actors/corrupt:1"
    oci.push(oci.parse_reference(corrupt), guests.LOOPS, insecure=True)
    registry.blob_path(oci.sha256_digest(guests.LOOPS)).write_bytes(guests.TRAPS)
    future = claims.sign_actor(guests.ECHO, keys.generate("account"), name="later", caps=(), not_before=9e9)
    unripe = f"{registry.address}/actors/unripe:1"
    oci.push(oci.parse_reference(unripe), future, insecure=True)
    cases = {
        "bad-claims": (unripe, "is not a usable actor: actor claims not valid before"),
        "unknown-tag": (f"{registry.address}/actors/echo:9.9.9", "no tag '9.9.9'"),
        "registry-down": (f"oci://127.0.0.1:{free_port()}/actors/echo:1", "unreachable"),
        "digest-mismatch": (corrupt, "digest mismatch"),
        "not-wasm": (not_wasm, "not a Wasm artifact"),
    }
    for name, (image, reason) in cases.items():
        # a good actor next to the bad one: it must not start either (nothing half-deployed)
        extra = f"""    - name: good
      type: actor
      properties:
        image: {ref}
"""
        put = await client.put(f"/v1/applications/{name}", content=manifest(name, image, extra=extra))
        assert put.status_code == 200, put.text  # stored...
        body = put.json()
        assert body["status"]["type"] == "failed" and reason in body["status"]["message"], body["status"]
        assert "echo:" in body["status"]["message"]  # ...naming the component
    got = (await client.get("/v1/applications")).json()
    assert {a["name"] for a in got} == set(cases)
    assert all(a["status"]["type"] == "failed" for a in got)
    assert not host.actors  # nothing of any of them runs

    # the registry serves the tag later: applying the same manifest again deploys it
    oci.push(oci.parse_reference(f"{registry.address}/actors/echo:9.9.9"), guests.ECHO, insecure=True)
    image = cases["unknown-tag"][0]
    extra = f"    - name: good\n      type: actor\n      properties:\n        image: {ref}\n"
    retry = await client.put("/v1/applications/unknown-tag", content=manifest("unknown-tag", image, extra=extra))
    assert retry.status_code == 200
    await wait_for(lambda: _is(client, "unknown-tag", "deployed"))


async def test_registry_logins_come_from_the_docker_config_file(
    auth_registry: Registry, host_factory: Any, control_plane_factory: Any, tmp_path: Path
) -> None:
    await host_factory()
    ref = f"{auth_registry.address}/private/echo:1"
    oci.push(
        oci.parse_reference(ref), guests.ECHO, insecure=True, credentials=oci.Credentials("lattice", "s3cret-pass")
    )
    config = tmp_path / "docker-config.json"
    config.write_text(json.dumps({"auths": {}}))
    _, client = await control_plane_factory(oci_auth_file=config)
    denied = await client.put("/v1/applications/private", content=manifest("private", ref))
    assert denied.json()["status"]["type"] == "failed" and "wants credentials" in denied.json()["status"]["message"]
    auth = base64.b64encode(b"lattice:s3cret-pass").decode()
    config.write_text(json.dumps({"auths": {auth_registry.address: {"auth": auth}}}))
    assert (await client.put("/v1/applications/private", content=manifest("private", ref))).status_code == 200
    await wait_for(lambda: _is(client, "private", "deployed"))


async def test_a_host_told_an_oci_reference_pulls_it_itself(registry: Registry, host_factory: Any) -> None:
    """As ``wash ctl start actor REF`` does with a wasmCloud host: the control interface takes OCI references."""
    from tests.host.test_host import command

    host = await host_factory()
    ref = f"{registry.address}/actors/echo:1"
    oci.push(oci.parse_reference(ref), guests.ECHO, insecure=True)
    reply = await command(host, "scale", {"actor_ref": f"oci://{ref}", "count": 1, "annotations": {"app": "t"}})
    assert reply["accepted"], reply
    assert await host.invoke(reply["actor_id"], "Echo.Echo", b"pulled by the host") == b"pulled by the host"
    missing = await command(host, "scale", {"actor_ref": f"{registry.address}/actors/echo:2", "count": 1})
    assert not missing["accepted"] and "no tag '2'" in missing["error"]
