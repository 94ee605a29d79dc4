"""wasmcloud-otp#397: a call's deadline counts the guest's own time, never its waits in host calls.

A provider that answers after longer than the actor's deadline (within the RPC timeout) must not turn a
call whose side effect happened into a failure — also when the actor runs code after the host call.
"""

from __future__ import annotations

import time

import pytest

from lattice.errors import DeadlineExceeded
from lattice.host.pool import ActorPool
from lattice.host.runtime import ActorLimits, Runtime
from tests.host import guests


def calls_then_works(loops: str = "(i32.const 2000)") -> bytes:
    """Calls the host, then counts down from ``loops`` (a loop: epoch checks run), then answers "ok"."""
    return guests.guest(
        f"""
    (drop (call $host_call (i32.const 0) (i32.const 0) (i32.const 100) (i32.const 8)
                           (i32.const 400) (i32.const 8) (i32.const 2048) (local.get $msg_len)))
    (global.set $i {loops})
    (loop $l (global.set $i (i32.sub (global.get $i) (i32.const 1))) (br_if $l (global.get $i)))
    (call $guest_response (i32.const 500) (i32.const 2)) (i32.const 1)""",
        extra='(global $i (mut i32) (i32.const 0)) (data (i32.const 100) "x:slow:y")'
        ' (data (i32.const 400) "Slow.Run") (data (i32.const 500) "ok")',
    )


def test_wasmcloud_otp397_host_call_wait_is_not_charged_to_the_deadline(runtime: Runtime) -> None:
    done: list[bytes] = []

    def slow_provider(binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
        time.sleep(0.6)  # three deadlines long, within any RPC timeout
        done.append(payload)  # the side effect happened
        return b""

    limits = ActorLimits(deadline_s=0.2)
    pool = ActorPool(runtime, runtime.compile(calls_then_works()), limits=limits, host_call=slow_provider)
    assert pool.call("Any.Op", b"write") == b"ok"
    assert done == [b"write"]
    assert pool.call("Any.Op", b"again") == b"ok"  # and the next call's budget starts afresh


def test_guest_time_after_a_host_call_still_counts(runtime: Runtime) -> None:
    limits = ActorLimits(deadline_s=0.1)
    forever = calls_then_works("(i32.const 0)")  # 0 - 1 wraps: ~4 billion turns, far past 0.1 s of guest time
    pool = ActorPool(runtime, runtime.compile(forever), limits=limits, host_call=lambda *_: b"")
    with pytest.raises(DeadlineExceeded):
        pool.call("Any.Op", b"")
