"""The main path end to end: HTTP → httpserver provider → Wasm actor → key-value provider → JetStream.

Real nats-server, three real hosts, the real control plane, the committed kvcounter actor, real HTTP.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import yaml

from lattice import claims, keys
from lattice.cli.natsserver import free_port
from tests.conftest import wait_for

KVCOUNTER = Path(__file__).resolve().parents[2] / "actors" / "kvcounter"


async def deploy_kvcounter(
    client: httpx.AsyncClient,
    port: int,
    replicas: int = 3,
    *,
    link_keyvalue: bool = True,
    http_everywhere: bool = False,
) -> dict[str, Any]:
    """The demo on ``port``; ``http_everywhere``: its httpserver on every host (a daemonscaler)."""
    upload = await client.post("/v1/artifacts", content=(KVCOUNTER / "kvcounter.wasm").read_bytes())
    assert upload.status_code == 201, upload.text
    doc = yaml.safe_load((KVCOUNTER / "manifest.yaml").read_text())
    for comp in doc["spec"]["components"]:
        if comp["name"] == "kvcounter":
            comp["properties"]["image"] = upload.json()["digest"]
            comp["traits"][0]["properties"]["replicas"] = replicas
            if not link_keyvalue:
                comp["traits"] = [t for t in comp["traits"] if t["properties"].get("target") != "keyvalue"]
            for trait in comp["traits"]:
                if trait["properties"].get("target") == "httpserver":
                    trait["properties"]["values"] = {"port": str(port)}
        if comp["name"] == "httpserver" and http_everywhere:
            comp["traits"] = [{"type": "daemonscaler", "properties": {"replicas": 1}}]
    put = await client.put("/v1/applications/kvcounter", content=yaml.safe_dump(doc).encode())
    assert put.status_code == 200, put.text
    result: dict[str, Any] = upload.json()
    return result


async def http_ok(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as c:
            return (await c.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def test_http_through_actor_counts_100_concurrent_requests_without_losing_one(
    host_factory: Any, control_plane_factory: Any
) -> None:
    hosts = [await host_factory(), await host_factory(), await host_factory()]
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 3)
    port = free_port()
    await deploy_kvcounter(client, port)
    url = f"http://127.0.0.1:{port}/hello"
    await wait_for(lambda: http_ok(url), timeout=20)

    async def deployed() -> bool:
        return bool((await client.get("/v1/applications/kvcounter")).json()["status"]["type"] == "deployed")

    await wait_for(deployed)

    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=100)) as c:
        before = (await c.get(f"http://127.0.0.1:{port}/burst")).json()["count"]
        responses = await asyncio.gather(*(c.get(f"http://127.0.0.1:{port}/burst") for _ in range(100)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200][:3]
    counts = sorted(r.json()["count"] for r in responses)
    assert counts == list(range(before + 1, before + 101))  # every increment atomic, none lost
    assert all(r.headers["content-type"].startswith("application/json") for r in responses)
    # The actor runs on every host; key-value runs in every host, so no call needed the NATS hop to reach it.
    assert sum(1 for h in hosts if any(p.contract_id == "wasmcloud:keyvalue" for p in h.providers.values())) == 3


async def test_missing_link_gives_500_naming_the_contract(host_factory: Any, control_plane_factory: Any) -> None:
    await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    port = free_port()
    await deploy_kvcounter(client, port, replicas=1, link_keyvalue=False)
    url = f"http://127.0.0.1:{port}/x"

    async def answered() -> httpx.Response | None:
        try:
            async with httpx.AsyncClient(timeout=5) as c:
                response = await c.get(url)
        except httpx.HTTPError:
            return None
        return response if response.status_code not in (503, 504) else None  # not placed yet

    response = await wait_for(answered, timeout=20)
    assert response.status_code == 500, response.text
    assert "no link for wasmcloud:keyvalue (default)" in json.loads(response.text)["error"]


async def test_deployed_means_http_answers(host_factory: Any, control_plane_factory: Any) -> None:
    """The status waits for the HTTP provider to have taken the link (its listener is up)."""
    await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    port = free_port()
    await deploy_kvcounter(client, port, replicas=1)

    async def deployed() -> bool:
        return bool((await client.get("/v1/applications/kvcounter")).json()["status"]["type"] == "deployed")

    await wait_for(deployed, timeout=20)
    assert await http_ok(f"http://127.0.0.1:{port}/now")  # no retry needed once deployed


async def test_two_applications_share_the_bundled_providers(host_factory: Any, control_plane_factory: Any) -> None:
    """Two apps each declaring builtin:httpserver and builtin:keyvalue on the default link, one host:
    one instance of each provider serves both; removing one app leaves the other serving."""
    host = await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    plain = (KVCOUNTER / "kvcounter.wasm").read_bytes()
    caps = ["wasmcloud:httpserver", "wasmcloud:keyvalue", "wasmcloud:builtin:logging"]
    signed = claims.sign_actor(plain, keys.generate("account"), name="kvcounter-2", caps=caps)
    ports = {}
    for name, wasm in (("left", plain), ("right", signed)):  # two actors (a link belongs to one actor)
        upload = await client.post("/v1/artifacts", content=wasm)
        ports[name] = free_port()
        doc = yaml.safe_load((KVCOUNTER / "manifest.yaml").read_text())
        doc["metadata"]["name"] = name
        actor = doc["spec"]["components"][0]
        actor["properties"]["image"] = upload.json()["digest"]
        actor["traits"][0]["properties"]["replicas"] = 1
        actor["traits"][1]["properties"]["values"] = {"port": str(ports[name])}
        assert (await client.put(f"/v1/applications/{name}", content=yaml.safe_dump(doc).encode())).status_code == 200
    for name in ports:
        await wait_for(lambda name=name: http_ok(f"http://127.0.0.1:{ports[name]}/{name}"), timeout=20)

    async def deployed(name: str) -> bool:
        return bool((await client.get(f"/v1/applications/{name}")).json()["status"]["type"] == "deployed")

    await wait_for(lambda: deployed("left"))
    await wait_for(lambda: deployed("right"))
    assert len(host.providers) == 3  # httpserver, keyvalue, logging: one instance each, two owners each
    assert all(len(p.owners) == 2 for p in host.providers.values())
    assert (await client.delete("/v1/applications/left")).status_code == 200
    await wait_for(lambda: all(len(p.owners) == 1 for p in host.providers.values()))
    assert await http_ok(f"http://127.0.0.1:{ports['right']}/still")


async def test_a_port_in_use_is_named_in_the_status(host_factory: Any, control_plane_factory: Any) -> None:
    import socket

    await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        await deploy_kvcounter(client, squatter.getsockname()[1], replicas=1)

        async def named() -> bool:
            status = (await client.get("/v1/applications/kvcounter")).json()["status"]
            return status["type"] == "reconciling" and "in use" in status["message"]

        await wait_for(named, timeout=20)
