"""The Wasm runtime: one engine, a module cache, one ``Linker`` with the waPC ABI, and actor pools.

Owns SPEC §1 (the waPC ABI and WASI grants) and the per-actor limits. It knows nothing of NATS: a
host call leaves through the ``HostCall`` callback the pool is given, so the same runtime serves the
lattice host and embedding programs (``host.sandbox``, which also runs modules that are not waPC
actors — ``abi="function"`` — through ``ActorPool.run`` and owns their plain-function ABI).

Costs paid for here, measured on this machine: compiling a small module 1.4–2 ms (so compiled modules
are cached by SHA-256 in memory and serialized on disk), a new Store + instantiate ~16 µs through an
``InstancePre``, a Python→Wasm call 8–25 µs. Host functions are defined once on one ``Linker``; the
instance being called is found through a thread-local, since a Store is only ever used by the thread
that calls into it.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import structlog
import wasmtime
from wasmtime import _bindings as _ffi  # private, pinned by wasmtime>=50,<51: the hot path
from wasmtime import _ffi as _ffi_consts
from wasmtime import _func as _wasmtime_func
from wasmtime._extern import wrap_extern as _wrap_extern
from wasmtime._func import maybe_raise_last_exn as _maybe_raise_last_exn

from host.limits import MAX_GUEST_ERROR, MAX_LOG_LINE, apply_store_limits, bounded_sink
from lattice import abi as abi_mod
from lattice import claims as claims_mod
from lattice.errors import (
    ActorError,
    ActorTrap,
    Busy,
    DeadlineExceeded,
    InvalidActor,
    LatticeError,
    LimitExceeded,
)

log = structlog.get_logger("host.runtime")

WAPC_MODULES = abi_mod.WAPC_MODULES
# SPEC §1 order; a WASI reactor (`-mexec-model=reactor`) needs `_initialize` first, as WASI prescribes.
START_FUNCTIONS = ("_initialize", "_start", "wapc_init", "start")
FUNCTION_START_FUNCTIONS = ("_initialize",)  # a WASI reactor's initializer; plain-function modules only
EPOCH_TICK_S = 0.005
PAGE = 65536

Abi = Literal["wapc", "function"]
"""``wapc``: a waPC actor (SPEC §1). ``function``: a plain-function module (docs/embedding.md)."""

HostCall = Callable[[str, str, str, bytes], bytes]
"""``(binding, namespace, operation, payload) -> result``; raises ``LatticeError`` to fail the call."""

LogSink = Callable[[str, str], None]
"""``(stream, text)``: a guest's ``__console_log`` line (stream ``console``) or WASI stdout/stderr."""


@dataclass(frozen=True, slots=True)
class ActorLimits:
    """Per-actor limits (SPEC-silent defaults chosen for a shared host).

    ``deadline_s`` per call (epoch interruption), ``max_memory_bytes`` of linear memory per instance,
    ``max_instances`` running at once, ``max_waiting`` calls queued behind them before ``Busy``,
    ``max_payload_bytes`` per request and response.
    """

    deadline_s: float = 10.0
    max_memory_bytes: int = 64 * 1024 * 1024
    max_instances: int = 16
    max_waiting: int = 1024
    max_payload_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WasiGrants:
    """What a WASI actor may touch (SPEC §1): guest path → host path, env, args; for wasi:http components
    the hosts outgoing HTTP may reach (``allowed_hosts``). Nothing by default."""

    dirs: dict[str, str] = field(default_factory=dict)
    readonly: bool = False
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledActor:
    """A validated, compiled module ready to instantiate. ``digest`` is ``sha256:<hex>``."""

    digest: str
    module: wasmtime.Module
    pre: wasmtime.InstancePre
    uses_wasi: bool
    claims: claims_mod.ActorClaims | None
    actor_id: str
    size: int
    abi: Abi = "wapc"


