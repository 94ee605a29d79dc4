"""Component values at the C level: host functions and resources defined on wasmtime's C API directly.

wasmtime-py's own path (``LinkerInstance.add_func``) rebuilds the function's type and converts every
argument through ``component/_types.py`` on each call, element by element for ``list<u8>``. The WASI
functions here have signatures fixed by their WIT, so each reads and writes ``wasmtime_component_val_t``
in place: a ``list<u8>`` moves as one block (a strided slice over the C array), resources go to and from
their ``rep`` with two C calls. Arguments are borrowed (wasmtime frees them after the callback); results
are built with wasmtime's allocators, which it frees after reading them.

Owns: the value helpers, ``define_func``/``define_resource`` and the ``HostTrap`` that turns a host
function's failure into a trap. Knows nothing of WASI or HTTP.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import structlog
import wasmtime
from wasmtime import _bindings as _ffi  # private, pinned by wasmtime>=50,<51
from wasmtime.component import LinkerInstance, ResourceType

log = structlog.get_logger("host.component.wasi_http")

VAL = _ffi.wasmtime_component_val
VAL_SIZE = ctypes.sizeof(VAL)
_OF = VAL.of.offset
BOOL, U8, U16, U32, U64, STRING, LIST, RECORD, TUPLE, VARIANT, ENUM, OPTION, RESULT, RESOURCE = (
    0, 2, 4, 6, 8, 12, 13, 14, 15, 16, 17, 18, 19, 21,
)  # fmt: skip
_U8_KIND = bytes([U8])

_dll = _ffi.dll  # type: ignore[attr-defined]
_P = ctypes.c_void_p


def _raw(name: str, restype: Any, *argtypes: Any) -> Any:
    """A C function taking plain addresses: no per-argument type checks on the hot path."""
    return ctypes.CFUNCTYPE(restype, *argtypes)((name, _dll))


_to_host = _raw("wasmtime_component_resource_any_to_host", _P, _P, _P, _P)
_host_new = _raw("wasmtime_component_resource_host_new", _P, ctypes.c_bool, ctypes.c_uint32, ctypes.c_uint32)
_host_rep = _raw("wasmtime_component_resource_host_rep", ctypes.c_uint32, _P)
_host_delete = _raw("wasmtime_component_resource_host_delete", None, _P)
_host_to_any = _raw("wasmtime_component_resource_host_to_any", _P, _P, _P, _P)
_byte_vec_new_uninit = _ffi._wasm_byte_vec_new_uninitialized
_valrecord_new_uninit = _ffi._wasmtime_component_valrecord_new_uninit
_vallist_new_uninit = _ffi._wasmtime_component_vallist_new_uninit
_valtuple_new_uninit = _ffi._wasmtime_component_valtuple_new_uninit
_val_new = _ffi._wasmtime_component_val_new
_AnyPtr = ctypes.POINTER(_ffi.wasmtime_component_resource_any_t)

Ctx = Any  # POINTER(wasmtime_context_t)
Vals = Any  # POINTER(wasmtime_component_val_t)
HostFunc = Callable[[Ctx, Vals, Vals], None]
"""``(context, args, results)``: reads ``args[i]``, writes ``results[0]``; raises to trap the guest."""


class HostTrap(Exception):
    """Raised by a host function to trap the guest with this message (the guest broke the contract)."""


# --- reading arguments (borrowed) ----------------------------------------------------------------------


def rep(ctx: Ctx, val: Any) -> int:
    """The ``rep`` of a host resource passed as ``own`` or ``borrow`` (an own leaves the store's table)."""
    host = _P()
    error = _to_host(ctx, val.of.resource, ctypes.byref(host))
    if error:
        raise wasmtime.WasmtimeError._from_ptr(ctypes.cast(error, ctypes.POINTER(_ffi.wasmtime_error_t)))
    value: int = _host_rep(host)
    _host_delete(host)
    return value


def string(val: Any) -> str:
    vec = val.of.string
    return ctypes.string_at(vec.data, vec.size).decode() if vec.size else ""


def blob(val: Any) -> bytes:
    """A ``list<u8>`` as bytes, in one copy."""
    n = val.of.list.size
    if not n:
        return b""
    return ctypes.string_at(val.of.list.data, n * VAL_SIZE)[_OF::VAL_SIZE]


def case(val: Any) -> tuple[str, Any]:
    """A variant's case name and its payload value (``None`` if it has none)."""
    var = val.of.variant
    name = ctypes.string_at(var.discriminant.data, var.discriminant.size).decode()
    return name, (var.val.contents if var.val else None)


def option(val: Any) -> Any:
    """An option's payload value, or ``None``."""
    return val.of.option.contents if val.of.option else None


def items(val: Any) -> list[Any]:
    """The elements of a list or tuple value."""
    seq = val.of.list
    return [seq.data[i] for i in range(seq.size)]


# --- writing results (owned by wasmtime afterwards) ---------------------------------------------------


def put_own(ctx: Ctx, out: Any, type_id: int, value: int) -> None:
    host = _host_new(True, value, type_id)
    any_ptr = _AnyPtr()
    error = _host_to_any(ctx, host, ctypes.byref(any_ptr))
    _host_delete(host)
    if error:
        raise wasmtime.WasmtimeError._from_ptr(ctypes.cast(error, ctypes.POINTER(_ffi.wasmtime_error_t)))
    out.kind = RESOURCE
    out.of.resource = any_ptr


def put_bool(out: Any, value: bool) -> None:
    out.kind = BOOL
    out.of.boolean = value


def put_u16(out: Any, value: int) -> None:
    out.kind = U16
    out.of.u16 = value


def put_u32(out: Any, value: int) -> None:
    out.kind = U32
    out.of.u32 = value


def put_u64(out: Any, value: int) -> None:
    out.kind = U64
    out.of.u64 = value


def _name(vec: Any, text: str) -> None:
    raw = text.encode()
    _byte_vec_new_uninit(ctypes.byref(vec), len(raw))
    if raw:
        ctypes.memmove(vec.data, raw, len(raw))


def put_string(out: Any, text: str) -> None:
    out.kind = STRING
    _name(out.of.string, text)


def put_blob(out: Any, data: bytes) -> None:
    """A ``list<u8>`` from bytes, in one copy."""
    out.kind = LIST
    n = len(data)
    _vallist_new_uninit(ctypes.byref(out.of.list), n)
    if n:
        buf = bytearray(n * VAL_SIZE)
        buf[0::VAL_SIZE] = _U8_KIND * n
        buf[_OF::VAL_SIZE] = data
        ctypes.memmove(out.of.list.data, bytes(buf), len(buf))


def put_list(out: Any, values: list[Any], fill: Callable[[Any, Any], None]) -> None:
    out.kind = LIST
    _vallist_new_uninit(ctypes.byref(out.of.list), len(values))
    data = out.of.list.data
    for i, value in enumerate(values):
        fill(data[i], value)


def put_tuple(out: Any, fills: list[Callable[[Any], None]]) -> None:
    out.kind = TUPLE
    _valtuple_new_uninit(ctypes.byref(out.of.tuple), len(fills))
    data = out.of.tuple.data
    for i, fill in enumerate(fills):
        fill(data[i])


def put_record(out: Any, fields: list[tuple[str, Callable[[Any], None]]]) -> None:
    out.kind = RECORD
    _valrecord_new_uninit(ctypes.byref(out.of.record), len(fields))
    data = out.of.record.data
    for i, (name, fill) in enumerate(fields):
        _name(data[i].name, name)
        fill(data[i].val)


def _boxed(fill: Callable[[Any], None] | None) -> Any:
    if fill is None:
        return None
    tmp = VAL()
    fill(tmp)
    return _val_new(ctypes.byref(tmp))


def put_option(out: Any, fill: Callable[[Any], None] | None) -> None:
    """``some`` with the value ``fill`` writes, or ``none`` when ``fill`` is ``None``."""
    out.kind = OPTION
    out.of.option = _boxed(fill)


def put_result(out: Any, ok: bool, fill: Callable[[Any], None] | None = None) -> None:
    out.kind = RESULT
    out.of.result.is_ok = ok
    out.of.result.val = _boxed(fill)


def put_variant(out: Any, name: str, fill: Callable[[Any], None] | None = None) -> None:
    out.kind = VARIANT
    _name(out.of.variant.discriminant, name)
    out.of.variant.val = _boxed(fill)


def put_enum(out: Any, name: str) -> None:
    out.kind = ENUM
    _name(out.of.enumeration, name)


# --- defining functions and resources ------------------------------------------------------------------

_DTORS: dict[tuple[str, Callable[[int], None]], Any] = {}  # kept for good: linkers hold them
# No finalizer (NULL): a ctypes one may already be freed when a linker is collected at interpreter exit,
# and wasmtime calls it then (a segfault at exit).
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()  # a NULL function pointer


def _trap(message: str) -> int:
    error = wasmtime.WasmtimeError(message)._consume()
    return ctypes.cast(error, ctypes.c_void_p).value or 0


# the callback's pointers as plain addresses: ctypes makes no pointer objects for them on each call
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_size_t, _P, _P, _P, _P, ctypes.c_size_t, _P, ctypes.c_size_t)
_ARRAYS = [VAL * n for n in range(8)]
_CALLBACKS: dict[tuple[str, HostFunc], Any] = {}  # one per function, shared by every linker


