"""Hosts on a real nats-server: control interface, invocations local and over NATS, actor→actor calls."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError

from lattice import claims, keys, seal, subjects
from lattice.errors import ActorError, RemoteError, Unreachable
from lattice.host.host import Host
from lattice.messages import Entity, Invocation, InvocationResponse
from lattice.settings import Settings
from tests.conftest import wait_for
from tests.host import guests


async def command(host: Host, cmd: str, body: dict[str, Any]) -> dict[str, Any]:
    subject = subjects.ctl_cmd(host.settings.lattice, host.id, cmd)
    reply = await seal.request(host.nc, host.rpc.sealer, subject, json.dumps(body).encode(), timeout=10)
    result: dict[str, Any] = json.loads(reply.data)
    return result


def write(tmp_path: Path, name: str, wasm: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(wasm)
    return f"file://{path}"


def signed(wasm: bytes, *, call_alias: str | None = None, caps: tuple[str, ...] = ()) -> bytes:
    return claims.sign_actor(wasm, keys.generate("account"), name="test", caps=caps, call_alias=call_alias)


async def test_scale_starts_actor_and_invocation_crosses_nats(host_factory: Any, tmp_path: Path) -> None:
    a, b = await host_factory(), await host_factory()
    ref = write(tmp_path, "echo.wasm", guests.ECHO)
    reply = await command(a, "scale", {"actor_ref": ref, "count": 1, "annotations": {"app": "t"}})
    assert reply["accepted"], reply
    actor_id = reply["actor_id"]
    assert actor_id.startswith("MU")
    assert await b.invoke(actor_id, "Echo.Echo", b"over nats") == b"over nats"
    assert a.actors[actor_id].pool.calls == 1
    assert await a.invoke(actor_id, "Echo.Echo", b"in process") == b"in process"


async def test_inventory_and_heartbeat_report_instances(host_factory: Any, tmp_path: Path) -> None:
    a = await host_factory(labels={"zone": "east"})
    ref = write(tmp_path, "echo.wasm", guests.ECHO)
    await command(a, "scale", {"actor_ref": ref, "count": 3, "annotations": {"app": "t"}})
    reply = await a.nc.request(subjects.ctl_get_inventory("test", a.id), b"", timeout=5)
    inv = json.loads(reply.data)
    assert inv["labels"]["zone"] == "east"
    assert inv["actors"][0]["count"] == 3
    assert inv["actors"][0]["instances"] == [{"annotations": {"app": "t"}, "count": 3}]
    beats: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        beats.append(json.loads(msg.data))

    sub = await a.nc.subscribe(subjects.events("test"), cb=collect)
    await wait_for(lambda: any(b["type"].endswith("host_heartbeat") for b in beats))
    await sub.unsubscribe()


async def test_scale_to_zero_stops_exactly_that_owner(host_factory: Any, tmp_path: Path) -> None:
    a = await host_factory()
    ref = write(tmp_path, "echo.wasm", guests.ECHO)
    await command(a, "scale", {"actor_ref": ref, "count": 2, "annotations": {"app": "one"}})
    reply = await command(a, "scale", {"actor_ref": ref, "count": 1, "annotations": {"app": "two"}})
    actor_id = reply["actor_id"]
    assert a.actors[actor_id].count == 3
    await command(a, "scale", {"actor_ref": ref, "count": 0, "annotations": {"app": "one"}})
    assert a.actors[actor_id].count == 1
    await command(a, "scale", {"actor_ref": ref, "count": 0, "annotations": {"app": "two"}})
    assert actor_id not in a.actors


async def test_queue_group_spreads_calls_across_two_hosts(host_factory: Any, tmp_path: Path) -> None:
    a, b, caller = await host_factory(), await host_factory(), await host_factory()
    ref = write(tmp_path, "echo.wasm", guests.ECHO)
    actor_id = (await command(a, "scale", {"actor_ref": ref, "count": 1}))["actor_id"]
    await command(b, "scale", {"actor_ref": ref, "count": 1})
    for i in range(40):
        assert await caller.invoke(actor_id, "Echo.Echo", str(i).encode()) == str(i).encode()
    assert a.actors[actor_id].pool.calls > 0
    assert b.actors[actor_id].pool.calls > 0


async def test_actor_calls_actor_by_call_alias_in_process_and_over_nats(host_factory: Any, tmp_path: Path) -> None:
    a, b = await host_factory(), await host_factory()
    ponger = write(tmp_path, "ponger.wasm", signed(guests.ECHO, call_alias="test/ponger"))
    pinger = write(tmp_path, "pinger.wasm", guests.host_caller("test/ponger", "Pong.Echo"))
    pong_id = (await command(a, "scale", {"actor_ref": ponger, "count": 1}))["actor_id"]
    ping_a = (await command(a, "scale", {"actor_ref": pinger, "count": 1}))["actor_id"]
    assert await a.invoke(ping_a, "Ping.Go", b"local") == b"local"
    assert a.actors[pong_id].pool.calls == 1
    # The same pinger on host b reaches the ponger on host a over NATS, found through its alias.
    await command(b, "scale", {"actor_ref": pinger, "count": 1})
    await wait_for(lambda: b.data.resolve_actor("test/ponger"))
    assert await b.router.invoke_actor(ping_a, "Ping.Go", b"remote", origin=Entity("MTEST")) == b"remote"
    assert a.actors[pong_id].pool.calls == 2


async def test_guest_error_is_answered_to_a_remote_caller(host_factory: Any, tmp_path: Path) -> None:
    a, b = await host_factory(), await host_factory()
    actor_id = (await command(a, "scale", {"actor_ref": write(tmp_path, "f.wasm", guests.FAILS), "count": 1}))[
        "actor_id"
    ]
    with pytest.raises(RemoteError, match="nope"):
        await b.invoke(actor_id, "X.Y", b"")
    with pytest.raises(ActorError, match="nope"):
        await a.invoke(actor_id, "X.Y", b"")


async def test_unknown_actor_fails_fast_with_unreachable(host_factory: Any) -> None:
    a = await host_factory()
    with pytest.raises(Unreachable, match="nobody serves"):
        await a.invoke("M" + "A" * 55, "X.Y", b"")


async def test_host_call_without_link_names_contract_and_actor(host_factory: Any, tmp_path: Path) -> None:
    a = await host_factory()
    ref = write(tmp_path, "kv.wasm", guests.host_caller("wasmcloud:keyvalue", "KeyValue.Get"))
    actor_id = (await command(a, "scale", {"actor_ref": ref, "count": 1}))["actor_id"]
    with pytest.raises(ActorError, match=rf"no link for wasmcloud:keyvalue \(default\) from {actor_id}"):
        await a.invoke(actor_id, "X.Y", b"key")
    # The pool keeps serving after the failed host call.
    with pytest.raises(ActorError, match="no link"):
        await a.invoke(actor_id, "X.Y", b"key")


async def test_forged_invocation_on_raw_nats_is_refused(host_factory: Any, tmp_path: Path, settings: Settings) -> None:
    a = await host_factory()
    actor_id = (await command(a, "scale", {"actor_ref": write(tmp_path, "e.wasm", guests.ECHO), "count": 1}))[
        "actor_id"
    ]
    nc = await nats.connect(settings.nats_url)
    try:
        subject = subjects.actor_rpc("test", actor_id)
        bare = Invocation(Entity("MFORGER"), Entity(actor_id), "Echo.Echo", b"x")
        reply = InvocationResponse.from_msgpack((await nc.request(subject, bare.to_msgpack(), timeout=5)).data)
        assert reply.error and "anti-forgery" in reply.error
        forger = keys.generate("cluster")
        forged_claims = claims.sign_invocation(
            forger,
            origin_url=claims.actor_url("MFORGER"),
            target_url=claims.actor_url(actor_id),
            operation="Echo.Echo",
            msg=b"x",
            host_id="N",
        )
        forged = Invocation(Entity("MFORGER"), Entity(actor_id), "Echo.Echo", b"x", encoded_claims=forged_claims)
        reply = InvocationResponse.from_msgpack((await nc.request(subject, forged.to_msgpack(), timeout=5)).data)
        assert reply.error and "not a cluster issuer" in reply.error
        garbage = InvocationResponse.from_msgpack((await nc.request(subject, b"\xc1garbage", timeout=5)).data)
        assert garbage.error and "malformed" in garbage.error
    finally:
        await nc.close()
    assert a.actors[actor_id].pool.calls == 0


async def test_bad_actor_refused_with_reason_and_event(host_factory: Any, tmp_path: Path) -> None:
    a = await host_factory()
    reply = await command(a, "scale", {"actor_ref": write(tmp_path, "bad.wasm", b"garbage"), "count": 1})
    assert not reply["accepted"]
    assert "magic number" in reply["error"]
    reply = await command(a, "scale", {"actor_ref": f"file://{tmp_path}/nonexistent.wasm", "count": 1})
    assert "cannot read" in reply["error"]


async def test_unsigned_actor_refused_where_not_allowed(host_factory: Any, tmp_path: Path) -> None:
    a = await host_factory(allow_unsigned=False)
    reply = await command(a, "scale", {"actor_ref": write(tmp_path, "e.wasm", guests.ECHO), "count": 1})
    assert not reply["accepted"]
    assert "unsigned actors are not allowed" in reply["error"]
    ok = await command(a, "scale", {"actor_ref": write(tmp_path, "s.wasm", signed(guests.ECHO)), "count": 1})
    assert ok["accepted"], ok


async def test_payload_over_nats_max_goes_through_object_store_both_ways(host_factory: Any, tmp_path: Path) -> None:
    a, b = await host_factory(), await host_factory()
    actor_id = (await command(a, "scale", {"actor_ref": write(tmp_path, "big.wasm", guests.BIG_ECHO), "count": 1}))[
        "actor_id"
    ]
    payload = bytes(range(256)) * (4 * 1024 * 1024 // 256)  # 4 MiB, over the 1 MiB NATS max payload
    assert len(payload) > b.nc.max_payload
    assert await b.invoke(actor_id, "Echo.Echo", payload) == payload
    assert a.actors[actor_id].pool.calls == 1
    store = await b.rpc._payloads()
    try:
        left = await store.list(ignore_deletes=True)
    except NotFoundError:  # nats-py's answer for "no objects"
        left = []
    assert left == []  # fetched objects are deleted


async def test_failed_host_call_publishes_invocation_failed(host_factory: Any, tmp_path: Path) -> None:
    a = await host_factory()
    seen: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        event = json.loads(msg.data)
        if event["type"].endswith("invocation_failed"):
            seen.append(event["data"])

    await a.nc.subscribe(subjects.events("test"), cb=collect)
    ref = write(tmp_path, "kv.wasm", guests.host_caller("wasmcloud:unknown", "Unknown.Op"))
    actor_id = (await command(a, "scale", {"actor_ref": ref, "count": 1}))["actor_id"]
    with pytest.raises(ActorError, match=r"no link for wasmcloud:unknown \(default\)"):
        await a.invoke(actor_id, "X.Y", b"")
    await wait_for(lambda: seen)
    assert seen[0]["target"] == "wasmcloud:unknown" and "no link" in seen[0]["error"]


async def test_control_interface_links_claims_and_auctions(host_factory: Any, tmp_path: Path) -> None:
    east, west = await host_factory(labels={"zone": "east"}), await host_factory(labels={"zone": "west"})
    ponger = write(tmp_path, "ponger.wasm", signed(guests.ECHO, call_alias="test/ponger"))
    actor_id = (await command(east, "scale", {"actor_ref": ponger, "count": 1}))["actor_id"]
    nc = east.nc
    seen: list[str] = []

    async def collect(msg: Any) -> None:
        seen.append(json.loads(msg.data)["type"].rsplit(".", 1)[-1])

    await nc.subscribe(subjects.events("test"), cb=collect)
    link = {"actor_id": actor_id, "provider_id": "V" + "A" * 55, "contract_id": "wasmcloud:keyvalue"}
    sealer = east.rpc.sealer

    async def linkdefs(action: str, body: bytes) -> Any:
        return json.loads((await seal.request(nc, sealer, subjects.ctl_linkdefs("test", action), body, timeout=5)).data)

    put = await linkdefs("put", json.dumps(link).encode())
    assert put == {"accepted": True}
    await wait_for(lambda: west.data.link_for(actor_id, "wasmcloud:keyvalue", "default"))
    links = json.loads((await nc.request(subjects.ctl_get("test", "links"), b"", 5)).data)["links"]
    assert [entry["actor_id"] for entry in links] == [actor_id]
    claims_reply = json.loads((await nc.request(subjects.ctl_get("test", "claims"), b"", 5)).data)["claims"]
    assert any(c.get("call_alias") == "test/ponger" for c in claims_reply)
    bad = await linkdefs("put", b'{"actor_id": 1}')
    assert not bad["accepted"] and "bad link definition" in bad["error"]
    gone = await linkdefs("del", json.dumps(link).encode())
    assert gone == {"accepted": True, "deleted": True}
    await wait_for(lambda: "linkdef_set" in seen and "linkdef_deleted" in seen)

    inbox = nc.new_inbox()
    bids: list[dict[str, Any]] = []

    async def bid(msg: Any) -> None:
        bids.append(json.loads(msg.data))

    await nc.subscribe(inbox, cb=bid)
    await nc.publish(subjects.ctl_auction("test", "actor"), b'{"constraints": {"zone": "west"}}', reply=inbox)
    await wait_for(lambda: bids)
    await asyncio.sleep(0.2)  # give a wrong bid the chance to arrive
    assert [b["host_id"] for b in bids] == [west.id]