class _Call:
    """State of one instance: the current request and the last host call's result or error."""

    __slots__ = (
        "args",
        "ctx",
        "error",
        "exports",
        "func_ref",
        "guest_call",
        "host_error",
        "host_response",
        "inline",
        "mem_ref",
        "memory",
        "msg",
        "op",
        "pool",
        "response",
        "store",
    )

    def __init__(self, pool: ActorPool, store: wasmtime.Store, memory: wasmtime.Memory, exports: Any) -> None:
        self.pool = pool
        self.store = store
        self.memory = memory
        self.exports = exports
        self.guest_call = exports.get("__guest_call")
        # Raw handles for the hot path (see ``_call_guest``, ``_span``): wasmtime-py's checked wrappers
        # rebuild types and convert values on every call, ~20 µs of a ~45 µs echo.
        self.ctx = store._context()
        self.mem_ref = ctypes.byref(memory._memory)
        self.func_ref = ctypes.byref(self.guest_call._func) if isinstance(self.guest_call, wasmtime.Func) else None
        self.args = (_ffi.wasmtime_val_raw_t * 2)()
        self.inline = False
        self.op = b""
        self.msg = b""
        self.response: bytes | None = None
        self.error: str | None = None
        self.host_response = b""
        self.host_error = b""


_EXTERN_FUNC = _ffi_consts.WASMTIME_EXTERN_FUNC.value
_EXTERN_MEMORY = _ffi_consts.WASMTIME_EXTERN_MEMORY.value


class _Exports:
    """An instance's exports, looked up one name at a time (``Instance.exports`` wraps every export of
    the module on first use: ~11 µs of a ~23 µs instantiation for nothing the host reads)."""

    __slots__ = ("_cache", "_ctx", "_instance")

    def __init__(self, store: wasmtime.Store, instance: wasmtime.Instance) -> None:
        self._ctx = store._context()
        self._instance = ctypes.byref(instance._instance)
        self._cache: dict[str, Any] = {}

    def get(self, name: str, default: Any = None) -> Any:
        if name in self._cache:
            return self._cache[name]
        item = _ffi.wasmtime_extern_t()
        raw = name.encode()
        found = _ffi.wasmtime_instance_export_get(self._ctx, self._instance, raw, len(raw), ctypes.byref(item))
        kind = int(item.kind)
        if not found:
            value = default
        elif kind == _EXTERN_FUNC:
            value = wasmtime.Func._from_raw(item.of.func)
        elif kind == _EXTERN_MEMORY:
            value = wasmtime.Memory._from_raw(item.of.memory)
        else:
            value = _wrap_extern(item)
        self._cache[name] = value
        return value

    def __getitem__(self, name: str) -> Any:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value


_current = threading.local()


def _inst() -> _Call:
    inst: _Call = _current.inst
    return inst


def _span(inst: _Call, ptr: int, length: int) -> int:
    """The host address of ``length`` guest bytes at ``ptr`` (an unsigned i32); ``IndexError`` if outside."""
    ptr &= 0xFFFFFFFF
    size = _ffi.wasmtime_memory_data_size(inst.ctx, inst.mem_ref)
    if ptr + length > size:
        raise IndexError(f"{length} bytes at {ptr} are outside the guest's {size}-byte memory")
    return ctypes.addressof(_ffi.wasmtime_memory_data(inst.ctx, inst.mem_ref).contents) + ptr


def _read(inst: _Call, ptr: int, length: int) -> bytes:
    if length <= 0:
        return b""
    return ctypes.string_at(_span(inst, ptr, length), length)


def _write(inst: _Call, ptr: int, data: bytes) -> None:
    if data:
        ctypes.memmove(_span(inst, ptr, len(data)), data, len(data))


def _unchecked(ctx: Any, func_ref: Any, slots: Any, n: int) -> None:
    """wasmtime's unchecked call (the caller checked the function's type); traps and errors raise exactly as
    wasmtime-py's ``Func.__call__`` does, an exception from a host function first."""
    trap = ctypes.POINTER(_ffi.wasm_trap_t)()
    error = _ffi.wasmtime_func_call_unchecked(ctx, func_ref, slots, n, ctypes.byref(trap))
    if error:
        _maybe_raise_last_exn()
        raise wasmtime.WasmtimeError._from_ptr(error)
    if trap:
        trap_obj = wasmtime.Trap._from_ptr(trap)
        _maybe_raise_last_exn()
        raise trap_obj


def _call_unit(store: wasmtime.Store, func: wasmtime.Func) -> None:
    """Call a ``() -> ()`` export."""
    _unchecked(store._context(), ctypes.byref(func._func), (_ffi.wasmtime_val_raw_t * 1)(), 1)


