"""wasmtime's C API for component values, as ctypes sees it: the 32-byte value slot (``VAL``), its kinds
(``KIND``), the C functions that create and free values and name vectors, and block views of value arrays.

Private to ``host.component``'s value conversion (``values``) and calls (``calls``); pinned by
``wasmtime>=50,<51`` (the layout is wasmtime-py's private ``_bindings``).
"""

from __future__ import annotations

import ctypes
from typing import Any

from wasmtime import _bindings as _b  # private, pinned by wasmtime>=50,<51: the C value layout
from wasmtime import _ffi

VAL = _b.wasmtime_component_val_t
SIZE = ctypes.sizeof(VAL)
PAYLOAD = VAL.of.offset  # where a value's payload starts inside its 32-byte slot
KIND = {name: getattr(_ffi, f"WASMTIME_COMPONENT_{name}").value for name in (
    "BOOL", "S8", "U8", "S16", "U16", "S32", "U32", "S64", "U64", "F32", "F64", "CHAR", "STRING", "LIST",
    "RECORD", "TUPLE", "VARIANT", "ENUM", "OPTION", "RESULT", "FLAGS", "RESOURCE",
)}  # fmt: skip

_dll = _b.dll  # type: ignore[attr-defined]
byte_vec_new = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)(("wasm_byte_vec_new", _dll))
vallist_new_uninit = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t)(
    ("wasmtime_component_vallist_new_uninit", _dll)
)
val_delete = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(("wasmtime_component_val_delete", _dll))
val_new = _b.wasmtime_component_val_new

_u8_kinds = bytes([KIND["U8"]]) * 4096  # grown on demand: the kind byte of every element of a list<u8>


def kinds(n: int) -> memoryview:
    global _u8_kinds
    if len(_u8_kinds) < n:
        _u8_kinds = bytes([KIND["U8"]]) * max(n, 2 * len(_u8_kinds))
    return memoryview(_u8_kinds)[:n]


def slots_view(address: int, n: int) -> memoryview:
    """The ``n`` 32-byte value slots at ``address`` as one byte view."""
    return memoryview((ctypes.c_uint8 * (n * SIZE)).from_address(address)).cast("B")


def read_name(vec: Any) -> str:
    size = vec.size
    return ctypes.string_at(vec.data, size).decode("utf-8") if size else ""


def set_name(vec: Any, raw: bytes) -> None:
    byte_vec_new(ctypes.addressof(vec), len(raw), raw)
