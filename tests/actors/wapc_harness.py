"""wapc_harness — a minimal waPC host in pure Python (wasmtime-py directly): guests vs SPEC §1.

It is deliberately independent of ``host/``: it defines the nine ``wapc`` imports with a
``wasmtime.Linker``, runs the guest-call protocol, and answers host calls from a table of fakes keyed by
``(namespace, operation)``. A fake returns the msgpack reply, or raises to make the host call fail with the
exception's text; a missing entry fails like an unlinked contract does on a real host. AssemblyScript
guests also import ``env.abort``: it unwinds the call, which then fails with the abort message (SPEC §1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmtime

HostFake = Callable[[str, bytes], bytes]  # (binding, payload) -> reply; raise to fail the call


@dataclass(frozen=True)
class HostCall:
    binding: str
    namespace: str
    operation: str
    payload: bytes


@dataclass
class CallResult:
    ok: bool
    payload: bytes  # the guest's response when ok, else its UTF-8 error


@dataclass
class WapcGuest:
    """One instance of a waPC guest module with fake host calls; not thread-safe, one call at a time."""

    wasm: Path
    host: Mapping[tuple[str, str], HostFake] = field(default_factory=dict)
    host_calls: list[HostCall] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    max_memory_bytes: int | None = None

    def __post_init__(self) -> None:
        engine = wasmtime.Engine()
        self.store = wasmtime.Store(engine)
        if self.max_memory_bytes is not None:
            self.store.set_limits(memory_size=self.max_memory_bytes)
        self.module = wasmtime.Module.from_file(engine, str(self.wasm))
        linker = wasmtime.Linker(engine)
        for name, (params, results, fn) in self._imports().items():
            ty = wasmtime.FuncType([wasmtime.ValType.i32()] * params, [wasmtime.ValType.i32()] * results)
            linker.define_func("wapc", name, ty, fn, access_caller=True)
        linker.define_func("env", "abort", wasmtime.FuncType([wasmtime.ValType.i32()] * 4, []), self._abort, True)
        self.instance = linker.instantiate(self.store, self.module)
        self.exports = self.instance.exports(self.store)
        self._request = (b"", b"")
        self._response: bytes | None = None
        self._error: bytes | None = None
        self._host_response = b""
        self._host_error = b""
        self._aborted: str | None = None
        for init in ("_start", "wapc_init", "start"):  # SPEC §1: once each, in this order
            if init in self.exports:
                self.func(init)(self.store)

    def func(self, name: str) -> wasmtime.Func:
        export = self.exports[name]
        assert isinstance(export, wasmtime.Func), f"{name} is not a function"
        return export

    def call(self, operation: str, payload: bytes) -> CallResult:
        op = operation.encode()
        self._request, self._response, self._error, self._aborted = (op, payload), None, None, None
        try:
            rc = self.func("__guest_call")(self.store, len(op), len(payload))
        except Exception:  # a trap, or the exception _abort raised
            if self._aborted is None:
                raise
            return CallResult(False, self._aborted.encode())
        if rc == 1:
            assert self._response is not None, "guest returned 1 without __guest_response"
            return CallResult(True, self._response)
        assert rc == 0, f"__guest_call returned {rc}"
        assert self._error is not None, "guest returned 0 without __guest_error"
        return CallResult(False, self._error)

    def memory_size(self) -> int:
        memory = self.exports["memory"]
        assert isinstance(memory, wasmtime.Memory)
        return memory.data_len(self.store)

    # ---- the nine imports ----------------------------------------------------------------------------

    def _imports(self) -> dict[str, tuple[int, int, Callable[..., Any]]]:
        return {
            "__guest_request": (2, 0, self._guest_request),
            "__guest_response": (2, 0, self._guest_response),
            "__guest_error": (2, 0, self._guest_error),
            "__host_call": (8, 1, self._host_call),
            "__host_response_len": (0, 1, lambda caller: len(self._host_response)),
            "__host_response": (1, 0, lambda caller, ptr: self._write(caller, ptr, self._host_response)),
            "__host_error_len": (0, 1, lambda caller: len(self._host_error)),
            "__host_error": (1, 0, lambda caller, ptr: self._write(caller, ptr, self._host_error)),
            "__console_log": (2, 0, self._console_log),
        }

    @staticmethod
    def _read(caller: wasmtime.Caller, ptr: int, length: int) -> bytes:
        memory = caller.get("memory")
        assert isinstance(memory, wasmtime.Memory)
        return bytes(memory.read(caller, ptr, ptr + length))

    @staticmethod
    def _write(caller: wasmtime.Caller, ptr: int, data: bytes) -> None:
        memory = caller.get("memory")
        assert isinstance(memory, wasmtime.Memory)
        memory.write(caller, data, ptr)

    def _guest_request(self, caller: wasmtime.Caller, op_ptr: int, msg_ptr: int) -> None:
        op, msg = self._request
        self._write(caller, op_ptr, op)
        self._write(caller, msg_ptr, msg)

    def _guest_response(self, caller: wasmtime.Caller, ptr: int, length: int) -> None:
        self._response = self._read(caller, ptr, length)

    def _guest_error(self, caller: wasmtime.Caller, ptr: int, length: int) -> None:
        self._error = self._read(caller, ptr, length)

    def _console_log(self, caller: wasmtime.Caller, ptr: int, length: int) -> None:
        self.console.append(self._read(caller, ptr, length).decode())

    def _abort(self, caller: wasmtime.Caller, msg_ptr: int, file_ptr: int, line: int, col: int) -> None:
        self._aborted = f"abort: {self._as_string(caller, msg_ptr)} at {self._as_string(caller, file_ptr)}:{line}:{col}"
        raise RuntimeError(self._aborted)  # wasmtime turns it into a trap that ends the call

    @classmethod
    def _as_string(cls, caller: wasmtime.Caller, ptr: int) -> str:
        """An AssemblyScript string: UTF-16LE, its byte length in the u32 just before ``ptr``."""
        if ptr < 4:
            return "?"
        length = int.from_bytes(cls._read(caller, ptr - 4, 4), "little")
        return cls._read(caller, ptr, length).decode("utf-16-le", "replace")

    def _host_call(self, caller: wasmtime.Caller, *args: int) -> int:
        bd, ns, op, payload = (self._read(caller, args[i], args[i + 1]) for i in range(0, 8, 2))
        call = HostCall(bd.decode(), ns.decode(), op.decode(), payload)
        self.host_calls.append(call)
        fake = self.host.get((call.namespace, call.operation))
        try:
            if fake is None:
                raise LookupError(f"no link for {call.namespace} ({call.binding or 'default'})")
            self._host_response = fake(call.binding, call.payload)
        except Exception as exc:
            self._host_error = str(exc).encode()
            return 0
        return 1
