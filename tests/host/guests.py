"""Inline WAT guests for ABI and limit tests: small, readable, each pinning one behaviour of SPEC §1."""

from __future__ import annotations

import wasmtime

WAPC_IMPORTS = """
  (import "{m}" "__guest_request" (func $guest_request (param i32 i32)))
  (import "{m}" "__guest_response" (func $guest_response (param i32 i32)))
  (import "{m}" "__guest_error" (func $guest_error (param i32 i32)))
  (import "{m}" "__host_call" (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "{m}" "__host_response_len" (func $host_response_len (result i32)))
  (import "{m}" "__host_response" (func $host_response (param i32)))
  (import "{m}" "__host_error_len" (func $host_error_len (result i32)))
  (import "{m}" "__host_error" (func $host_error (param i32)))
  (import "{m}" "__console_log" (func $console_log (param i32 i32)))
"""


def guest(body: str, module: str = "wapc", extra: str = "", pages: int = 1) -> bytes:
    """A waPC guest: the request lands at offset 1024 (op) and 2048 (msg); ``body`` is __guest_call's;
    ``pages`` of 64 KiB of memory."""
    return bytes(
        wasmtime.wat2wasm(
            f"""(module
  {WAPC_IMPORTS.format(m=module)}
  {extra}
  (memory (export "memory") {pages})
  (global $started (mut i32) (i32.const 0))
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (call $guest_request (i32.const 1024) (i32.const 2048))
    {body})
)"""
        )
    )


# Echo the payload back.
ECHO = guest("(call $guest_response (i32.const 2048) (local.get $msg_len)) (i32.const 1)")
# The same with room for a 2 MiB payload.
BIG_ECHO = guest("(call $guest_response (i32.const 2048) (local.get $msg_len)) (i32.const 1)", pages=33)

# Echo, through the wasmbus import module (wasmCloud 0.50+ actors), with an rpc version export.
ECHO_WASMBUS = guest(
    "(call $guest_response (i32.const 2048) (local.get $msg_len)) (i32.const 1)",
    module="wasmbus",
    extra='(func (export "__wasmbus_rpc_version") (result i32) (i32.const 1))',
)

# Answer with the operation name.
OPNAME = guest("(call $guest_response (i32.const 1024) (local.get $op_len)) (i32.const 1)")

# Fail every call with the error "nope".
FAILS = guest(
    "(call $guest_error (i32.const 16) (i32.const 4)) (i32.const 0)",
    extra='(data (i32.const 16) "nope")',
)

TRAPS = guest("unreachable")

LOOPS = guest("(loop $l (br $l)) (i32.const 1)")

GROWS = guest(
    "(block $done (loop $l (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1))) (br $l))) unreachable"
)

RECURSES = guest(
    "(call $deep (i32.const 0)) drop (i32.const 1)",
    extra="(func $deep (param i32) (result i32) (call $deep (i32.add (local.get 0) (i32.const 1))))",
)


# Host call: binding "" (at 0, len 0), namespace and operation from the payload "ns|op|body" is too
# fiddly in WAT; the namespace and operation are fixed data segments instead.
def host_caller(namespace: str, operation: str) -> bytes:
    """Forwards its payload to ``__host_call(namespace, operation)``; answers the result or the error."""
    ns, op = namespace.encode(), operation.encode()
    return guest(
        f"""
    (if (result i32) (i32.eq (call $host_call (i32.const 0) (i32.const 0)
            (i32.const 100) (i32.const {len(ns)}) (i32.const 400) (i32.const {len(op)})
            (i32.const 2048) (local.get $msg_len)) (i32.const 1))
      (then (call $host_response (i32.const 8192))
            (call $guest_response (i32.const 8192) (call $host_response_len)) (i32.const 1))
      (else (call $host_error (i32.const 8192))
            (call $guest_error (i32.const 8192) (call $host_error_len)) (i32.const 0)))""",
        extra=f'(data (i32.const 100) "{namespace}") (data (i32.const 400) "{operation}")',
    )


# Logs "hi" once from a start function and counts starts; each call answers how many starts ran.
STARTS = guest(
    "(i32.store8 (i32.const 3000) (i32.add (i32.const 48) (global.get $started))) "
    "(call $guest_response (i32.const 3000) (i32.const 1)) (i32.const 1)",
    extra='(data (i32.const 16) "hi") '
    '(func (export "wapc_init") (global.set $started (i32.add (global.get $started) (i32.const 1))) '
    "(call $console_log (i32.const 16) (i32.const 2))) "
    '(func (export "start") (global.set $started (i32.add (global.get $started) (i32.const 1))))',
)

# AssemblyScript-style abort with a UTF-16 message "bad" (length 6 at 60, string at 64).
ABORTS = bytes(
    wasmtime.wat2wasm(
        """(module
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "env" "abort" (func $abort (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 60) "\\06\\00\\00\\00b\\00a\\00d\\00")
  (func (export "__guest_call") (param i32 i32) (result i32)
    (call $abort (i32.const 64) (i32.const 0) (i32.const 7) (i32.const 3)) unreachable))"""
    )
)

# Echo of any size: grows its memory to fit the payload before asking for it (object-store round trips).
BIG_ECHO = bytes(
    wasmtime.wat2wasm(
        f"""(module
  {WAPC_IMPORTS.format(m="wapc")}
  (memory (export "memory") 1)
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (drop (memory.grow (i32.add (i32.div_u (i32.add (local.get $msg_len) (i32.const 4096)) (i32.const 65536))
                                (i32.const 1))))
    (call $guest_request (i32.const 1024) (i32.const 4096))
    (call $guest_response (i32.const 4096) (local.get $msg_len))
    (i32.const 1)))"""
    )
)

# Asks the host to write the request far outside its memory.
BAD_POINTER = guest("(call $guest_request (i32.const 1024) (i32.const 0x7fff0000)) (i32.const 1)")
