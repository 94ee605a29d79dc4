"""The typed contract against a real host on a real nats-server: wasmCloud 0.x's ``la``/``sa``/``stop`` sent as
``lattice.commands`` build them, and the inventory the host reports read back by ``HostInventory`` unchanged."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from lattice import events, seal, subjects
from lattice.commands import Auction, CommandReply, HostCommand, LaunchActor, StopActor, StopHost
from lattice.host.host import Host
from lattice.inventory import HostInventory
from tests.conftest import wait_for
from tests.host import guests


async def send(host: Host, cmd: HostCommand) -> CommandReply:
    subject = subjects.ctl_cmd(host.settings.lattice, host.id, cmd.verb)
    body = json.dumps(cmd.to_body()).encode()
    reply = await seal.request(host.nc, host.rpc.sealer, subject, body, timeout=10)
    return CommandReply.from_dict(json.loads(reply.data))


async def test_launch_adds_instances_per_owner_and_stop_actor_removes_them(host_factory: Any, tmp_path: Path) -> None:
    host = await host_factory()
    (tmp_path / "echo.wasm").write_bytes(guests.ECHO)
    ref = f"file://{tmp_path / 'echo.wasm'}"
    first = await send(host, LaunchActor(host.id, ref, 2, {"app": "one"}))
    assert first.accepted and first.details["count"] == 2, first
    actor_id = first.details["actor_id"]
    again = await send(host, LaunchActor(host.id, ref, 1, {"app": "one"}))  # la adds; scale would set
    other = await send(host, LaunchActor(host.id, ref, 1, {"app": "two"}))
    assert (again.details["count"], other.details["count"]) == (3, 4)
    assert await host.invoke(actor_id, "Echo.Echo", b"hi") == b"hi"

    inv = host.inventory()
    shares = {tuple(sorted(i.annotations.items())): i.count for i in inv.actors[0].instances}
    assert shares == {(("app", "one"),): 3, (("app", "two"),): 1}

    one = await send(host, StopActor(host.id, actor_id, {"app": "one"}))
    assert one.accepted and one.details == {"stopped": True}
    assert host.actors[actor_id].count == 1
    everything = await send(host, StopActor(host.id, actor_id))
    assert everything.details == {"stopped": True} and actor_id not in host.actors
    assert (await send(host, StopActor(host.id, actor_id))).details == {"stopped": False}


async def test_bad_verbs_are_refused_naming_the_field(host_factory: Any) -> None:
    host = await host_factory()
    for verb, body, field in [("la", {"count": 1}, "actor_ref"), ("sa", {"annotations": {}}, "actor_id")]:
        subject = subjects.ctl_cmd(host.settings.lattice, host.id, verb)
        raw = await seal.request(host.nc, host.rpc.sealer, subject, json.dumps(body).encode(), timeout=10)
        reply = CommandReply.from_dict(json.loads(raw.data))
        assert not reply.accepted and reply.error is not None and field in reply.error, reply
    assert host.actors == {}


async def test_stop_host_ends_serve(host_factory: Any) -> None:
    host = await host_factory()
    serving = asyncio.create_task(host.serve())
    reply = await send(host, StopHost(host.id))
    assert reply.accepted and reply.details == {"stopping": True}
    await asyncio.wait_for(serving, timeout=30)


async def test_the_inventory_a_host_sends_reads_back_unchanged(host_factory: Any, tmp_path: Path) -> None:
    host = await host_factory(labels={"zone": "east"})
    (tmp_path / "echo.wasm").write_bytes(guests.ECHO)
    await send(host, LaunchActor(host.id, f"file://{tmp_path / 'echo.wasm'}", 2, {"app": "t"}))
    raw = json.loads((await host.nc.request(subjects.ctl_get_inventory("test", host.id), b"", timeout=5)).data)
    inv = HostInventory.from_dict(raw)
    assert inv.to_dict() == raw  # nothing the host sends is lost or renamed by the type
    assert (inv.labels["zone"], inv.instances, inv.actors[0].count) == ("east", 2, 2)

    beats: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        event = events.parse(msg.data)
        if event is not None and event.name == events.HOST_HEARTBEAT:
            beats.append(event.data)

    sub = await host.nc.subscribe(subjects.events("test"), cb=collect)
    await wait_for(lambda: bool(beats))
    await sub.unsubscribe()
    beat = HostInventory.from_dict(beats[0])
    assert beat.to_dict() == beats[0] and beat.host_id == host.id


async def test_a_malformed_auction_gets_no_bid_and_a_good_one_does(host_factory: Any) -> None:
    host = await host_factory(labels={"zone": "west"})
    prefix = host.nc.new_inbox()
    answered: list[str] = []

    async def bid(msg: Any) -> None:
        answered.append(subjects.last_segment(msg.subject))

    await host.nc.subscribe(f"{prefix}.*", cb=bid)  # one subscription: answers arrive in the order sent
    auction = subjects.ctl_auction("test", "actor")
    await host.nc.publish(auction, b'{"constraints": ["zone"]}', reply=f"{prefix}.bad")  # would match all
    await host.nc.publish(auction, json.dumps(Auction({"zone": "east"}).to_body()).encode(), reply=f"{prefix}.east")
    await host.nc.publish(auction, json.dumps(Auction({"zone": "west"}).to_body()).encode(), reply=f"{prefix}.west")
    await wait_for(lambda: "west" in answered)
    assert answered == ["west"]
