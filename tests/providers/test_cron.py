"""builtin:cron, in process and over NATS: ticks on the schedule, once per tick across every instance."""

from __future__ import annotations

import asyncio

import pytest

from lattice.errors import ProviderError
from lattice.messages import unpack
from lattice.providers.cron import TICK, CronProvider
from tests.conftest import wait_for
from tests.providers.conftest import HarnessFactory, actor_id, link_to


async def test_two_instances_fire_each_tick_once(start_provider: HarnessFactory) -> None:
    first, second = await start_provider(CronProvider()), await start_provider(CronProvider())
    actor = actor_id()
    ticks: list[dict[str, int | str]] = []

    async def on_tick(operation: str, payload: bytes) -> bytes:
        assert operation == TICK
        ticks.append(unpack(payload))
        return b""

    for harness in (first, second):
        await harness.serve_actor(actor, on_tick)
        await harness.put_link(link_to(harness.provider, actor, SCHEDULE="* * * * * *"))  # every second
    await wait_for(lambda: len(ticks) >= 3, timeout=30)
    await asyncio.sleep(1.2)  # a second's worth of ticks more: duplicates would show now
    times = [int(t["tick"]) for t in ticks]
    assert len(times) == len(set(times)), ticks  # both instances woke; one fired each tick
    assert all(t % 1000 == 0 for t in times)  # on the second, as scheduled
    assert all(int(t["firedAt"]) >= int(t["tick"]) and t["schedule"] == "* * * * * *" for t in ticks)


@pytest.mark.parametrize("schedule", ["", "every minute", "61 * * * *"])
async def test_a_bad_schedule_refuses_the_link(start_provider: HarnessFactory, schedule: str) -> None:
    cron = await start_provider(CronProvider())
    with pytest.raises(ProviderError, match="SCHEDULE"):
        await cron.link(SCHEDULE=schedule)
