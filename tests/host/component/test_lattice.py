"""Component actors on real hosts and a real nats-server (SPEC §7): HTTP through the httpserver provider,
actor↔actor calls with waPC actors in both directions (in process and over NATS), failures contained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from lattice import claims, keys
from lattice.capability import builtin_provider_id
from lattice.cli.natsserver import free_port
from lattice.errors import ActorTrap, RemoteError
from lattice.host.component import ComponentPool
from lattice.messages import Entity, LinkDefinition
from tests.conftest import wait_for
from tests.host import guests
from tests.host.component.guests import frame, probe
from tests.host.test_host import command, write

PINGER = Path(__file__).resolve().parents[3] / "actors" / "pingpong" / "pinger" / "pinger.wasm"
HTTPSERVER = builtin_provider_id("httpserver")


async def start(host: Any, tmp_path: Path, name: str, wasm: bytes) -> str:
    reply = await command(host, "scale", {"actor_ref": write(tmp_path, name, wasm), "count": 1})
    assert reply["accepted"], reply
    return str(reply["actor_id"])


async def serve_http(host: Any, actor_id: str) -> str:
    """Link ``actor_id`` to the HTTP server provider on a free port; its URL once it answers."""
    if (HTTPSERVER, "default") not in host.providers:
        await host.start_provider("builtin:httpserver", "default", {}, {})
    port = free_port()
    await host.data.put_link(
        LinkDefinition(actor_id, HTTPSERVER, "wasmcloud:httpserver", "default", {"port": str(port)})
    )
    url = f"http://127.0.0.1:{port}"

    async def up() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as c:
                return (await c.get(url)).status_code != 503
        except httpx.HTTPError:
            return False

    await wait_for(up, timeout=20)
    return url


async def test_http_request_reaches_a_component_actor(host_factory: Any, tmp_path: Path) -> None:
    host = await host_factory()
    actor_id = await start(host, tmp_path, "probe.wasm", probe())
    assert isinstance(host.actors[actor_id].pool, ComponentPool)
    assert host.inventory().actors[0].abi == "component"
    url = await serve_http(host, actor_id)
    async with httpx.AsyncClient(timeout=5) as c:
        response = await c.get(f"{url}/anything?x=1")
    assert response.status_code == 200, response.text
    assert response.text == "hello from a component"
    assert response.headers["content-type"] == "text/plain"


async def test_waPC_actor_calls_a_component_by_call_alias_over_http(host_factory: Any, tmp_path: Path) -> None:
    host = await host_factory()
    ponger = claims.sign_actor(probe(), keys.generate("account"), name="probe", caps=(), call_alias="lattice/ponger")
    probe_id = await start(host, tmp_path, "ponger.wasm", ponger)
    pinger_id = await start(host, tmp_path, "pinger.wasm", PINGER.read_bytes())
    url = await serve_http(host, pinger_id)
    async with httpx.AsyncClient(timeout=5) as c:
        response = await c.get(f"{url}/ping/me")
    assert response.status_code == 200, response.text
    assert json.loads(response.text)["ping"] == "/ping/me"
    assert host.actors[probe_id].pool.calls >= 1


async def test_component_calls_waPC_actor_over_nats_then_in_process(host_factory: Any, tmp_path: Path) -> None:
    a, b = await host_factory(), await host_factory()
    probe_id = await start(a, tmp_path, "probe.wasm", probe())
    echo_id = await start(b, tmp_path, "echo.wasm", guests.ECHO)
    call = frame("", echo_id, "Echo.Echo", b"\x00over nats\xff")
    assert await a.invoke(probe_id, "Call", call) == b"\x00over nats\xff"
    assert b.actors[echo_id].pool.calls == 1
    await start(a, tmp_path, "echo.wasm", guests.ECHO)  # now one runs beside it: no NATS hop
    assert await a.invoke(probe_id, "Call", frame("", echo_id, "Echo.Echo", b"local")) == b"local"
    assert a.actors[echo_id].pool.calls == 1


async def test_waPC_actor_calls_component_over_nats(host_factory: Any, tmp_path: Path) -> None:
    a, b = await host_factory(), await host_factory()
    signed = claims.sign_actor(probe(), keys.generate("account"), name="probe", caps=(), call_alias="test/probe")
    probe_id = await start(a, tmp_path, "probe.wasm", signed)
    caller_id = await start(b, tmp_path, "caller.wasm", guests.host_caller("test/probe", "Pong.Echo"))
    await wait_for(lambda: b.data.resolve_actor("test/probe"))
    assert await b.invoke(caller_id, "Go", b"to a component") == b"to a component"
    assert a.actors[probe_id].pool.calls == 1


async def test_component_errors_and_traps_reach_callers_and_cost_one_call(host_factory: Any, tmp_path: Path) -> None:
    a, b = await host_factory(), await host_factory()
    probe_id = await start(a, tmp_path, "probe.wasm", probe())
    echo_id = await start(a, tmp_path, "echo.wasm", guests.ECHO)
    try:
        await b.invoke(probe_id, "Trap", b"")
        raise AssertionError("a trap must fail the call")
    except RemoteError as exc:
        assert "unreachable" in str(exc)
    try:
        await a.invoke(probe_id, "Trap", b"")
        raise AssertionError("a trap must fail the call")
    except ActorTrap:
        pass
    # a failing host call is an err the guest answers with, never a trap
    try:
        await a.invoke(probe_id, "Call", frame("", "nobody/home", "X.Y"))
        raise AssertionError("expected the host call's error")
    except Exception as exc:
        assert "no actor is known by 'nobody/home'" in str(exc)
    assert await b.invoke(probe_id, "Echo", b"next") == b"next"
    assert await a.invoke(echo_id, "Echo.Echo", b"neighbour") == b"neighbour"
    origin = Entity("MTEST")
    assert await a.router.invoke_actor(probe_id, "Echo", b"x", origin=origin) == b"x"


async def test_component_calls_are_counted_and_its_start_is_an_event(host_factory: Any, tmp_path: Path) -> None:
    host = await host_factory()
    events: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        events.append(json.loads(msg.data))

    from lattice import subjects

    sub = await host.nc.subscribe(subjects.events("test"), cb=collect)
    actor_id = await start(host, tmp_path, "probe.wasm", probe())
    assert await host.invoke(actor_id, "Echo", b"counted") == b"counted"
    with pytest.raises(ActorTrap):
        await host.invoke(actor_id, "Trap", b"")
    registry = host.metrics.registry
    ok = {"actor": actor_id, "operation": "Echo", "outcome": "ok"}
    assert registry.get_sample_value("lattice_invocations_total", ok) == 1
    trapped = {"actor": actor_id, "operation": "Trap", "outcome": "trap"}
    assert registry.get_sample_value("lattice_invocations_total", trapped) == 1
    await wait_for(lambda: any(e["type"].endswith("actor_started") for e in events))
    started = next(e for e in events if e["type"].endswith("actor_started"))
    assert started["data"]["public_key"] == actor_id
    await sub.unsubscribe()
