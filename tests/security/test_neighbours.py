"""Runaway, memory-hungry, trapping and deeply recursing actors each fail their own calls while a
neighbour on the same host keeps answering HTTP; then the API refuses tampered and expired modules."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lattice import claims, keys
from lattice.cli.natsserver import free_port
from tests.conftest import wait_for
from tests.e2e.test_kvcounter import http_ok
from tests.host import guests

HELLO = Path(__file__).resolve().parents[2] / "actors" / "hello" / "hello.wasm"

BAD = {
    "loops": (guests.LOOPS, "deadline"),
    "grows": (guests.GROWS, "memory limit"),
    "traps": (guests.TRAPS, "unreachable"),
    "recurses": (guests.RECURSES, "stack"),
}


def manifest(digests: dict[str, str], port: int) -> bytes:
    components: list[dict[str, Any]] = [
        {
            "name": "hello",
            "type": "actor",
            "properties": {"image": digests["hello"]},
            "traits": [
                {"type": "spreadscaler", "properties": {"replicas": 1}},
                {"type": "linkdef", "properties": {"target": "http", "values": {"port": str(port)}}},
            ],
        },
        {
            "name": "http",
            "type": "capability",
            "properties": {"image": "builtin:httpserver", "contract": "wasmcloud:httpserver"},
        },
    ]
    for name in BAD:
        components.append(
            {
                "name": name,
                "type": "actor",
                "properties": {"image": digests[name], "limits": {"deadline_ms": 200, "max_memory_mb": 8}},
                "traits": [{"type": "spreadscaler", "properties": {"replicas": 1}}],
            }
        )
    doc = {
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "Application",
        "metadata": {"name": "neighbours", "annotations": {"version": "v1"}},
        "spec": {"components": components},
    }
    return yaml.safe_dump(doc).encode()


async def test_bad_actors_fail_their_own_calls_while_a_neighbour_serves_http(
    host_factory: Any, control_plane_factory: Any
) -> None:
    host = await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    digests, ids = {}, {}
    for name, wasm in [("hello", HELLO.read_bytes()), *((n, w) for n, (w, _) in BAD.items())]:
        art = (await client.post("/v1/artifacts", content=wasm)).json()
        digests[name], ids[name] = art["digest"], art["actor_id"]
    port = free_port()
    assert (await client.put("/v1/applications/neighbours", content=manifest(digests, port))).status_code == 200
    url = f"http://127.0.0.1:{port}/"
    await wait_for(lambda: http_ok(url), timeout=20)
    await wait_for(lambda: all(ids[n] in host.actors for n in BAD))

    async def bad_call(name: str) -> tuple[str, int, str]:
        r = await client.post(f"/v1/actors/{ids[name]}/invoke", json={"operation": "X.Y", "payload_b64": ""})
        return name, r.status_code, r.text

    async def hello_calls() -> list[int]:
        async with httpx.AsyncClient(timeout=5) as c:
            return [(await c.get(url)).status_code for _ in range(20)]

    results, statuses = await asyncio.gather(
        asyncio.gather(*(bad_call(n) for n in BAD for _ in range(2))), hello_calls()
    )
    assert statuses == [200] * 20
    for name, status, text in results:
        # the error's kind travels back with it (lattice.errors.HTTP_STATUS): deadline 504, memory 413, trap 502
        assert status == {"loops": 504, "grows": 413}.get(name, 502), (name, text)
        assert BAD[name][1] in text, (name, text)
    assert await http_ok(url)  # and still afterwards


async def test_api_refuses_tampered_and_expired_modules(control_plane_factory: Any) -> None:
    _, client = await control_plane_factory()
    issuer = keys.generate("account")
    expired = claims.sign_actor(guests.ECHO, issuer, name="old", caps=[], expires_in_s=-60)
    response = await client.post("/v1/artifacts", content=expired)
    assert response.status_code == 400 and "expired" in response.text
    signed = bytearray(claims.sign_actor(guests.ECHO, issuer, name="t", caps=[]))
    signed[signed.index(b"\x01\x0b") - 1] ^= 0x01  # flip a byte of the code, keep the claims
    response = await client.post("/v1/artifacts", content=bytes(signed))
    assert response.status_code == 400 and "hash mismatch" in response.text


@pytest.mark.parametrize("payload", [b"", b"x" * 100])
async def test_invoke_payload_round_trips_base64(host_factory: Any, control_plane_factory: Any, payload: bytes) -> None:
    await host_factory()
    cp, client = await control_plane_factory()
    await wait_for(lambda: len(cp.hosts()) == 1)
    art = (await client.post("/v1/artifacts", content=guests.ECHO)).json()
    app = {
        "apiVersion": "core.oam.dev/v1beta1",
        "kind": "Application",
        "metadata": {"name": "echo", "annotations": {"version": "v1"}},
        "spec": {"components": [{"name": "echo", "type": "actor", "properties": {"image": art["digest"]}}]},
    }
    await client.put("/v1/applications/echo", content=yaml.safe_dump(app).encode())

    async def answered() -> httpx.Response | None:
        r = await client.post(
            f"/v1/actors/{art['actor_id']}/invoke",
            json={"operation": "Echo.Echo", "payload_b64": base64.b64encode(payload).decode()},
        )
        return r if r.status_code == 200 else None

    response = await wait_for(answered, timeout=20)
    assert base64.b64decode(response.json()["payload_b64"]) == payload
