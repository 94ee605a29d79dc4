"""Instance pools: the instances of one actor on one host, and the only way to call it.

Limits (instances, waiting calls, deadline, memory, payload) are enforced here; a trap, abort or deadline discards
the instance and is typed (``ActorTrap``, ``DeadlineExceeded``, ``LimitExceeded``); ``call_inline`` runs quick,
self-contained calls on the event loop's thread. A host call leaves through the ``HostCall`` callback the pool is
given, so the same pool serves the lattice host and embedding programs (``lattice.host.sandbox``, which also runs
modules that are not waPC actors — ``abi="function"`` — through ``ActorPool.run``).

Over 400 lines: the blocking, inline and plain-function call paths share one lock, one slot semaphore and the
instance life cycle; they split cleanly only with issue 14's instance registry.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import structlog
import wasmtime

from lattice.errors import (
    ActorError,
    ActorTrap,
    Busy,
    DeadlineExceeded,
    InvalidActor,
    LatticeError,
    LimitExceeded,
    NoResponders,
)
from lattice.failsafe import logged
from lattice.host import wapc, wasi_io
from lattice.host import wasmtime_shim as shim
from lattice.host.budget import guest_time, uncharged
from lattice.host.limits import apply_store_limits, bounded_sink
from lattice.host.runtime import (
    FUNCTION_START_FUNCTIONS,
    PAGE,
    START_FUNCTIONS,
    ActorLimits,
    CompiledActor,
    HostCall,
    LogSink,
    Runtime,
    WasiGrants,
    first_line,
)
from lattice.loadstats import LoadMeter

log = structlog.get_logger("lattice.host.pool")

_T = TypeVar("_T")
INLINE_BUDGET_S = 0.002  # at least two epoch ticks are granted, so a call never loses to a tick boundary
INLINE_STRIKES = 3  # calls that had to be re-run before an actor stops being tried inline
INLINE_FORGIVE = 32
"""Inline calls that finish in time, after which one strike for running past the budget is forgiven: a
call preempted on a loaded machine (a host that shares its cores) must not cost the actor the inline path
for good; a guest that makes host calls, or is slow every time, still reaches ``INLINE_STRIKES``."""


def _trap_message(exc: BaseException) -> str:
    text = str(exc)
    for line in text.splitlines():
        if "wasm trap:" in line:
            return line.strip().removeprefix("wasm trap:").strip()
    return first_line(exc)


class ActorPool:
    """The instances of one actor on one host, and the only way to call it.

    At most ``limits.max_instances`` calls run at once (one per instance); up to ``limits.max_waiting``
    more wait for an instance, later ones fail with ``Busy``. An instance that traps, aborts or runs
    past its deadline is discarded; the others keep serving. ``call`` (waPC) and ``run`` (any other
    ABI, e.g. the plain functions of ``lattice.host.sandbox``) are synchronous and thread-safe. ``name`` is how
    errors name the actor (default: its id).
    """

    line_buffered = False  # WASI stdout/stderr to the log sink in whole lines (up to ``wasi_io.LINE_BUFFER``)

    def __init__(
        self,
        runtime: Runtime,
        compiled: CompiledActor,
        *,
        limits: ActorLimits | None = None,
        wasi: WasiGrants | None = None,
        host_call: HostCall | None = None,
        log_sink: LogSink | None = None,
        name: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.compiled = compiled
        self._init_state(compiled.actor_id, name, limits, wasi, host_call, log_sink)
        types = {e.name: e.type for e in compiled.module.exports if isinstance(e.type, wasmtime.FuncType)}
        functions = set(types)
        starts = START_FUNCTIONS if compiled.abi == "wapc" else FUNCTION_START_FUNCTIONS
        # only () -> () exports are start functions: they run through the unchecked call (``wasmtime_shim.call_unit``)
        self._starts = tuple(n for n in starts if n in types and not types[n].params and not types[n].results)
        self._version_export = next(
            (n for n in ("__wasmbus_rpc_version", "__actor_api_version") if n in functions), None
        )
        self._idle.append(self._new_instance())  # fail fast: start functions run now

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

    # --- instances -------------------------------------------------------------------------------

    def _new_instance(self) -> wapc.Instance:
        store = wasmtime.Store(self.runtime.engine)
        apply_store_limits(store, self.limits)
        if self.compiled.uses_wasi:
            store.set_wasi(self._wasi_config())
        store.set_epoch_deadline(self._deadline_ticks())
        try:
            instance = self.compiled.pre.instantiate(store)
        except Exception as exc:
            raise InvalidActor(f"cannot instantiate {self.name}: {first_line(exc)}") from exc
        exports = shim.Exports(store, instance)
        memory = exports["memory"]
        assert isinstance(memory, wasmtime.Memory)  # checked at compile time
        inst = wapc.Instance(self, store, memory, exports)
        previous = getattr(wapc.current, "inst", None)
        wapc.current.inst = inst
        try:
            for name in self._starts:
                func = exports[name]
                assert isinstance(func, wasmtime.Func)
                self._run_start(store, func, name)
            if self._version_export is not None:  # the same for every instance: asked once
                func = exports[self._version_export]
                self._version_export = None
                if isinstance(func, wasmtime.Func):
                    with logged(log, "api version export failed; assuming 0", actor_id=self.actor_id):
                        self.api_version = int(func(store))
        finally:
            wapc.current.inst = previous
        with self._lock:
            self._instances += 1
        return inst

    def _run_start(self, store: wasmtime.Store, func: wasmtime.Func, name: str) -> None:
        try:
            shim.call_unit(store, func)
        except wasmtime.ExitTrap as exc:
            if exc.code != 0:
                raise InvalidActor(f"{name} exited with status {exc.code}") from exc
        except Exception as exc:
            raise InvalidActor(f"{self.name} failed in {name}: {_trap_message(exc)}") from exc

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

    def _reusable(self, inst: Any) -> bool:
        """Whether an instance whose call ended without an exception may serve again (a component
        pool's caller may answer a trap as a response: that instance is not)."""
        return True

    def _discard(self, inst: wapc.Instance) -> None:
        with self._lock:
            self._instances -= 1
        inst.store.close()

    @contextlib.contextmanager
    def _guest(self, inst: wapc.Instance, operation: str, budget_s: float | None = None) -> Iterator[None]:
        """Runs guest code of one call on ``inst``: a fresh deadline, host functions bound, traps typed."""
        seconds = self.limits.deadline_s if budget_s is None else budget_s
        ticks = self._deadline_ticks() if budget_s is None else max(2, round(budget_s / self.runtime.epoch_tick_s))
        previous = getattr(wapc.current, "inst", None)
        wapc.current.inst = inst
        try:
            with guest_time(inst.store, seconds, self.runtime.epoch_tick_s, ticks):
                yield
        except wapc.GuestAbort as exc:
            raise ActorError(str(exc)) from None
        except wasmtime.Trap as exc:
            raise self._classify_trap(inst, exc) from None
        except wasmtime.WasmtimeError as exc:
            raise ActorTrap(f"{self.name} trapped in {operation}: {_trap_message(exc)}") from None
        except (IndexError, ValueError, OverflowError) as exc:
            # A host function given pointers outside the guest's memory: the guest's fault, not ours.
            raise ActorTrap(f"{self.name} trapped in {operation}: bad memory access ({exc})") from None
        finally:
            wapc.current.inst = previous

    # --- calls -----------------------------------------------------------------------------------

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

    def run(self, operation: str, fn: Callable[[wasmtime.Store, wasmtime.Memory, Any], _T]) -> _T:
        """Runs ``fn(store, memory, exports)`` on an instance, as one call under the pool's limits.

        The path for ABIs other than waPC (``lattice.host.sandbox``'s plain functions): ``fn`` calls the guest's
        exports; the deadline covers all of them; traps, aborts and the deadline raise as in ``call`` and
        discard the instance, as does any exception ``fn`` raises. ``operation`` names the call in errors.
        """
        with self.counted(), self._instance() as inst, self._guest(inst, operation):
            return fn(inst.store, inst.memory, inst.exports)

    def _call_instance(
        self, inst: wapc.Instance, operation: str, payload: bytes, budget_s: float | None = None
    ) -> bytes:
        op = operation.encode()
        inst.op, inst.msg, inst.response, inst.error = op, payload, None, None
        try:
            with self._guest(inst, operation, budget_s):
                ok = wapc.call_guest(inst, len(op), len(payload))
        finally:
            inst.msg = b""
        if ok != 1 or inst.error is not None:
            if inst.error is not None:
                raise ActorError(inst.error)
            raise ActorError(f"{self.name} failed {operation} without an error message")
        return inst.response or b""

    def _classify_trap(self, inst: wapc.Instance, exc: wasmtime.Trap) -> Exception:
        message = _trap_message(exc)
        if exc.trap_code == wasmtime.TrapCode.INTERRUPT:
            return DeadlineExceeded(
                f"{self.name} ran past its deadline of {self.limits.deadline_s:g} s and was interrupted"
            )
        size = inst.memory.size(inst.store) * PAGE
        # wasmtime refuses growth past the store limit (memory.grow returns -1); a guest that then traps
        # within a megabyte of the limit ran out of memory, whatever instruction it trapped on.
        if self.limits.max_memory_bytes and size + 16 * PAGE > self.limits.max_memory_bytes:
            return LimitExceeded(
                f"{self.name} trapped at its memory limit of {self.limits.max_memory_bytes // (1024 * 1024)} MiB"
                f" ({message})"
            )
        return ActorTrap(f"{self.name} trapped: {message}")

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
