"""Elastic actors on a real lattice (SPEC §5): idle → scaled to zero (deployed, 0 running) → a burst of calls
through the HTTP server provider is held while an instance starts, and every one is answered."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from lattice.cli.natsserver import free_port
from tests.conftest import wait_for

HELLO = Path(__file__).resolve().parents[2] / "actors" / "hello" / "hello.wasm"


def manifest(digest: str, port: int) -> str:
    return f"""
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {{name: sleepy, annotations: {{version: v1}}}}
spec:
  components:
    - name: hello
      type: actor
      properties: {{image: "{digest}"}}
      traits:
        - type: spreadscaler
          properties: {{min_replicas: 0, max_replicas: 4, idle_timeout_s: 1}}
        - type: linkdef
          properties: {{target: httpserver, values: {{port: "{port}"}}}}
    - name: httpserver
      type: capability
      properties: {{image: "builtin:httpserver", contract: "wasmcloud:httpserver", link_name: sleepy}}
"""


async def hello_component(client: httpx.AsyncClient) -> dict[str, Any]:
    status = (await client.get("/v1/applications/sleepy")).json()["status"]
    found: dict[str, Any] = next(c for c in status["components"] if c["name"] == "hello")
    return {**found, "type": status["type"]}


async def test_idle_actor_scales_to_zero_then_a_burst_of_100_is_all_answered(
    host_factory: Any, control_plane_factory: Any
) -> None:
    await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    uploaded = (await client.post("/v1/artifacts", content=HELLO.read_bytes())).json()
    port = free_port()
    assert (await client.put("/v1/applications/sleepy", content=manifest(uploaded["digest"], port))).status_code == 200
    url = f"http://127.0.0.1:{port}/"

    async def answers() -> bool:
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                return (await http.get(url)).status_code == 200
        except httpx.HTTPError:
            return False

    await wait_for(answers, timeout=30)

    async def at_zero() -> bool:
        hello = await hello_component(client)
        return hello["running"] == 0 and hello["desired"] == 0 and hello["type"] == "deployed"

    await wait_for(at_zero, timeout=30)  # idle for idle_timeout_s: no instance anywhere, and that is deployed
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as http:
        answers_ = await asyncio.gather(*(http.get(url) for _ in range(100)))
    assert [r.status_code for r in answers_] == [200] * 100
    # an instance started for them (heartbeats report it a moment later; idle again, it goes after 1 s)
    assert await wait_for(lambda: _running(client), timeout=30)


async def _running(client: httpx.AsyncClient) -> bool:
    return bool((await hello_component(client))["running"] >= 1)


async def test_a_call_to_a_deployed_actor_that_runs_nowhere_yet_is_held_until_it_does(
    host_factory: Any, control_plane_factory: Any
) -> None:
    """Not elastic at all: a new version (or application) whose actor is not placed yet is waited for too."""
    await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    uploaded = (await client.post("/v1/artifacts", content=HELLO.read_bytes())).json()
    placed_later = f"""
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {{name: later, annotations: {{version: v1}}}}
spec:
  components:
    - name: hello
      type: actor
      properties: {{image: "{uploaded["digest"]}"}}
      traits:
        - type: spreadscaler
          properties: {{replicas: 1, spread: [{{name: b, requirements: {{zone: b}}}}]}}
"""
    assert (await client.put("/v1/applications/later", content=placed_later)).status_code == 200
    body = {"operation": "HttpServer.HandleRequest", "payload_b64": ""}
    call = asyncio.create_task(client.post(f"/v1/actors/{uploaded['actor_id']}/invoke", json=body, timeout=30))
    await asyncio.sleep(0.5)
    assert not call.done()  # held: no host may run it yet
    await host_factory(labels={"zone": "b"})  # now one may
    response = await call
    assert response.status_code != 404 and "nobody serves" not in response.text, response.text