def _callback(func: HostFunc, where: str) -> Any:
    found = _CALLBACKS.get((where, func))
    if found is not None:
        return found
    arrays = _ARRAYS

    def callback(data: Any, ctx: int, ty: Any, args: int, nargs: int, results: int, nresults: int) -> int:
        try:
            func(ctx, arrays[nargs].from_address(args) if nargs else (), arrays[nresults].from_address(results))
            return 0
        except HostTrap as exc:
            return _trap(f"{where}: {exc}")
        except Exception as exc:
            log.exception("wasi host function failed", function=where)
            return _trap(f"{where}: host error: {exc}")

    found = _CALLBACKS[(where, func)] = _CALLBACK(callback)
    return found


def define_func(instance: LinkerInstance, name: str, func: HostFunc, where: str) -> None:
    """Define ``name`` in ``instance`` as ``func``; ``where`` names it in logs (``iface#name``)."""
    cb = _callback(func, where)
    raw = name.encode()
    add = _ffi.wasmtime_component_linker_instance_add_func
    error = add(
        instance.ptr(), raw, len(raw), ctypes.cast(cb, _ffi.wasmtime_component_func_callback_t), None, _NO_FINALIZER
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def define_resource(instance: LinkerInstance, name: str, type_id: int, dtor: Callable[[int], None]) -> None:
    """Define resource ``name`` as host resource type ``type_id``; ``dtor(rep)`` runs when the guest drops it."""

    cb = _DTORS.get((name, dtor))
    if cb is None:

        def callback(data: Any, ctx: Ctx, value: int) -> int:
            try:
                dtor(value)
            except Exception:
                log.exception("wasi resource destructor failed", resource=name)
            return 0

        cb = _DTORS[(name, dtor)] = _ffi.wasmtime_component_resource_destructor_t(callback)
    raw = name.encode()
    ty = ResourceType.host(type_id)
    error = _ffi.wasmtime_component_linker_instance_add_resource(
        instance.ptr(), raw, len(raw), ty.ptr(), cb, None, _NO_FINALIZER
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
