"""The binding shim: the few wasmtime-py internals the hot path uses, in one place.

wasmtime-py's checked wrappers rebuild types and convert every value on every call (~20 µs of a ~45 µs echo);
this module calls wasmtime's C API through wasmtime-py's own ctypes bindings instead: export lookup one name at a
time, unchecked calls, guest memory as a raw address, host functions on the unchecked ABI. Those internals are
private, pinned by ``wasmtime>=50,<51`` in pyproject.toml; a new wasmtime-py is checked here and nowhere else.
It knows nothing of waPC or of lattice.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _bindings as _ffi  # private, pinned by wasmtime>=50,<51: the hot path
from wasmtime import _ffi as _ffi_consts
from wasmtime import _func as _wasmtime_func
from wasmtime._extern import wrap_extern as _wrap_extern
from wasmtime._func import maybe_raise_last_exn as _maybe_raise_last_exn

_I32 = wasmtime.ValType.i32()
_EXTERN_FUNC = _ffi_consts.WASMTIME_EXTERN_FUNC.value
_EXTERN_MEMORY = _ffi_consts.WASMTIME_EXTERN_MEMORY.value


class Exports:
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


def store_context(store: wasmtime.Store) -> Any:
    """The store's raw context, for ``unchecked`` and ``memory_address``."""
    return store._context()


def memory_ref(memory: wasmtime.Memory) -> Any:
    return ctypes.byref(memory._memory)


def func_ref(func: wasmtime.Func) -> Any:
    return ctypes.byref(func._func)


def raw_args(n: int) -> Any:
    """``n`` raw value slots: arguments in, results out (``slots[i].i32``)."""
    return (_ffi.wasmtime_val_raw_t * n)()


def memory_address(ctx: Any, mem_ref: Any, ptr: int, length: int) -> int:
    """The host address of ``length`` guest bytes at ``ptr`` (an unsigned i32); ``IndexError`` if outside."""
    ptr &= 0xFFFFFFFF
    size = _ffi.wasmtime_memory_data_size(ctx, mem_ref)
    if ptr + length > size:
        raise IndexError(f"{length} bytes at {ptr} are outside the guest's {size}-byte memory")
    return ctypes.addressof(_ffi.wasmtime_memory_data(ctx, mem_ref).contents) + ptr


def unchecked(ctx: Any, func_ref: Any, slots: Any, n: int) -> None:
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


def call_unit(store: wasmtime.Store, func: wasmtime.Func) -> None:
    """Call a ``() -> ()`` export."""
    unchecked(store._context(), ctypes.byref(func._func), (_ffi.wasmtime_val_raw_t * 1)(), 1)


def raw_callback(func: Callable[..., Any], n_params: int, n_results: int) -> Any:
    """A host function on wasmtime's unchecked ABI: i32 params in, at most one i32 result out.

    wasmtime-py's own trampoline wraps every value in a ``Val`` both ways (~3 µs a call, four calls a
    request); the types are fixed by the caller, so raw slots do. An exception is handed
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
# No finalizer (NULL): a ctypes one may already be freed when a linker is collected at interpreter exit,
# and wasmtime calls it then (a segfault at exit).
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()  # a NULL function pointer


def define_raw(
    linker: wasmtime.Linker, module: str, name: str, func: Callable[..., Any], n_params: int, n_results: int
) -> None:
    callback = _CALLBACKS.get(name)
    if callback is None:
        callback = _CALLBACKS[name] = raw_callback(func, n_params, n_results)
    ty = wasmtime.FuncType([_I32] * n_params, [_I32] * n_results)
    m, n = module.encode(), name.encode()
    error = _ffi.wasmtime_linker_define_func_unchecked(
        linker.ptr(), m, len(m), n, len(n), ty.ptr(), callback, None, _NO_FINALIZER
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