def _call_guest(inst: _Call, op_len: int, msg_len: int) -> int:
    """``__guest_call(op_len, msg_len)`` (its signature was checked at compile time)."""
    args = inst.args
    args[0].i32 = op_len
    args[1].i32 = msg_len
    _unchecked(inst.ctx, inst.func_ref, args, 2)
    result: int = args[0].i32
    return result


# --- the nine waPC host functions (SPEC §1), defined once for both import modules ---------------


def _guest_request(op_ptr: int, msg_ptr: int) -> None:
    inst = _inst()
    _write(inst, op_ptr, inst.op)
    _write(inst, msg_ptr, inst.msg)


def _guest_response(ptr: int, length: int) -> None:
    inst = _inst()
    if length > inst.pool.limits.max_payload_bytes:
        inst.error = f"response of {length} bytes is over the limit of {inst.pool.limits.max_payload_bytes}"
        return
    inst.response = _read(inst, ptr, length)


def _guest_error(ptr: int, length: int) -> None:
    inst = _inst()
    kept = min(length, MAX_GUEST_ERROR)
    inst.error = _read(inst, ptr, kept).decode("utf-8", "replace")
    if kept < length:
        inst.error += f"… ({length - kept} more bytes cut)"


def _host_call(
    bd_ptr: int, bd_len: int, ns_ptr: int, ns_len: int, op_ptr: int, op_len: int, ptr: int, length: int
) -> int:
    inst = _inst()
    if inst.inline:
        raise NotInline  # unwinds the guest; nothing left the instance yet, so the call can run again
    inst.host_response = b""
    inst.host_error = b""
    try:
        binding = _read(inst, bd_ptr, bd_len).decode()
        namespace = _read(inst, ns_ptr, ns_len).decode()
        operation = _read(inst, op_ptr, op_len).decode()
        payload = _read(inst, ptr, length)
        inst.host_response = inst.pool.host_call(binding, namespace, operation, payload)
        return 1
    except LatticeError as exc:
        inst.host_error = str(exc).encode()
    except Exception as exc:  # a host call must never trap the guest (SPEC §2)
        log.exception("host call failed", actor_id=inst.pool.actor_id)
        inst.host_error = f"host call failed: {exc}".encode()
    return 0


def _host_response_len() -> int:
    return len(_inst().host_response)


def _host_response(ptr: int) -> None:
    inst = _inst()
    _write(inst, ptr, inst.host_response)


def _host_error_len() -> int:
    return len(_inst().host_error)


def _host_error(ptr: int) -> None:
    inst = _inst()
    _write(inst, ptr, inst.host_error)


def _console_log(ptr: int, length: int) -> None:
    inst = _inst()
    text = _read(inst, ptr, min(length, MAX_LOG_LINE)).decode("utf-8", "replace")
    if length > MAX_LOG_LINE:
        text += f"… ({length - MAX_LOG_LINE} more bytes cut)"
    inst.pool.log_sink("console", text)


INLINE_BUDGET_S = 0.002  # at least two epoch ticks are granted, so a call never loses to a tick boundary
INLINE_STRIKES = 3  # calls that had to be re-run before an actor stops being tried inline


class NotInline(BaseException):
    """Unwinds a ``call_inline`` that must run elsewhere; never escapes ``ActorPool``."""


class _Abort(Exception):
    """Raised from ``env.abort`` to unwind the guest; the message becomes the call's error."""


def _as_string(inst: _Call, ptr: int) -> str:
    """An AssemblyScript string: UTF-16LE, its byte length in the u32 just before ``ptr``."""
    if ptr < 4:
        return ""
    try:
        n = int.from_bytes(_read(inst, ptr - 4, 4), "little")
        return _read(inst, ptr, min(n, 4096)).decode("utf-16-le", "replace")
    except Exception:
        return ""


def _abort(msg_ptr: int, file_ptr: int, line: int, col: int) -> None:
    inst = _inst()
    message, file = _as_string(inst, msg_ptr), _as_string(inst, file_ptr)
    raise _Abort(f"abort: {message or 'guest aborted'} at {file or '?'}:{line}:{col}")


