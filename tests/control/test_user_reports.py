"""Defects a new user found, each pinned on a real lattice (nats-server, hosts, control plane, HTTP):
a link one of two hosts refused is not ``deployed``; calls refused before they reach an actor count in a
rollout's health; a new version's limits are enforced; one app's grant-less start never makes another
app's refused grant look deployed; the 256-instances-per-actor-per-host cap holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from lattice import claims, keys
from lattice.capability import HTTPSERVER
from lattice.cli.natsserver import free_port
from tests.conftest import wait_for

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
