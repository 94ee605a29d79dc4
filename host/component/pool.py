"""The instances of one component actor: the waPC pool's contract, for components (SPEC §7).

``ComponentPool`` is an ``ActorPool`` (same limits, slots, waiting, ``Busy``, inline calls, stats,
warm-up and close) whose instances are component instances: a Store with its memory limit, a WASI
0.2 context granting only the manifest's ``wasi`` (stdout/stderr to the log sink) and a fresh epoch
deadline per call. ``call`` invokes ``lattice:actor/guest.handle`` through the precomputed plan of
``host.component.values``; components of another kind (``wasi:http``) are called through the caller
registered for that kind (``register_caller``). A trap, an uncaught guest exception, a deadline or a
refused memory growth fails that call only: the instance is discarded and the next call gets a new
one. Host functions find the instance being called through ``current()`` (a thread-local, as for
waPC: a Store is only used by the thread calling into it).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import wasmtime
from wasmtime import component as cm

from lattice.errors import ActorError, ActorTrap, DeadlineExceeded, InvalidActor, LatticeError, LimitExceeded
from lattice.host.budget import guest_time
from lattice.host.component.binary import FAST_HANDLE
from lattice.host.component.engine import GUEST, CompiledComponent, ComponentRuntime
from lattice.host.limits import apply_store_limits, memory_advice, memory_limit
from lattice.host.pool import ActorPool
from lattice.host.runtime import ActorLimits, HostCall, LogSink, WasiGrants

ConfigSource = Callable[[], dict[str, str]]
"""The actor's configuration for ``wasi:config``: link values and the manifest's ``config``."""

Caller = Callable[["ComponentPool", "ComponentInstance", str, bytes], bytes]
"""Calls one instance of a component of some kind with ``(operation, payload)``; returns the response."""

_CALLERS: dict[str, Caller] = {}
STDERR_TAIL = 2048  # bytes of an instance's stderr kept to explain a trap
OUT_OF_MEMORY = ("out of memory", "MemoryError", "mozalloc_abort", "memory allocation of")
"""How guests say an allocation failed (the guest SDKs, CPython, SpiderMonkey, Rust): memory growth was
refused at the limit (wasmtime's ``memory.grow`` returns -1; the guest's allocator gives up)."""
_current = threading.local()


def register_caller(kind: str, caller: Caller) -> None:
    """How to call components of ``kind`` (``CompiledComponent.kind``), e.g. ``http``."""
    _CALLERS[kind] = caller


def current() -> ComponentInstance:
    """The component instance this thread is calling into (for host functions)."""
    inst: ComponentInstance | None = getattr(_current, "inst", None)
    if inst is None:
        raise LatticeError("no component call is running on this thread")
    return inst


class ComponentInstance:
    """One instance: its Store, the instance, its export functions and its host resources."""

    __slots__ = (
        "_next_rep",
        "broken",
        "funcs",
        "inline",
        "instance",
        "kind_state",
        "pool",
        "resources",
        "stderr_tail",
        "store",
    )

    def __init__(self, pool: ComponentPool, store: wasmtime.Store, instance: cm.Instance) -> None:
        self.pool = pool
        self.store = store
        self.instance = instance
        self.inline = False
        self.funcs: dict[str, cm.Func] = {}
        self.resources: dict[int, Any] = {}
        self.stderr_tail = bytearray()  # the last bytes the guest wrote to stderr (see ``_last_words``)
        self._next_rep = 1
        self.kind_state: Any = None  # what the caller of this component's kind keeps per instance
        self.broken = False  # set by a caller that answered a trap: the instance must not serve again

    def func(self, interface: str | None, name: str) -> cm.Func:
        """An export function (looked up once per instance; ``interface`` None: a top-level one);
        ``InvalidActor`` if absent."""
        key = f"{interface}#{name}"
        found = self.funcs.get(key)
        if found is None:
            index = self.pool.export_index(interface, name)
            found = self.instance.get_func(self.store, index) if index is not None else None
            if found is None:
                raise InvalidActor(f"{self.pool.name} does not export {key}")
            self.funcs[key] = found
        return found

    def add_resource(self, value: Any) -> int:
        """Keep ``value`` as a host resource of this instance; returns its rep."""
        rep = self._next_rep
        self._next_rep += 1
        self.resources[rep] = value
        return rep


class ComponentPool(ActorPool):
    """The instances of one component actor on one host; see ``ActorPool`` for the contract."""

    line_buffered = True  # componentize-py writes a print() in pieces

    def __init__(
        self,
        runtime: ComponentRuntime,
        compiled: CompiledComponent,
        *,
        limits: ActorLimits | None = None,
        wasi: WasiGrants | None = None,
        host_call: HostCall | None = None,
        log_sink: LogSink | None = None,
        config: ConfigSource | None = None,
        name: str | None = None,
    ) -> None:
        # the waPC pool's state; its __init__ would look for a core module's exports
        self.runtime = runtime  # type: ignore[assignment]  # only epoch_tick_s is read by the base
        self.components = runtime
        self.compiled = compiled  # type: ignore[assignment]
        self.component = compiled
        self._init_state(compiled.actor_id, name, limits, wasi, host_call, log_sink)
        self.config: ConfigSource = config or dict
        self._indexes: dict[str, Any] = {}
        if compiled.kind != "actor" and compiled.kind not in _CALLERS:
            raise InvalidActor(f"this host cannot call {compiled.kind} components")
        self._idle.append(self._new_instance())  # fail fast: a missing import shows now

    def export_index(self, interface: str | None, name: str) -> Any:
        key = f"{interface}#{name}"
        if key not in self._indexes:
            component = self.component.component
            if interface is None:
                self._indexes[key] = component.get_export_index(name)
            else:
                parent = component.get_export_index(interface)
                self._indexes[key] = component.get_export_index(name, parent) if parent is not None else None
        return self._indexes[key]

    # --- instances ---------------------------------------------------------------------------------

    def _new_instance(self) -> ComponentInstance:  # type: ignore[override]
        store = wasmtime.Store(self.components.engine)
        apply_store_limits(store, self.limits, component=True)
        stderr_tail = bytearray()
        _current.stderr_tail = stderr_tail  # picked up by _output below, on this thread
        store.set_wasi(self._wasi_config())  # always: WASI 0.2 host functions need a context
        store.set_epoch_deadline(self._deadline_ticks())
        try:
            instance = self.components.linker_for(self.component).instantiate(store, self.component.component)
        except Exception as exc:
            store.close()
            raise InvalidActor(f"cannot instantiate {self.name}: {_reason(exc)}") from exc
        inst = ComponentInstance(self, store, instance)
        inst.stderr_tail = stderr_tail
        with self._lock:
            self._instances += 1
        return inst

    def _output(self, stream: str) -> Callable[[bytes], None]:
        """The base sink; stderr's also keeps its last bytes, to name why a guest trapped."""
        sink = super()._output(stream)
        tail: bytearray | None = getattr(_current, "stderr_tail", None)
        if stream != "stderr" or tail is None:
            return sink

        def recording(data: bytes) -> None:
            tail.extend(data)
            del tail[:-STDERR_TAIL]
            sink(data)

        return recording

    def _reusable(self, inst: Any) -> bool:
        return not inst.broken

    def _discard(self, inst: Any) -> None:
        with self._lock:
            self._instances -= 1
        inst.resources.clear()
        inst.store.close()

    @contextlib.contextmanager
    def _guest(self, inst: Any, operation: str, budget_s: float | None = None) -> Iterator[None]:
        """Guest code of one call on ``inst``: a fresh deadline, ``current()`` set, failures typed."""
        seconds = self.limits.deadline_s if budget_s is None else budget_s
        ticks = self._deadline_ticks() if budget_s is None else max(2, round(budget_s / self.components.epoch_tick_s))
        inst.stderr_tail.clear()
        previous = getattr(_current, "inst", None)
        _current.inst = inst
        try:
            with guest_time(inst.store, seconds, self.components.epoch_tick_s, ticks):
                yield
        except wasmtime.WasmtimeError as exc:
            raise self._classify(exc, operation, inst.stderr_tail) from None
        finally:
            _current.inst = previous

    def _classify(self, exc: wasmtime.WasmtimeError, operation: str, stderr: bytes = b"") -> LatticeError:
        text = str(exc)
        if "interrupt" in text:
            return DeadlineExceeded(
                f"{self.name} ran past its deadline of {self.limits.deadline_s:g} s and was interrupted"
            )
        return ActorTrap(f"{self.name} trapped in {operation}: {_reason(exc)}{_last_words(stderr)}")

    # --- calls -------------------------------------------------------------------------------------

    def _call_instance(self, inst: Any, operation: str, payload: bytes, budget_s: float | None = None) -> bytes:
        caller = _CALLERS.get(self.component.kind, _call_guest)
        try:
            with self._guest(inst, operation, budget_s):
                result = caller(self, inst, operation, payload)
        except (ActorError, ActorTrap) as exc:
            raise self._out_of_memory(exc, len(payload)) from None
        if len(result) > self.limits.max_payload_bytes:
            raise LimitExceeded(
                f"response of {len(result)} bytes is over {self.name}'s limit of {self.limits.max_payload_bytes}"
            )
        return result

    def _out_of_memory(self, exc: ActorError | ActorTrap, payload_size: int) -> LatticeError:
        """``LimitExceeded`` naming the memory limit (and how to raise it) for a guest whose allocation
        failed, with what the guest said; a trap on a payload of a quarter of the limit or more (the
        host could not even copy it in, say) says the limit is the likely cause; ``exc`` otherwise."""
        text = str(exc)
        limit = memory_limit(self.limits, component=True)
        if limit and any(marker in text for marker in OUT_OF_MEMORY):
            return LimitExceeded(f"{self.name} ran out of memory at {memory_advice(limit)}: {text[:300]}")
        if limit and isinstance(exc, ActorTrap) and payload_size * 4 >= limit:
            return ActorTrap(
                f"{text}; likely cause: a payload of {payload_size} bytes does not fit in {memory_advice(limit)}"
            )
        return exc

    def run(self, operation: str, fn: Callable[[wasmtime.Store, Any, Any], Any]) -> Any:
        """``fn(store, None, instance)`` on an instance, as one call under the pool's limits."""
        with self.counted(), self._instance() as inst, self._guest(inst, operation):
            return fn(inst.store, None, inst)