_I32 = wasmtime.ValType.i32()
_T = TypeVar("_T")
_IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "__guest_request": _guest_request,
    "__guest_response": _guest_response,
    "__guest_error": _guest_error,
    "__host_call": _host_call,
    "__host_response_len": _host_response_len,
    "__host_response": _host_response,
    "__host_error_len": _host_error_len,
    "__host_error": _host_error,
    "__console_log": _console_log,
}
# the signatures are the ABI's (lattice.abi); only the implementations live here
_HOST_FUNCTIONS = {name: (_IMPLEMENTATIONS[name], *shape) for name, shape in abi_mod.HOST_FUNCTIONS.items()}


def _raw_callback(func: Callable[..., Any], n_params: int, n_results: int) -> Any:
    """A host function on wasmtime's unchecked ABI: i32 params in, at most one i32 result out.

    wasmtime-py's own trampoline wraps every value in a ``Val`` both ways (~3 µs a call, four calls a
    request); the types here are fixed by ``_HOST_FUNCTIONS``, so raw slots do. An exception is handed
    to wasmtime-py the way its trampoline does, so callers see it re-raised after the trap.
    """

    def callback(env: Any, caller: Any, args: Any, nargs: int) -> int:
        try:
            result = func(*[args[i].i32 for i in range(n_params)])
            if n_results:
                args[0].i32 = result
            return 0
        except BaseException as exc:
            # wasmtime-py keeps any exception here (its stub says Exception) and re-raises it after the trap
            _wasmtime_func.LAST_EXCEPTION = exc  # type: ignore[assignment]
            trap = wasmtime.Trap("python exception")._consume()
            return ctypes.cast(trap, ctypes.c_void_p).value or 0

    return _ffi.wasmtime_func_unchecked_callback_t(callback)


_CALLBACKS: dict[str, Any] = {}  # made once per process: ctypes callbacks must outlive every linker
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda data: None)


