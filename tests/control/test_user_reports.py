"""Defects a new user found, each pinned on a real lattice (nats-server, hosts, control plane, HTTP):
a link one of two hosts refused is not ``deployed``; calls refused before they reach an actor count in a
rollout's health; a new version's limits are enforced; one app's grant-less start never makes another
app's refused grant look deployed; the 256-instances-per-actor-per-host cap holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from lattice import claims, keys
from lattice.capability import HTTPSERVER
from lattice.cli.natsserver import free_port
from lattice.controlplane import reconciler
from tests.conftest import wait_for
from tests.host import guests

HELLO = Path(__file__).resolve().parents[2] / "actors" / "hello" / "hello.wasm"


async def status(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    result: dict[str, Any] = (await client.get(f"/v1/applications/{name}")).json()["status"]
    return result


async def lattice(host_factory: Any, control_plane_factory: Any, hosts: int = 1) -> tuple[Any, httpx.AsyncClient]:
    for _ in range(hosts):
        await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == hosts)
    return cp, client


def daemon_app(digest: str, port: int) -> str:
    return f"""
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {{name: both, annotations: {{version: v1}}}}
spec:
  components:
    - name: a
      type: actor
      properties: {{image: "{digest}"}}
      traits:
        - type: daemonscaler
          properties: {{replicas: 1}}
        - type: linkdef
          properties: {{target: httpserver, values: {{port: "{port}"}}}}
    - name: httpserver
      type: capability
      properties: {{image: "builtin:httpserver", contract: "wasmcloud:httpserver"}}
      traits:
        - type: daemonscaler
          properties: {{replicas: 1}}
"""


async def test_a_link_refused_on_one_of_two_hosts_is_not_deployed(
    host_factory: Any, control_plane_factory: Any
) -> None:
    # both hosts live in this process on 127.0.0.1: the second listener on the port finds it in use
    _cp, client = await lattice(host_factory, control_plane_factory, hosts=2)
    digest = (await client.post("/v1/artifacts", content=HELLO.read_bytes())).json()["digest"]
    port = free_port()
    assert (await client.put("/v1/applications/both", content=daemon_app(digest, port))).status_code == 200

    async def placed() -> bool:
        components = (await status(client, "both"))["components"]
        return len(components) == 2 and all(c["running"] == c["desired"] == 2 for c in components)

    await wait_for(placed, timeout=30)

    async def says_why() -> bool:
        return "in use" in (await status(client, "both"))["message"]

    await wait_for(says_why, timeout=30)
    now = await status(client, "both")
    assert now["type"] == "reconciling", now
    assert "waiting for links: wasmcloud:httpserver" in now["message"], now


ACCOUNT = keys.generate("account")


def rollout_app(digest: str, version: str, port: int) -> str:
    return f"""
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {{name: web, annotations: {{version: {version}}}}}
spec:
  policy:
    rollout: {{strategy: rolling, window_s: 4, max_error_rate: 0.2}}
  components:
    - name: hello
      type: actor
      properties: {{image: "{digest}"}}
      traits:
        - type: spreadscaler
          properties: {{replicas: 1}}
        - type: linkdef
          properties: {{target: httpserver, values: {{port: "{port}"}}}}
    - name: httpserver
      type: capability
      properties: {{image: "builtin:httpserver", contract: "wasmcloud:httpserver"}}
"""


async def test_calls_refused_before_the_actor_fail_the_rollout(host_factory: Any, control_plane_factory: Any) -> None:
    _cp, client = await lattice(host_factory, control_plane_factory)
    wasm = HELLO.read_bytes()
    good = claims.sign_actor(wasm, ACCOUNT, name="hello", caps=[HTTPSERVER])
    bad = claims.sign_actor(wasm, ACCOUNT, name="hello", caps=[])  # no wasmcloud:httpserver: every call refused
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    v1 = (await client.post("/v1/artifacts", content=good)).json()["digest"]
    await client.put("/v1/applications/web", content=rollout_app(v1, "v1", port))

    async def answers() -> bool:
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                return (await http.get(url)).status_code == 200
        except httpx.HTTPError:
            return False

    await wait_for(answers, timeout=30)
    v2 = (await client.post("/v1/artifacts", content=bad)).json()["digest"]
    await client.put("/v1/applications/web", content=rollout_app(v2, "v2", port))

    async def decided() -> bool:
        await answers()  # traffic: v2 answers 500 to each (its claims lack the capability)
        return (await status(client, "web")).get("rollout", {}).get("state") in ("complete", "rolled_back")

    await wait_for(decided, timeout=60, interval=0.05)
    rollout = (await status(client, "web"))["rollout"]
    assert rollout["state"] == "rolled_back", rollout
    assert "error rate" in rollout["reason"], rollout


def hello_app(name: str, digest: str, version: str, port: int, properties: str = "") -> str:
    return f"""
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {{name: {name}, annotations: {{version: {version}}}}}
spec:
  components:
    - name: hello
      type: actor
      properties: {{image: "{digest}"{properties}}}
      traits:
        - type: spreadscaler
          properties: {{replicas: 1}}
        - type: linkdef
          properties: {{target: httpserver, values: {{port: "{port}"}}}}
    - name: httpserver
      type: capability
      properties: {{image: "builtin:httpserver", contract: "wasmcloud:httpserver", link_name: {name}}}
