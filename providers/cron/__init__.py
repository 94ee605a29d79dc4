"""``wasmcloud:builtin:cron`` (image ``builtin:cron``): actors invoked on a schedule, once per tick lattice-wide.

A link's ``SCHEDULE`` value is a cron expression (croniter): five fields (minute hour day month weekday) or
six with seconds first (``*/10 * * * * *``: every ten seconds), in UTC. On each tick the provider invokes
the linked actor with ``Cron.Tick {schedule: str, tick: u64, firedAt: u64}`` (``tick`` the scheduled time,
``firedAt`` when it was sent, both Unix milliseconds); the actor's answer is ignored, a failure is logged.

Once per tick across the whole lattice: every instance of the provider (one per host under a daemonscaler,
or several standalone ones) wakes for the tick, and the first to create the key ``<actor>.<link>.<tick>`` in
the JetStream KV bucket ``LATTICE_CRON_{lattice}`` (entries kept an hour) fires it; the others see the key
and skip. Ticks while no instance runs are not replayed. Signed actors need ``wasmcloud:builtin:cron`` in
their claims' caps to be invoked by it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, Final

from croniter import CroniterBadCronError, croniter
from nats.js.kv import KeyValue

from lattice import subjects
from lattice.capability import CRON
from lattice.connection import key_value, lost_race
from lattice.errors import ProviderError
from lattice.messages import LinkDefinition, pack
from lattice.providers.sdk import Provider

__all__ = ["TICK", "CronProvider", "schedule_of"]

TICK: Final = "Cron.Tick"
CLAIM_TTL_S: Final = 3600.0


def schedule_of(link: LinkDefinition) -> str:
    """The link's ``SCHEDULE``, checked; ``ProviderError`` naming the link and the fault otherwise."""
    values = {k.upper(): v for k, v in link.values.items()}
    expression = values.get("SCHEDULE", "").strip()
    if not expression:
        raise ProviderError(f"cron link {link.actor_id} ({link.link_name}): set SCHEDULE (e.g. '*/5 * * * *')")
    try:
        _iterator(expression, time.time())
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise ProviderError(
            f"cron link {link.actor_id}: SCHEDULE {expression!r} is not a cron expression: {exc}"
        ) from None
    return expression


def _iterator(expression: str, start: float) -> croniter:
    seconds_first = len(expression.split()) == 6
    return croniter(expression, datetime.fromtimestamp(start, UTC), second_at_beginning=seconds_first)


class CronProvider(Provider):
    name = "cron"
    contract_id = CRON

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._ticks: KeyValue | None = None
        self.fired = 0

    async def on_link_put(self, link: LinkDefinition) -> None:
        expression = schedule_of(link)
        self._timers[link.actor_id] = asyncio.create_task(self._run(link, expression), name=f"cron-{link.actor_id}")

    async def on_link_del(self, link: LinkDefinition) -> None:
        task = self._timers.pop(link.actor_id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _claims(self) -> KeyValue:
        if self._ticks is None:
            bucket = subjects.cron_ticks_bucket(self.ctx.settings.lattice)
            self._ticks = await key_value(self.ctx.js, bucket, ttl_s=CLAIM_TTL_S)
        return self._ticks

    async def _run(self, link: LinkDefinition, expression: str) -> None:
        ticks = _iterator(expression, time.time())
        while True:
            tick = float(ticks.get_next(float))
            await asyncio.sleep(max(0.0, tick - time.time()))
            try:
                if await self._claim(link, tick):
                    await self._fire(link, expression, tick)
            except Exception as exc:  # one tick lost, never the schedule
                self.log.warning("cron tick failed", actor_id=link.actor_id, tick=tick, error=str(exc))

    async def _claim(self, link: LinkDefinition, tick: float) -> bool:
        key = subjects.kv_key(f"{link.actor_id}.{subjects.token(link.link_name, 'link name')}.{int(tick * 1000)}")
        try:
            await (await self._claims()).create(key, b"")
        except Exception as exc:
            if lost_race(exc):
                return False  # another instance fires this tick
            raise
        return True

    async def _fire(self, link: LinkDefinition, expression: str, tick: float) -> None:
        body = {"schedule": expression, "tick": int(tick * 1000), "firedAt": int(time.time() * 1000)}
        self.fired += 1
        await self.ctx.invoke_actor(link.actor_id, TICK, pack(body))

    async def health(self) -> tuple[bool, str]:
        return True, f"{len(self._timers)} schedule(s), {self.fired} tick(s) fired here"

    async def shutdown(self) -> None:
        timers, self._timers = list(self._timers.values()), {}
        for task in timers:
            task.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