def _define_raw(
    linker: wasmtime.Linker, module: str, name: str, func: Callable[..., Any], n_params: int, n_results: int
) -> None:
    callback = _CALLBACKS.get(name)
    if callback is None:
        callback = _CALLBACKS[name] = _raw_callback(func, n_params, n_results)
    ty = wasmtime.FuncType([_I32] * n_params, [_I32] * n_results)
    m, n = module.encode(), name.encode()
    error = _ffi.wasmtime_linker_define_func_unchecked(
        linker.ptr(), m, len(m), n, len(n), ty.ptr(), callback, None, _NO_FINALIZER
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


class Runtime:
    """One wasmtime engine with epoch interruption, a module cache and the shared ``Linker``.

    ``cache_dir`` holds serialized compiled modules (``<sha256>.cwasm``); ``None`` keeps them in memory
    only. ``close()`` stops the epoch ticker. Thread-safe.
    """

    def __init__(self, cache_dir: Path | None = None, *, epoch_tick_s: float = EPOCH_TICK_S) -> None:
        config = wasmtime.Config()
        config.epoch_interruption = True
        config.cranelift_opt_level = "speed"
        self.engine = wasmtime.Engine(config)
        self.epoch_tick_s = epoch_tick_s
        self.cache_dir = cache_dir / f"wasmtime-{wasmtime.__name__}-50" if cache_dir else None
        self._modules: dict[str, CompiledActor] = {}
        self._lock = threading.Lock()
        self.linker = wasmtime.Linker(self.engine)
        self.linker.allow_shadowing = True
        for module_name in WAPC_MODULES:
            for name, (func, n_params, n_results) in _HOST_FUNCTIONS.items():
                _define_raw(self.linker, module_name, name, func, n_params, n_results)
        _define_raw(self.linker, "env", "abort", _abort, 4, 0)
        self.linker.define_wasi()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="epoch-ticker", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.epoch_tick_s):
            self.engine.increment_epoch()

    def close(self) -> None:
        self._stop.set()

    def compile(self, wasm: bytes, *, abi: Abi = "wapc") -> CompiledActor:
        """Validate and compile ``wasm`` (or return the cached result for the same bytes and ABI).

        Raises ``InvalidActor`` naming the reason: not Wasm, no ``__guest_call``/``memory`` export (for
        ``abi="function"``: no ``memory``/``alloc`` export), an import the host does not provide, or a
        signature mismatch.
        """
        digest = "sha256:" + hashlib.sha256(wasm).hexdigest()
        key = digest if abi == "wapc" else f"{abi}:{digest}"
        cached = self._modules.get(key)
        if cached is not None:
            return cached
        module = self._load_module(wasm, digest)
        compiled = self._check(wasm, digest, module, abi)
        with self._lock:
            self._modules[key] = compiled
        return compiled

    def _load_module(self, wasm: bytes, digest: str) -> wasmtime.Module:
        path = self.cache_dir / f"{digest[7:]}.cwasm" if self.cache_dir else None
        if path is not None and path.exists():
            with contextlib.suppress(Exception):  # a stale or foreign cache entry: recompile
                return wasmtime.Module.deserialize(self.engine, path.read_bytes())
        if not wasm.startswith(b"\0asm"):
            raise InvalidActor("not a WebAssembly module (bad magic number)")
        try:
            module = wasmtime.Module(self.engine, wasm)
        except Exception as exc:
            raise InvalidActor(f"invalid WebAssembly module: {_first_line(exc)}") from exc
        if path is not None:
            with contextlib.suppress(OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(module.serialize())
                tmp.replace(path)
        return module

    def _check(self, wasm: bytes, digest: str, module: wasmtime.Module, abi: Abi) -> CompiledActor:
        if abi == "wapc":
            uses_wasi = abi_mod.check_wapc(module)
        elif not isinstance({e.name: e.type for e in module.exports}.get("memory"), wasmtime.MemoryType):
            raise InvalidActor("not a plain-function module: it does not export its memory")
        else:
            uses_wasi = abi_mod.check_imports(module)
        try:
            pre = self.linker.instantiate_pre(module)
        except Exception as exc:
            raise InvalidActor(f"the actor's imports do not match the waPC ABI: {_first_line(exc)}") from exc
        try:
            actor_claims = claims_mod.extract_claims(wasm)
        except LatticeError as exc:
            raise InvalidActor(f"unreadable claims: {exc}") from exc
        actor_id = actor_claims.sub if actor_claims else claims_mod.actor_id_of(wasm)
        return CompiledActor(digest, module, pre, uses_wasi, actor_claims, actor_id, len(wasm), abi)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _trap_message(exc: BaseException) -> str:
    text = str(exc)
    for line in text.splitlines():
        if "wasm trap:" in line:
            return line.strip().removeprefix("wasm trap:").strip()
    return _first_line(exc)


LINE_BUFFER = 4096  # bytes of a WASI output line held back waiting for its end (``line_buffered``)


class ActorPool:
    """The instances of one actor on one host, and the only way to call it.

    At most ``limits.max_instances`` calls run at once (one per instance); up to ``limits.max_waiting``
    more wait for an instance, later ones fail with ``Busy``. An instance that traps, aborts or runs
    past its deadline is discarded; the others keep serving. ``call`` (waPC) and ``run`` (any other
    ABI, e.g. the plain functions of ``host.sandbox``) are synchronous and thread-safe. ``name`` is how
    errors name the actor (default: its id).
    """

    line_buffered = False  # WASI stdout/stderr to the log sink in whole lines (up to ``LINE_BUFFER``)

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
        # only () -> () exports are start functions: they run through the unchecked call (``_call_unit``)
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
        self.host_call: HostCall = host_call or _no_host_calls
        self.log_sink: LogSink = bounded_sink(log_sink) if log_sink else (lambda stream, text: None)
        self.api_version = 0
        self._idle: deque[Any] = deque()
        self._slots = threading.BoundedSemaphore(self.limits.max_instances)
        self._waiting = 0
        self._in_flight = 0
        self._instances = 0
        self._lock = threading.Lock()
        self._outputs = _LiveCount()
        self._closed = False
        self.inline_eligible = True
        self._inline_strikes = 0
        self.calls = 0
        self.failures = 0

    # --- instances -------------------------------------------------------------------------------

    def _new_instance(self) -> _Call:
        store = wasmtime.Store(self.runtime.engine)
        apply_store_limits(store, self.limits)
        if self.compiled.uses_wasi:
            store.set_wasi(self._wasi_config())
        store.set_epoch_deadline(self._deadline_ticks())
        try:
            instance = self.compiled.pre.instantiate(store)
        except Exception as exc:
            raise InvalidActor(f"cannot instantiate {self.name}: {_first_line(exc)}") from exc
        exports = _Exports(store, instance)
        memory = exports["memory"]
        assert isinstance(memory, wasmtime.Memory)  # checked at compile time
        inst = _Call(self, store, memory, exports)
        previous = getattr(_current, "inst", None)
        _current.inst = inst
        try:
            for name in self._starts:
                func = exports[name]
                assert isinstance(func, wasmtime.Func)
                self._run_start(store, func, name)
            if self._version_export is not None:  # the same for every instance: asked once
                func = exports[self._version_export]
                self._version_export = None
                if isinstance(func, wasmtime.Func):
                    with contextlib.suppress(Exception):
                        self.api_version = int(func(store))
        finally:
            _current.inst = previous
        with self._lock:
            self._instances += 1
        return inst

    def _run_start(self, store: wasmtime.Store, func: wasmtime.Func, name: str) -> None:
        try:
            _call_unit(store, func)
        except wasmtime.ExitTrap as exc:
            if exc.code != 0:
                raise InvalidActor(f"{name} exited with status {exc.code}") from exc
        except Exception as exc:
            raise InvalidActor(f"{self.name} failed in {name}: {_trap_message(exc)}") from exc

    def _wasi_config(self) -> wasmtime.WasiConfig:
        cfg = wasmtime.WasiConfig()
        if self.wasi.env:
            cfg.env = list(self.wasi.env.items())
        if self.wasi.args:
            cfg.argv = list(self.wasi.args)
        for guest, host_path in self.wasi.dirs.items():
            cfg.preopen_dir(host_path, guest, fs_mutable=not self.wasi.readonly)
        cfg.stdout_custom = self._output("stdout")
        cfg.stderr_custom = self._output("stderr")
        return cfg

    def _output(self, stream: str) -> Callable[[bytes], None]:
        """A WASI output sink, counted until wasmtime releases it.

        wasmtime releases a store's sinks from one of its own threads just after the store closes; one
        released while Python shuts down aborts that thread with a panic, so ``close`` waits for them.
        """
        log_sink = self.log_sink
        pending = bytearray()

        def sink(data: bytes) -> None:
            if not self.line_buffered:
                log_sink(stream, bytes(data).decode("utf-8", "replace"))
                return
            pending.extend(data)  # whole lines only: some guests write a line in pieces
            end = pending.rfind(b"\n") + 1 if len(pending) < LINE_BUFFER else len(pending)
            if end:
                log_sink(stream, bytes(pending[:end]).decode("utf-8", "replace"))
                del pending[:end]

        self._outputs.add()
        weakref.finalize(sink, self._outputs.release)
        return sink

    def _deadline_ticks(self) -> int:
        return max(1, round(self.limits.deadline_s / self.runtime.epoch_tick_s))

    @contextlib.contextmanager
    def _instance(self, *, wait: bool = True) -> Iterator[_Call]:
        if not wait:
            if self._closed or not self._slots.acquire(blocking=False):
                raise NotInline("busy")
            yield from self._hold_slot(create=False)
            return
        with self._lock:
            if self._closed:
                raise Busy(f"actor {self.name} is stopping")
            if self._waiting >= self.limits.max_waiting:
                raise Busy(
                    f"actor {self.name} is busy: {self.limits.max_instances} calls running and "
                    f"{self._waiting} waiting; retry later or raise max_instances"
                )
            self._waiting += 1
        try:
            acquired = self._slots.acquire(timeout=self.limits.deadline_s)
        finally:
            with self._lock:
                self._waiting -= 1
        if not acquired:
            raise Busy(f"actor {self.name} is busy: no instance free within {self.limits.deadline_s:g} s")
        yield from self._hold_slot()

    def _hold_slot(self, *, create: bool = True) -> Iterator[_Call]:
        """With a slot held: an idle (or new) instance for the call, put back after, discarded on error.

        ``create=False`` (the event loop's inline calls): never instantiate here, since start functions
        are guest code that may run up to the deadline; ``NotInline("busy")`` instead.
        """
        with self._lock:
            self._in_flight += 1
        inst: _Call | None = None
        try:
            try:
                inst = self._idle.popleft()
            except IndexError:
                if not create:
                    raise NotInline("busy") from None
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
            self._slots.release()

    def _reusable(self, inst: Any) -> bool:
        """Whether an instance whose call ended without an exception may serve again (a component
        pool's caller may answer a trap as a response: that instance is not)."""
        return True

    def _discard(self, inst: _Call) -> None:
        with self._lock:
            self._instances -= 1
        inst.store.close()

    @contextlib.contextmanager
    def _guest(self, inst: _Call, operation: str, budget_s: float | None = None) -> Iterator[None]:
        """Runs guest code of one call on ``inst``: a fresh deadline, host functions bound, traps typed."""
        ticks = self._deadline_ticks() if budget_s is None else max(2, round(budget_s / self.runtime.epoch_tick_s))
        inst.store.set_epoch_deadline(ticks)
        previous = getattr(_current, "inst", None)
        _current.inst = inst
        try:
            yield
        except _Abort as exc:
            raise ActorError(str(exc)) from None
        except wasmtime.Trap as exc:
            raise self._classify_trap(inst, exc) from None
        except wasmtime.WasmtimeError as exc:
            raise ActorTrap(f"{self.name} trapped in {operation}: {_trap_message(exc)}") from None
        except (IndexError, ValueError, OverflowError) as exc:
            # A host function given pointers outside the guest's memory: the guest's fault, not ours.
            raise ActorTrap(f"{self.name} trapped in {operation}: bad memory access ({exc})") from None
        finally:
            _current.inst = previous

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
        self.calls += 1
        try:
            with self._instance() as inst:
                return self._call_instance(inst, operation, payload)
        except LatticeError:
            self.failures += 1
            raise

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
        try:
            with self._instance(wait=False) as inst:
                inst.inline = True
                try:
                    result = self._call_instance(inst, operation, payload, budget_s=INLINE_BUDGET_S)
                finally:
                    inst.inline = False
        except NotInline as exc:
            if exc.args != ("busy",):
                self._inline_strike()
            return None
        except DeadlineExceeded:
            self._inline_strike()
            return None
        self.calls += 1
        return result

    def _inline_strike(self) -> None:
        self._inline_strikes += 1
        if self._inline_strikes >= INLINE_STRIKES:
            self.inline_eligible = False

    def run(self, operation: str, fn: Callable[[wasmtime.Store, wasmtime.Memory, Any], _T]) -> _T:
        """Runs ``fn(store, memory, exports)`` on an instance, as one call under the pool's limits.

        The path for ABIs other than waPC (``host.sandbox``'s plain functions): ``fn`` calls the guest's
        exports; the deadline covers all of them; traps, aborts and the deadline raise as in ``call`` and
        discard the instance, as does any exception ``fn`` raises. ``operation`` names the call in errors.
        """
        self.calls += 1
        try:
            with self._instance() as inst, self._guest(inst, operation):
                return fn(inst.store, inst.memory, inst.exports)
        except LatticeError:
            self.failures += 1
            raise

    def _call_instance(self, inst: _Call, operation: str, payload: bytes, budget_s: float | None = None) -> bytes:
        op = operation.encode()
        inst.op, inst.msg, inst.response, inst.error = op, payload, None, None
        try:
            with self._guest(inst, operation, budget_s):
                ok = _call_guest(inst, len(op), len(payload))
        finally:
            inst.msg = b""
        if ok != 1 or inst.error is not None:
            if inst.error is not None:
                raise ActorError(inst.error)
            raise ActorError(f"{self.name} failed {operation} without an error message")
        return inst.response or b""

    def _classify_trap(self, inst: _Call, exc: wasmtime.Trap) -> Exception:
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


class _LiveCount:
    """A count of live objects that can be waited on; released from any thread, even re-entrantly."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.RLock())
        self._count = 0

    def add(self) -> None:
        with self._changed:
            self._count += 1

    def release(self) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    def wait_until_at_most(self, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._count <= count, timeout)


def _no_host_calls(binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
    raise LatticeError(f"host calls are not available here ({namespace} {operation})")
