"""What every instance pool does, whatever its instances are (waPC modules: ``host.pool.ActorPool``;
components: ``host.component.pool.ComponentPool``): admission under the actor's limits (at most
``max_instances`` calls at once, up to ``max_waiting`` more waiting, ``Busy`` after that; ``NoResponders``
once closed), idle instances reused and failed ones discarded, calls counted and timed, the inline path's
policy (``call_inline``: strikes and forgiveness), stats, warming and closing.

A subclass makes instances (``_new_instance``) and runs one call on one (``_call_instance``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import wasmtime

from lattice.errors import Busy, DeadlineExceeded, LatticeError, LimitExceeded, NoResponders
from lattice.host import wapc, wasi_io
from lattice.host.budget import uncharged
from lattice.host.limits import bounded_sink
from lattice.host.runtime import ActorLimits, CompiledActor, HostCall, LogSink, Runtime, WasiGrants
from lattice.loadstats import LoadMeter

INLINE_BUDGET_S = 0.002  # at least two epoch ticks are granted, so a call never loses to a tick boundary
INLINE_STRIKES = 3  # calls that had to be re-run before an actor stops being tried inline
INLINE_FORGIVE = 32
"""Inline calls that finish in time, after which one strike for running past the budget is forgiven: a
call preempted on a loaded machine (a host that shares its cores) must not cost the actor the inline path
for good; a guest that makes host calls, or is slow every time, still reaches ``INLINE_STRIKES``."""


class InstancePool:
    """The instances of one actor on one host, and the only way to call it (see the module docstring)."""

    line_buffered = False  # WASI stdout/stderr to the log sink in whole lines (up to ``wasi_io.LINE_BUFFER``)
    _spare = False  # keep a warm spare (``host.spares``): ``ActorPool(spare=True)``, waPC pools only
    _spare_asked = False
    runtime: Runtime
    compiled: CompiledActor

    def _new_instance(self) -> wapc.Instance:
        raise NotImplementedError

    def _call_instance(
        self, inst: wapc.Instance, operation: str, payload: bytes, budget_s: float | None = None
    ) -> bytes:
        raise NotImplementedError

    def _init_state(
        self,
        actor_id: str,
        name: str | None,
        limits: ActorLimits | None,
        wasi: WasiGrants | None,
        host_call: HostCall | None,
        log_sink: LogSink | None,
    ) -> None:
        """The pool's state whatever its instances are (also ``host.component.ComponentPool``'s)."""
        self.actor_id = actor_id
        self.name = name or actor_id
        self.limits = limits or ActorLimits()
        self.wasi = wasi or WasiGrants()
        self.host_call: HostCall = uncharged(host_call or _no_host_calls)
        self.log_sink: LogSink = bounded_sink(log_sink) if log_sink else (lambda stream, text: None)
        self.api_version = 0
        self._idle: deque[Any] = deque()
        self._slots = threading.BoundedSemaphore(self.limits.max_instances)
        self._waiting = 0
        self._in_flight = 0
        self._instances = 0
        self._lock = threading.Lock()
        self._outputs = wasi_io.LiveCount()
        self._closed = False
        self.inline_eligible = True
        self._inline_strikes = 0
        self._inline_overruns = 0  # strikes for running past the budget, forgiven by INLINE_FORGIVE good calls
        self._inline_good = 0
        self.calls = 0
        self.failures = 0
        self.meter = LoadMeter()  # calls in the pool over time, and their durations (``lattice.loadstats``)

    def _wasi_config(self) -> wasmtime.WasiConfig:
        return wasi_io.config(self.wasi, self._output)

    def _output(self, stream: str) -> Callable[[bytes], None]:
        return wasi_io.sink(stream, self.log_sink, self.line_buffered, self._outputs)

    def _deadline_ticks(self) -> int:
        return max(1, round(self.limits.deadline_s / self.runtime.epoch_tick_s))

    @contextlib.contextmanager
    def _instance(self, *, wait: bool = True) -> Iterator[wapc.Instance]:
        if not wait:
            if self._closed or not self._slots.acquire(blocking=False):
                raise wapc.NotInline("busy")
            yield from self._hold_slot(create=False)
            return
        with self._lock:
            if self._closed:
                # nothing ran: the caller may try another instance (or wake one, scaled to zero)
                raise NoResponders(f"actor {self.name} stopped on this host as the call came")
            if self._waiting >= self.limits.max_waiting:
                raise Busy(
                    f"actor {self.name} is busy: {self.limits.max_instances} calls running and "
                    f"{self._waiting} waiting; retry later or raise max_instances"
                )
            self._waiting += 1
            self.meter.add(1)
        try:
            acquired = self._slots.acquire(timeout=self.limits.deadline_s)
        finally:
            with self._lock:
                self._waiting -= 1
                self.meter.add(-1)
        if not acquired:
            raise Busy(f"actor {self.name} is busy: no instance free within {self.limits.deadline_s:g} s")
        yield from self._hold_slot()

    def _hold_slot(self, *, create: bool = True) -> Iterator[wapc.Instance]:
        """With a slot held: an idle (or new) instance for the call, put back after, discarded on error.

        ``create=False`` (the event loop's inline calls): never instantiate here, since start functions
        are guest code that may run up to the deadline; ``wapc.NotInline("busy")`` instead.
        """
        with self._lock:
            self._in_flight += 1
            self.meter.add(1)
        inst: wapc.Instance | None = None
        try:
            try:
                inst = self._idle.popleft()
            except IndexError:
                self._ask_spare()  # for the next call that finds none idle
                if not create:
                    raise wapc.NotInline("busy") from None
                inst = self._new_instance()
            yield inst
            if self._closed or not self._reusable(inst):
                self._discard(inst)
            else:
                self._idle.append(inst)
        except BaseException:
            if inst is not None:
                self._discard(inst)
            raise
        finally:
            with self._lock:
                self._in_flight -= 1
                self.meter.add(-1)
            self._slots.release()

    def _ask_spare(self) -> None:
        """With spares on: have the runtime's spare maker build an instance (a call just found none idle).
        Asked only then, not whenever the last idle instance is taken: waking the maker's thread on every
        call would hand the GIL back and forth on the hot path."""
        if self._spare and not self._spare_asked and not self._closed:
            self._spare_asked = True
            self.runtime.spares.request(self)

    def make_spare(self) -> None:
        """On the spare maker's thread: one instance more, if the pool has none idle, is open and has a free
        slot (held while the instance is built, so the pool never exceeds ``max_instances``)."""
        self._spare_asked = False
        if self._closed or self._idle or not self._slots.acquire(blocking=False):
            return
        try:
            inst = self._new_instance()
            if self._closed:
                self._discard(inst)
            else:
                self._idle.append(inst)
        finally:
            self._slots.release()

    def _reusable(self, inst: Any) -> bool:
        """Whether an instance whose call ended without an exception may serve again (a component
        pool's caller may answer a trap as a response: that instance is not)."""
        return True

    def _discard(self, inst: wapc.Instance) -> None:
        with self._lock:
            self._instances -= 1
        inst.store.close()

    def call(self, operation: str, payload: bytes) -> bytes:
        """Invoke ``operation`` with ``payload``; returns the guest's response bytes.

        Raises ``ActorError`` (guest error or abort), ``ActorTrap``, ``DeadlineExceeded``,
        ``LimitExceeded`` (payload, memory) or ``Busy``.
        """
        if len(payload) > self.limits.max_payload_bytes:
            raise LimitExceeded(
                f"payload of {len(payload)} bytes is over {self.name}'s limit of {self.limits.max_payload_bytes}"
            )
        with self.counted(), self._instance() as inst:
            return self._call_instance(inst, operation, payload)

    def queued(self) -> Callable[[], None]:
        """Count a call waiting before the pool (for a worker of the host) in its load, until the function
        returned is called (once; later calls do nothing), just before the call enters the pool."""
        with self._lock:
            self.meter.add(1)
        waiting = [True]

        def left() -> None:
            with self._lock:
                if waiting:
                    waiting.clear()
                    self.meter.add(-1)

        return left

    @contextlib.contextmanager
    def counted(self) -> Iterator[None]:
        """One call: counted, timed (waiting for an instance included), and a failure if it raises one."""
        self.calls += 1
        start = time.monotonic()
        try:
            yield
        except LatticeError:
            self.failures += 1
            raise
        finally:
            self.meter.record(time.monotonic() - start)

    def count_refused(self) -> None:
        """One call refused before it reached the guest (say, a capability its claims lack): a failure."""
        self.calls += 1
        self.failures += 1

    def call_inline(self, operation: str, payload: bytes) -> bytes | None:
        """``call`` on this thread if it is quick and self-contained, else ``None`` (run it elsewhere).

        For the event loop's thread: no instance is waited for, the guest may not make host calls (they
        would need the loop) and it gets ``INLINE_BUDGET_S`` instead of its deadline. A call that tries
        a host call or runs past the budget is unwound, its instance discarded, and ``None`` returned; as
        nothing left the instance, running the call again elsewhere is safe. After ``INLINE_STRIKES``
        such calls the actor is no longer ``inline_eligible``. Guest errors and traps raise as in ``call``.
        """
        if len(payload) > self.limits.max_payload_bytes or not self.inline_eligible:
            return None
        start = time.monotonic()
        try:
            with self._instance(wait=False) as inst:
                inst.inline = True
                try:
                    result = self._call_instance(inst, operation, payload, budget_s=INLINE_BUDGET_S)
                finally:
                    inst.inline = False
        except wapc.NotInline as exc:
            if exc.args != ("busy",):
                self._inline_strike()
            return None
        except DeadlineExceeded:
            self._inline_overruns += 1
            self._inline_strike()
            return None
        self.calls += 1
        self.meter.record(time.monotonic() - start)
        if self._inline_overruns:
            self._forgive()
        return result

    def _forgive(self) -> None:
        self._inline_good += 1
        if self._inline_good >= INLINE_FORGIVE:
            self._inline_good = 0
            self._inline_overruns -= 1
            self._inline_strikes -= 1

    def _inline_strike(self) -> None:
        self._inline_strikes += 1
        if self._inline_strikes >= INLINE_STRIKES:
            self.inline_eligible = False

    def stats(self) -> dict[str, int]:
        """``instances`` alive, ``in_flight`` calls, ``waiting`` calls, ``calls`` and ``failures`` so far."""
        return {
            "instances": self._instances,
            "in_flight": self._in_flight,
            "waiting": self._waiting,
            "calls": self.calls,
            "failures": self.failures,
        }

    def warm(self, count: int) -> None:
        """Create idle instances up to ``count`` (bounded by ``max_instances``) ahead of traffic."""
        while self._instances < min(count, self.limits.max_instances):
            self._idle.append(self._new_instance())

    def close(self, *, timeout: float = 1.0) -> None:
        """Refuse new calls and close idle instances (running calls finish, then close theirs).

        Waits up to ``timeout`` s for wasmtime to release the closed instances' WASI output sinks.
        """
        with self._lock:
            self._closed = True
        while True:
            try:
                inst = self._idle.popleft()
            except IndexError:
                break
            self._discard(inst)
        if self.compiled.uses_wasi:  # two sinks per instance; running calls still hold theirs
            self._outputs.wait_until_at_most(2 * self._in_flight, timeout)


def _no_host_calls(binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
    raise LatticeError(f"host calls are not available here ({namespace} {operation})")