"""


async def test_a_new_versions_limits_on_the_same_image_are_enforced(
    host_factory: Any, control_plane_factory: Any
) -> None:
    _cp, client = await lattice(host_factory, control_plane_factory)
    digest = (await client.post("/v1/artifacts", content=HELLO.read_bytes())).json()["digest"]
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    await client.put("/v1/applications/lim", content=hello_app("lim", digest, "v1", port))
    big = b"x" * (2 * 1024 * 1024)

    async def answers(body: bytes = b"") -> int:
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                return (await http.post(url, content=body)).status_code
        except httpx.HTTPError:
            return 0

    await wait_for(lambda: _equals(answers(), 200), timeout=30)
    assert await answers(big) == 200  # no limit of its own yet
    limited = hello_app("lim", digest, "v2", port, ", limits: {max_payload_mb: 1}")
    assert (await client.put("/v1/applications/lim", content=limited)).status_code == 200

    async def deployed_v2() -> bool:
        app = (await client.get("/v1/applications/lim")).json()
        return bool(app["deployed_version"] == "v2" and app["status"]["type"] == "deployed")

    await wait_for(deployed_v2, timeout=30)
    assert await answers(big) == 413
    assert await answers(b"small") == 200


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_one_apps_grant_less_start_never_makes_anothers_refused_grant_deployed(
    host_factory: Any, control_plane_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconciler, "REFUSAL_TTL_S", 2.0)  # the refused grant is tried again soon
    cp, client = await lattice(host_factory, control_plane_factory)
    digest = (await client.post("/v1/artifacts", content=HELLO.read_bytes())).json()["digest"]
    grant = ', wasi: {dirs: {"/data": "/etc"}}'
    await client.put("/v1/applications/grant", content=hello_app("grant", digest, "v1", free_port(), grant))

    async def kind(name: str) -> str:
        return str((await status(client, name))["type"])

    await wait_for(lambda: _equals(kind("grant"), "failed"), timeout=30)
    await client.put("/v1/applications/plain", content=hello_app("plain", digest, "v1", free_port()))
    await wait_for(lambda: _equals(kind("plain"), "deployed"), timeout=30)
    refusals = _refusals(cp, "grant")

    async def tried_again() -> bool:  # once plain runs the actor: refused again, or (the defect) deployed
        return _refusals(cp, "grant") > refusals or await kind("grant") == "deployed"

    await wait_for(tried_again, timeout=30)
    await wait_for(lambda: _equals(kind("grant"), "failed"), timeout=30)
    assert "is not under a directory this host allows" in (await status(client, "grant"))["message"]


def _refusals(cp: Any, app: str) -> int:
    return sum(
        1
        for e in cp.observer.recent
        if str(e.get("type", "")).endswith("actors_start_failed")
        and (e.get("data", {}).get("annotations") or {}).get("wasmcloud.dev/appspec") == app
    )


async def test_600_replicas_on_two_hosts_run_256_on_each_and_status_says_why(
    host_factory: Any, control_plane_factory: Any
) -> None:
    hosts = [await host_factory(), await host_factory()]
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 2)
    art = (await client.post("/v1/artifacts", content=guests.ECHO)).json()
    many = f"""
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {{name: many, annotations: {{version: v1}}}}
spec:
  components:
    - name: echo
      type: actor
      properties: {{image: "{art["digest"]}"}}
      traits:
        - type: spreadscaler
          properties: {{replicas: 600}}
"""
    await client.put("/v1/applications/many", content=many)

    def counts() -> list[int]:
        return [sum(a.count for a in h.inventory().actors) for h in hosts]

    await wait_for(lambda: counts() == [256, 256], timeout=60)
    now = await status(client, "many")
    assert now["type"] == "failed", now
    assert "600 replicas wanted, at most 512 can run (256 per actor per host on 2 eligible hosts)" in now["message"]
    assert counts() == [256, 256]
