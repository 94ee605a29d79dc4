"""Hard caps on what one actor may take from a host, for waPC modules and components alike.

A manifest chooses an actor's limits (``properties.limits``, ``host.actors.limits_from``); these caps
bound what it may choose, whatever it asks: a deadline of hours would hold a worker thread for hours,
40 000 warm instances would exhaust the address space. ``apply_store_limits`` sets wasmtime's
``StoreLimits`` on every new Store so the memory limit holds per *instance*, not per memory: a core
module gets one linear memory and a few tables of bounded size; a component (many core instances
inside) gets bounded counts of each, so its worst case is ``COMPONENT_MEMORIES × max_memory``.
``WorkerQuota`` shares the host's worker threads out so one actor cannot hold them all;
``bounded_sink`` cuts a guest's log lines and limits their rate (errors: ``MAX_GUEST_ERROR``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Final, Generic, Protocol, TypeVar

import wasmtime

from lattice.caps import MAX_DEADLINE_MS, MAX_INSTANCES, MAX_LOG_LINE, MAX_MEMORY_MB, MAX_PAYLOAD_MB
from lattice.errors import Busy

__all__ = ["MAX_DEADLINE_MS", "MAX_INSTANCES", "MAX_MEMORY_MB", "MAX_PAYLOAD_MB", "WorkerQuota", "apply_store_limits"]


class ActorLimits(Protocol):
    """What these functions read of ``lattice.host.runtime.ActorLimits`` (which imports this module)."""

    @property
    def max_memory_bytes(self) -> int | None: ...
    @property
    def max_instances(self) -> int: ...
    @property
    def max_waiting(self) -> int: ...


MODULE_MEMORY_BYTES: Final = 64 * 1024 * 1024
"""A waPC or plain-function module's linear memory unless its limits say otherwise."""

COMPONENT_MEMORY_BYTES: Final = 128 * 1024 * 1024
"""A component actor's memory (per memory) unless its limits say otherwise: componentize-py and -js guests
copy a payload several times (canonical ABI, ``bytes``, msgpack decoding), and a Python guest needs ~96 MiB
for a request at the HTTP server's default 16 MiB body limit, so the default lets the default body through."""


def memory_limit(limits: ActorLimits, *, component: bool = False) -> int:
    """The memory limit in bytes (0: none) of an actor of this kind: its own, else the kind's default."""
    if limits.max_memory_bytes is not None:
        return max(0, limits.max_memory_bytes)
    return COMPONENT_MEMORY_BYTES if component else MODULE_MEMORY_BYTES


def memory_advice(limit: int) -> str:
    """An actor's memory limit and how to raise it, for an error that ran into it."""
    return (
        f"its memory limit of {limit // (1024 * 1024)} MiB (raise it with limits.max_memory_mb in the"
        f" manifest, at most {MAX_MEMORY_MB})"
    )


MAX_TABLE_ELEMENTS: Final = 1_000_000
"""Entries per table (a funcref is 8–16 bytes: ~16 MB at most per table)."""

MODULE_TABLES: Final = 4
COMPONENT_INSTANCES: Final = 64
COMPONENT_MEMORIES: Final = 8
COMPONENT_TABLES: Final = 64


def apply_store_limits(store: wasmtime.Store, limits: ActorLimits, *, component: bool = False) -> None:
    """Bound what instantiating into ``store`` may allocate: memory size per memory, and how many
    memories, tables (and their entries) and core instances there may be."""
    memory = memory_limit(limits, component=component) or -1
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


LOG_LINES_PER_S: Final = 100.0
LOG_BURST: Final = 200
"""An actor's log lines beyond this rate (after a burst) are dropped, and the drop is reported."""


class LogBudget:
    """A token bucket of log lines for one actor, shared by its instances (thread-safe)."""

    def __init__(self, rate: float = LOG_LINES_PER_S, burst: int = LOG_BURST) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._dropped = 0
        self._lock = threading.Lock()

    def take(self) -> int | None:
        """``None``: drop this line. Else the number of lines dropped since the last one let through."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens < 1:
                self._dropped += 1
                return None
            self._tokens -= 1
            dropped, self._dropped = self._dropped, 0
            return dropped


def bounded_sink(sink: Callable[[str, str], None], budget: LogBudget | None = None) -> Callable[[str, str], None]:
    """``sink`` for a guest's output, with lines cut at ``MAX_LOG_LINE`` and rate-limited by ``budget``."""
    budget = budget or LogBudget()

    def bounded(stream: str, text: str) -> None:
        dropped = budget.take()
        if dropped is None:
            return
        if dropped:
            sink(stream, f"({dropped} log lines dropped: over {LOG_LINES_PER_S:g} lines/s)")
        if len(text) > MAX_LOG_LINE:
            text = f"{text[:MAX_LOG_LINE]}… ({len(text) - MAX_LOG_LINE} more characters cut)"
        sink(stream, text)

    return bounded


MAX_CACHED_MODULES: Final = 64
"""Compiled modules (and components) a host keeps in memory beyond those its actors use."""

_V = TypeVar("_V")


class LruCache(Generic[_V]):
    """At most ``size`` values by key, the least recently used dropped first (thread-safe). A host's
    compiled-module caches: uploads of ever new modules must not grow a host without bound."""

    def __init__(self, size: int = MAX_CACHED_MODULES) -> None:
        self.size = size
        self._items: OrderedDict[str, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> _V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: _V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
