"""nats.py#667 kind: a host does no work for callers who gave up. Each invocation carries its caller's
deadline; one still waiting for a worker when it passes is dropped (answered ``Expired``), not run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lattice.errors import Unreachable
from lattice.messages import Entity, Invocation
from tests.conftest import wait_for
from tests.host import guests
from tests.host.test_host import command, write

CALLS = 60


async def test_nats_py667_calls_whose_callers_gave_up_are_dropped_not_run(host_factory: Any, tmp_path: Path) -> None:
    a, b = await host_factory(), await host_factory()
    # each call spins until its 50 ms deadline on the one instance: 60 calls would keep it busy 3 s
    limits = {"deadline_ms": 50, "max_instances": 1}
    reply = await command(
        a,
        "scale",
        {"actor_ref": write(tmp_path, "loops.wasm", guests.LOOPS), "count": 1, "properties": {"limits": limits}},
    )
    assert reply["accepted"], reply
    actor_id = reply["actor_id"]
    calls = [b.rpc.invoke(Entity(b.id), Entity(actor_id), "Loop.Run", b"", timeout_s=0.2) for _ in range(CALLS)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    gave_up = sum(isinstance(r, Unreachable) for r in results)  # the first few are answered within 0.2 s
    assert gave_up >= CALLS // 2, results
    pool = a.actors[actor_id].pool
    await wait_for(lambda: a.router.drops.total + pool.calls >= CALLS, timeout=30)
    # 0.2 s + 1 s of clock-skew allowance lets at most ~24 calls of 50 ms run; the rest are dropped
    assert a.router.drops.total >= CALLS // 3
    assert pool.calls <= CALLS * 2 // 3


def test_invocation_deadline_round_trips_and_is_absent_for_older_peers() -> None:
    inv = Invocation(Entity("MA"), Entity("MB"), "Op.Run", b"", deadline_ms=1_700_000_000_000)
    assert Invocation.from_msgpack(inv.to_msgpack()).deadline_ms == 1_700_000_000_000
    plain = Invocation(Entity("MA"), Entity("MB"), "Op.Run", b"")
    assert Invocation.from_msgpack(plain.to_msgpack()).deadline() is None  # a wasmCloud 0.x peer sets none
