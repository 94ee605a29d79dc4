"""The waPC actor ABI of SPEC §1 as data, and the one load-time check of a module against it.

Shared by the host's runtime (before it links a module) and the control plane (before it stores an
upload), so a module the hosts would refuse is refused at ``POST /v1/artifacts`` already, for the same
reason. It reads a compiled ``wasmtime.Module``'s imports and exports; it runs nothing. It lives in the host
room, not the contract, because it needs wasmtime; the control plane imports it from here as it imports the
host's component check.
"""

from __future__ import annotations

from collections.abc import Sequence

import wasmtime
from wasmtime import _bindings as _ffi  # private, pinned by wasmtime>=50,<51: the one abort-free comparison

from lattice.errors import InvalidActor

WAPC_MODULES = ("wapc", "wasmbus")
WASI_MODULE = "wasi_snapshot_preview1"

#: the nine host functions (SPEC §1): name → (i32 parameters, i32 results)
HOST_FUNCTIONS: dict[str, tuple[int, int]] = {
    "__guest_request": (2, 0),
    "__guest_response": (2, 0),
    "__guest_error": (2, 0),
    "__host_call": (8, 1),
    "__host_response_len": (0, 1),
    "__host_response": (1, 0),
    "__host_error_len": (0, 1),
    "__host_error": (1, 0),
    "__console_log": (2, 0),
}
#: AssemblyScript's ``env.abort(msg, file, line, col)``
ABORT = ("env", "abort", 4, 0)


I32 = wasmtime.ValType.i32()


def same_type(a: wasmtime.ValType, b: wasmtime.ValType) -> bool:
    """Whether two value types are the same, for any value type a valid module may use.

    wasmtime-py's ``ValType.__eq__`` and ``__str__`` ask the C API for a value's kind, which aborts the
    whole process (a Rust panic, "not implemented") for v128 and for references other than funcref and
    externref: one uploaded module with a v128 in a signature took a host or the control plane down.
    """
    return bool(_ffi.wasmtime_wasm_valtype_equal(a.ptr(), b.ptr()))


def signature_is(ty: object, params: Sequence[wasmtime.ValType], results: Sequence[wasmtime.ValType]) -> bool:
    """Whether ``ty`` is a function type taking ``params`` and returning ``results`` (abort-free, as
    ``same_type``)."""
    if not isinstance(ty, wasmtime.FuncType):
        return False
    got_params, got_results = list(ty.params), list(ty.results)
    return (
        len(got_params) == len(params)
        and len(got_results) == len(results)
        and all(map(same_type, got_params, params))
        and all(map(same_type, got_results, results))
    )


def _i32s(types: list[wasmtime.ValType]) -> int | None:
    """How many i32s, or None when any value is not an i32."""
    return len(types) if all(same_type(t, I32) for t in types) else None


def _shape(ty: wasmtime.FuncType) -> tuple[int | None, int | None]:
    return _i32s(list(ty.params)), _i32s(list(ty.results))


def check_wapc(module: wasmtime.Module) -> bool:
    """Raise ``InvalidActor`` naming the reason unless ``module`` is a waPC actor this lattice can run;
    returns whether it imports WASI."""
    exports = {e.name: e.type for e in module.exports}
    guest_call = exports.get("__guest_call")
    if not isinstance(guest_call, wasmtime.FuncType):
        raise InvalidActor("not a waPC actor: it does not export __guest_call (SPEC §1)")
    if _shape(guest_call) != (2, 1):
        raise InvalidActor("not a waPC actor: __guest_call must be (i32, i32) -> i32 (SPEC §1)")
    if not isinstance(exports.get("memory"), wasmtime.MemoryType):
        raise InvalidActor("not a waPC actor: it does not export its memory (SPEC §1)")
    return check_imports(module)


def check_imports(module: wasmtime.Module) -> bool:
    """Raise ``InvalidActor`` for an import no host provides, or provides with another signature; returns
    whether the module imports WASI (whose signatures wasmtime's own WASI checks when linking)."""
    uses_wasi = False
    for imp in module.imports:
        if imp.module == WASI_MODULE:
            uses_wasi = True
            continue
        where = f"{imp.module}.{imp.name}"
        if imp.module in WAPC_MODULES and imp.name in HOST_FUNCTIONS:
            expected = HOST_FUNCTIONS[imp.name]
        elif (imp.module, imp.name) == ABORT[:2]:
            expected = ABORT[2:]
        else:
            raise InvalidActor(f"the actor imports {where}, which the host does not provide")
        if not isinstance(imp.type, wasmtime.FuncType) or _shape(imp.type) != expected:
            raise InvalidActor(
                f"the actor's import {where} does not match the waPC ABI: expected {expected[0]} i32 "
                f"parameter(s) and {expected[1]} i32 result(s) (SPEC §1)"
            )
    return uses_wasi
