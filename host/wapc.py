"""The waPC ABI on the host side (SPEC §1): the nine host functions, ``env.abort``, and the state of one
instance between the guest's calls into them.

The functions are defined once per ``Linker`` (``define``) and find the instance being called through a
thread-local (``current``): a Store is only ever used by the thread that calls into it. An instance belongs to an
``Owner`` (``host.pool.ActorPool``) that supplies limits, the host-call callback and the log sink. Components
(the component model) live in ``host/component/``, next to this module, not in it.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any, Protocol

import structlog
import wasmtime

from lattice.caps import MAX_GUEST_ERROR, MAX_LOG_LINE
from lattice.errors import LatticeError
from lattice.host import abi as abi_mod
from lattice.host import wasmtime_shim as shim

log = structlog.get_logger("lattice.host.wapc")

WAPC_MODULES = abi_mod.WAPC_MODULES


class Limits(Protocol):
    @property
    def max_payload_bytes(self) -> int: ...


class Owner(Protocol):
    """What an instance needs of the pool it belongs to."""

    @property
    def actor_id(self) -> str: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def host_call(self) -> Callable[[str, str, str, bytes], bytes]: ...

    @property
    def log_sink(self) -> Callable[[str, str], None]: ...


class Instance:
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

    def __init__(self, pool: Owner, store: wasmtime.Store, memory: wasmtime.Memory, exports: Any) -> None:
        self.pool = pool
        self.store = store
        self.memory = memory
        self.exports = exports
        self.guest_call = exports.get("__guest_call")
        # Raw handles for the hot path (see ``call_guest``, ``wasmtime_shim``): wasmtime-py's checked wrappers
        # rebuild types and convert values on every call, ~20 µs of a ~45 µs echo.
        self.ctx = shim.store_context(store)
        self.mem_ref = shim.memory_ref(memory)
        self.func_ref = shim.func_ref(self.guest_call) if isinstance(self.guest_call, wasmtime.Func) else None
        self.args = shim.raw_args(2)
        self.inline = False
        self.op = b""
        self.msg = b""
        self.response: bytes | None = None
        self.error: str | None = None
        self.host_response = b""
        self.host_error = b""


current = threading.local()
"""``current.inst``: the instance whose guest code runs on this thread."""


def _inst() -> Instance:
    inst: Instance = current.inst
    return inst


def _read(inst: Instance, ptr: int, length: int) -> bytes:
    if length <= 0:
        return b""
    return ctypes.string_at(shim.memory_address(inst.ctx, inst.mem_ref, ptr, length), length)


def _write(inst: Instance, ptr: int, data: bytes) -> None:
    if data:
        ctypes.memmove(shim.memory_address(inst.ctx, inst.mem_ref, ptr, len(data)), data, len(data))


def call_guest(inst: Instance, op_len: int, msg_len: int) -> int:
    """``__guest_call(op_len, msg_len)`` (its signature was checked at compile time)."""
    args = inst.args
    args[0].i32 = op_len
    args[1].i32 = msg_len
    shim.unchecked(inst.ctx, inst.func_ref, args, 2)
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


class NotInline(BaseException):
    """Unwinds a ``call_inline`` that must run elsewhere; never escapes ``ActorPool``."""


class GuestAbort(Exception):
    """Raised from ``env.abort`` to unwind the guest; the message becomes the call's error."""


def _as_string(inst: Instance, ptr: int) -> str:
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
    raise GuestAbort(f"abort: {message or 'guest aborted'} at {file or '?'}:{line}:{col}")


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
# the signatures are the ABI's (host.abi); only the implementations live here
HOST_FUNCTIONS = {name: (_IMPLEMENTATIONS[name], *shape) for name, shape in abi_mod.HOST_FUNCTIONS.items()}


def define(linker: wasmtime.Linker) -> None:
    """Define the waPC host functions under both import modules, and ``env.abort``, on ``linker``."""
    for module_name in WAPC_MODULES:
        for name, (func, n_params, n_results) in HOST_FUNCTIONS.items():
            shim.define_raw(linker, module_name, name, func, n_params, n_results)
    shim.define_raw(linker, "env", "abort", _abort, 4, 0)
