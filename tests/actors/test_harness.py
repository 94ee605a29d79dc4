"""The harness itself: what it does with guests that abort (AssemblyScript's env.abort, SPEC §1)."""

from __future__ import annotations

from pathlib import Path

import wasmtime

from .wapc_harness import WapcGuest

# An AssemblyScript-style guest: strings are UTF-16LE with their byte length in the 4 bytes before them.
ABORTING_GUEST = """
(module
  (import "env" "abort" (func $abort (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 12) "\\0a\\00\\00\\00b\\00o\\00o\\00m\\00!\\00")
  (data (i32.const 44) "\\08\\00\\00\\00a\\00.\\00t\\00s\\00")
  (func (export "__guest_call") (param i32 i32) (result i32)
    (call $abort (i32.const 16) (i32.const 48) (i32.const 7) (i32.const 3))
    (i32.const 1)))
"""


def test_env_abort_fails_the_call_with_the_message_file_and_position(tmp_path: Path) -> None:
    wasm = tmp_path / "abort.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(ABORTING_GUEST))
    result = WapcGuest(wasm).call("Any.Op", b"")
    assert not result.ok
    assert result.payload.decode() == "abort: boom! at a.ts:7:3"
