"""Instance pools: the instances of one actor on one host, and the only way to call it.

Limits (instances, waiting calls, deadline, memory, payload) are enforced here; a trap, abort or deadline discards
the instance and is typed (``ActorTrap``, ``DeadlineExceeded``, ``LimitExceeded``); ``call_inline`` runs quick,
self-contained calls on the event loop's thread. A host call leaves through the ``HostCall`` callback the pool is
given, so the same pool serves the lattice host and embedding programs (``lattice.host.sandbox``, which also runs
modules that are not waPC actors — ``abi="function"`` — through ``ActorPool.run``).

What every pool does whatever its instances are (admission under the limits, reuse, the inline policy, stats)
is ``host.instance_pool.InstancePool``; this module makes waPC instances and runs calls on them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import structlog
import wasmtime

from lattice.errors import (
    ActorError,
    ActorTrap,
    DeadlineExceeded,
    InvalidActor,
    LimitExceeded,
)
from lattice.failsafe import logged
from lattice.host import wapc
from lattice.host import wasmtime_shim as shim
from lattice.host.budget import guest_time
from lattice.host.instance_pool import InstancePool
from lattice.host.limits import apply_store_limits, memory_limit
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

log = structlog.get_logger("lattice.host.pool")

_T = TypeVar("_T")


def _trap_message(exc: BaseException) -> str:
    text = str(exc)
    for line in text.splitlines():
        if "wasm trap:" in line:
            return line.strip().removeprefix("wasm trap:").strip()
    return first_line(exc)


class ActorPool(InstancePool):
    """The instances of one actor on one host, and the only way to call it.

    At most ``limits.max_instances`` calls run at once (one per instance); up to ``limits.max_waiting``
    more wait for an instance, later ones fail with ``Busy``. An instance that traps, aborts or runs
    past its deadline is discarded; the others keep serving. ``call`` (waPC) and ``run`` (any other
    ABI, e.g. the plain functions of ``lattice.host.sandbox``) are synchronous and thread-safe. ``name`` is how
    errors name the actor (default: its id).
    """

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
        spare: bool = False,
    ) -> None:
        """``spare``: keep a fresh instance ready for the next call that finds none idle (``host.spares``)."""
        self.runtime = runtime
        self.compiled = compiled
        self._init_state(compiled.actor_id, name, limits, wasi, host_call, log_sink)
        self._spare = spare
        types = {e.name: e.type for e in compiled.module.exports if isinstance(e.type, wasmtime.FuncType)}
        functions = set(types)
        starts = START_FUNCTIONS if compiled.abi == "wapc" else FUNCTION_START_FUNCTIONS
        # only () -> () exports are start functions: they run through the unchecked call (``wasmtime_shim.call_unit``)
        self._starts = tuple(n for n in starts if n in types and not types[n].params and not types[n].results)
        self._version_export = next(
            (n for n in ("__wasmbus_rpc_version", "__actor_api_version") if n in functions), None
        )
        self._idle.append(self._new_instance())  # fail fast: start functions run now

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
        limit = memory_limit(self.limits)
        if limit and size + 16 * PAGE > limit:
            return LimitExceeded(f"{self.name} trapped at its memory limit of {limit // (1024 * 1024)} MiB ({message})")
        return ActorTrap(f"{self.name} trapped: {message}")