def _call_guest(pool: ComponentPool, inst: ComponentInstance, operation: str, payload: bytes) -> bytes:
    """``lattice:actor/guest.handle(operation, payload)``: ``ok`` bytes, or ``err`` → ``ActorError``."""
    plan = pool.component.handle
    assert plan is not None  # checked when compiled
    if plan.fast is not None and operation.isascii():
        # the same core function, the payload as one latin-1 block each way (host.component.binary)
        fast = plan.fast.call(inst.store, inst.func(None, FAST_HANDLE), operation, payload.decode("latin-1"))
        if fast.tag == "ok":
            return str(fast.payload).encode("latin-1")
        raise ActorError(str(fast.payload).encode("latin-1").decode("utf-8", "replace"))
    result = plan.call(inst.store, inst.func(GUEST, "handle"), operation, payload)
    if isinstance(result, str):
        raise ActorError(result)
    return bytes(result)


def _last_words(stderr: bytes) -> str:
    """What a trapping guest said last on stderr, e.g. componentize-py's traceback of an uncaught exception
    (its final line; the runtime's own panic note after it skipped)."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if "panicked at" in line or line.startswith(("note: run with", "Python function threw")):
            continue
        return f" (its stderr: {line[:300]})"
    return ""


def _reason(exc: BaseException) -> str:
    """The useful line of a wasmtime error: the trap's message, else its first line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "wasm trap:" in line:
            return line.split("wasm trap:", 1)[1].strip()
    for i, line in enumerate(lines):
        if line.startswith("Caused by:") and i + 1 < len(lines):
            return lines[i + 1].lstrip("0123456789: ")
    return lines[0] if lines else type(exc).__name__
