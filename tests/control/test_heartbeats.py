"""What the control plane makes of hosts' heartbeats on a real nats-server: a wasmCloud 0.x-shaped one is a
live host, a malformed one is logged and ignored (the observer keeps serving), both through ``HostInventory``."""

from __future__ import annotations

from typing import Any

import nats
import structlog

from lattice import events, subjects
from lattice.settings import Settings
from tests.conftest import wait_for

ACTOR = "M" + "A" * 55
PEER = "N" + "P" * 55
BROKEN = "N" + "B" * 55


async def test_a_0x_heartbeat_is_a_host_and_a_malformed_one_is_ignored(
    settings: Settings, control_plane_factory: Any
) -> None:
    cp, client = await control_plane_factory(heartbeat_misses=1000)  # one beat each: nobody expires here
    nc = await nats.connect(settings.nats_url)
    try:
        with structlog.testing.capture_logs() as logs:
            broken = {"actors": [{"id": ACTOR, "instances": [{"count": -3}]}], "labels": {}}
            await nc.publish(subjects.events(settings.lattice), events.make(events.HOST_HEARTBEAT, BROKEN, broken))
            peer = {"actors": {ACTOR: 2}, "labels": {"zone": "west"}, "friendly_name": "x", "version": "0.63.0"}
            await nc.publish(subjects.events(settings.lattice), events.make(events.HOST_HEARTBEAT, PEER, peer))
            await wait_for(lambda: PEER in cp.observer.hosts)
        assert BROKEN not in cp.observer.hosts
        refused = [e for e in logs if e["event"] == "host inventory ignored"]
        assert refused and "count" in refused[0]["error"], logs
        rows = (await client.get("/v1/hosts")).json()
        assert [(r["id"], r["labels"], r["actors"], r["instances"]) for r in rows] == [
            (PEER, {"zone": "west"}, [{"id": ACTOR, "name": None, "count": 2}], 2)
        ]
        (view,) = cp.observer.views()
        assert [(a.actor_id, a.count) for a in view.actors] == [(ACTOR, 2)]
    finally:
        await nc.close()
