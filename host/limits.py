"""Hard caps on what one actor may take from a host, for waPC modules and components alike.

A manifest chooses an actor's limits (``properties.limits``, ``host.actors.limits_from``); these caps
bound what it may choose, whatever it asks: a deadline of hours would hold a worker thread for hours,
40 000 warm instances would exhaust the address space. ``apply_store_limits`` sets wasmtime's
``StoreLimits`` on every new Store so the memory limit holds per *instance*, not per memory: a core
module gets one linear memory and a few tables of bounded size; a component (many core instances
inside) gets bounded counts of each, so its worst case is ``COMPONENT_MEMORIES × max_memory``.
``WorkerQuota`` shares the host's worker threads out so one actor cannot hold them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Final

import wasmtime

from lattice.errors import Busy

if TYPE_CHECKING:
    from lattice.host.runtime import ActorLimits

MAX_DEADLINE_MS: Final = 60_000
"""Longest per-call deadline a manifest may set (a call holds a worker thread that long)."""
MAX_INSTANCES: Final = 256
"""Most instances (and warm replicas) of one actor on one host."""
MAX_MEMORY_MB: Final = 4096
"""Largest linear memory a manifest may grant (wasm32's own limit)."""
MAX_PAYLOAD_MB: Final = 256
"""Largest request/response a manifest may allow."""
MAX_TABLE_ELEMENTS: Final = 1_000_000
"""Entries per table (a funcref is 8–16 bytes: ~16 MB at most per table)."""

MODULE_TABLES: Final = 4
COMPONENT_INSTANCES: Final = 64
COMPONENT_MEMORIES: Final = 8
COMPONENT_TABLES: Final = 64


def apply_store_limits(store: wasmtime.Store, limits: ActorLimits, *, component: bool = False) -> None:
    """Bound what instantiating into ``store`` may allocate: memory size per memory, and how many
    memories, tables (and their entries) and core instances there may be."""
    memory = limits.max_memory_bytes if limits.max_memory_bytes > 0 else -1
    if component:
        store.set_limits(
            memory_size=memory,
            table_elements=MAX_TABLE_ELEMENTS,
            instances=COMPONENT_INSTANCES,
            tables=COMPONENT_TABLES,
            memories=COMPONENT_MEMORIES,
        )
    else:
        store.set_limits(
            memory_size=memory, table_elements=MAX_TABLE_ELEMENTS, instances=1, tables=MODULE_TABLES, memories=1
        )


class WorkerQuota:
    """At most ``per_actor`` of the host's shared worker threads for any one actor.

    Calls beyond an actor's share wait here, on the event loop, not on a worker thread, so an actor
    whose calls spin until their deadline holds ``per_actor`` threads at most and the others keep
    theirs. More than ``max_waiting`` calls waiting for one actor fail at once with ``Busy``.
    """

    def __init__(self, per_actor: int) -> None:
        self.per_actor = max(1, per_actor)
        self._slots: weakref.WeakKeyDictionary[object, asyncio.Semaphore] = weakref.WeakKeyDictionary()
        self._waiting: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()

    @contextlib.asynccontextmanager
    async def slot(self, pool: object, limits: ActorLimits, name: str) -> AsyncIterator[None]:
        """Hold one of ``pool``'s worker slots (``min(per_actor, max_instances)`` of them)."""
        slots = self._slots.get(pool)
        if slots is None:
            slots = self._slots[pool] = asyncio.Semaphore(min(self.per_actor, limits.max_instances))
        waiting = self._waiting.get(pool, 0)
        if slots.locked() and waiting >= limits.max_waiting:
            raise Busy(f"actor {name} is busy: {waiting} calls waiting for a worker; retry later")
        self._waiting[pool] = waiting + 1
        try:
            await slots.acquire()
        finally:
            self._waiting[pool] -= 1
        try:
            yield
        finally:
            slots.release()
