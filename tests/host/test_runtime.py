"""The waPC ABI and per-actor limits on the runtime alone (real wasmtime, no NATS)."""

from __future__ import annotations

import pytest
import wasmtime

from lattice.errors import (
    ActorError,
    ActorTrap,
    DeadlineExceeded,
    InvalidActor,
    LimitExceeded,
    LinkNotFound,
)
from lattice.host.instance_pool import INLINE_FORGIVE, INLINE_STRIKES
from lattice.host.pool import ActorPool
from lattice.host.runtime import ActorLimits, Runtime
from tests.conftest import from_threads
from tests.host import guests


def test_echo_round_trips_payload_through_wapc_imports(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.ECHO))
    assert pool.call("Echo.Echo", b"hello lattice") == b"hello lattice"
    assert pool.call("Echo.Echo", b"") == b""


def test_wasmbus_import_module_and_rpc_version(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.ECHO_WASMBUS))
    assert pool.api_version == 1
    assert pool.call("X.Y", b"abc") == b"abc"


def test_guest_sees_operation_name(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.OPNAME))
    assert pool.call("HttpServer.HandleRequest", b"") == b"HttpServer.HandleRequest"


def test_start_functions_run_once_each_before_the_first_call(runtime: Runtime) -> None:
    lines: list[str] = []
    pool = ActorPool(runtime, runtime.compile(guests.STARTS), log_sink=lambda stream, text: lines.append(text))
    assert pool.call("Any.Op", b"") == b"2"  # wapc_init and start both ran, once
    assert lines == ["hi"]


def test_guest_error_becomes_actor_error_and_pool_keeps_serving(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.FAILS))
    with pytest.raises(ActorError, match="nope"):
        pool.call("X.Y", b"")
    with pytest.raises(ActorError, match="nope"):
        pool.call("X.Y", b"")


def test_trap_discards_instance_and_next_call_gets_a_fresh_one(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.TRAPS))
    for _ in range(3):
        with pytest.raises(ActorTrap, match="unreachable"):
            pool.call("X.Y", b"")
    assert pool.stats()["instances"] == 0


def test_abort_message_reaches_the_caller(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.ABORTS))
    with pytest.raises(ActorError, match=r"abort: bad at \?:7:3"):
        pool.call("X.Y", b"")


def test_runaway_loop_is_interrupted_at_its_deadline(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.LOOPS), limits=ActorLimits(deadline_s=0.05))
    with pytest.raises(DeadlineExceeded, match="deadline"):
        pool.call("X.Y", b"")
    assert pool.stats()["in_flight"] == 0


def test_memory_growth_past_the_limit_fails_the_call(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.GROWS), limits=ActorLimits(max_memory_bytes=4 * 1024 * 1024))
    with pytest.raises(LimitExceeded, match="memory limit of 4 MiB"):
        pool.call("X.Y", b"")


def test_deep_recursion_traps_with_stack_overflow(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.RECURSES))
    with pytest.raises(ActorTrap, match="stack"):
        pool.call("X.Y", b"")


def test_oversized_payload_is_refused_before_the_guest_runs(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.ECHO), limits=ActorLimits(max_payload_bytes=10))
    with pytest.raises(LimitExceeded, match="over"):
        pool.call("X.Y", b"x" * 11)


def test_host_call_result_and_error_reach_the_guest(runtime: Runtime) -> None:
    seen: list[tuple[str, str, str, bytes]] = []

    def host_call(binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
        seen.append((binding, namespace, operation, payload))
        if payload == b"fail":
            raise LinkNotFound(namespace, binding or "default", "MTEST")
        return payload.upper()

    pool = ActorPool(
        runtime, runtime.compile(guests.host_caller("wasmcloud:keyvalue", "KeyValue.Get")), host_call=host_call
    )
    assert pool.call("X.Y", b"abc") == b"ABC"
    assert seen == [("", "wasmcloud:keyvalue", "KeyValue.Get", b"abc")]
    with pytest.raises(ActorError, match=r"no link for wasmcloud:keyvalue \(default\) from MTEST"):
        pool.call("X.Y", b"fail")


@pytest.mark.parametrize(
    ("wasm", "reason"),
    [
        (b"not wasm at all", "bad magic"),
        (b"\0asm\x01\0\0\0\x01\xff", "invalid WebAssembly"),
        (wasmtime.wat2wasm('(module (memory (export "memory") 1))'), "does not export __guest_call"),
        (
            wasmtime.wat2wasm('(module (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1))'),
            "memory",
        ),
        (
            wasmtime.wat2wasm(
                '(module (import "evil" "open" (func)) (memory (export "memory") 1)'
                ' (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1))'
            ),
            "imports evil.open",
        ),
        (
            wasmtime.wat2wasm(
                '(module (import "wapc" "__guest_request" (func (param i32))) (memory (export "memory") 1)'
                ' (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1))'
            ),
            "does not match the waPC ABI",
        ),
    ],
)
def test_bad_modules_are_refused_with_the_reason(runtime: Runtime, wasm: bytes, reason: str) -> None:
    with pytest.raises(InvalidActor, match=reason):
        runtime.compile(wasm)


@pytest.mark.parametrize("value_type", ["v128", "exnref", "arrayref", "anyref"])
def test_exotic_value_types_in_the_abi_signatures_are_refused_not_fatal(runtime: Runtime, value_type: str) -> None:
    # wasmtime's C API aborts the process when asked the kind of these types (a fuzzed module found it)
    imports = wasmtime.wat2wasm(
        f'(module (import "wapc" "__host_call" (func (param {value_type} i32 i32 i32 i32 i32 i32 i32) (result i32)))'
        ' (memory (export "memory") 1) (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1))'
    )
    exports = wasmtime.wat2wasm(
        f'(module (memory (export "memory") 1) (func (export "__guest_call") (param i32 {value_type}) (result i32)'
        " i32.const 1))"
    )
    with pytest.raises(InvalidActor, match="does not match the waPC ABI"):
        runtime.compile(imports)
    with pytest.raises(InvalidActor, match=r"__guest_call must be \(i32, i32\) -> i32"):
        runtime.compile(exports)


def test_concurrent_calls_from_threads_all_answer(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.ECHO), limits=ActorLimits(max_instances=4))
    results = from_threads(lambda payload: pool.call("X.Y", payload), threads=8, per_thread=50)
    assert sorted(results) == sorted(f"{i}-{j}".encode() for i in range(8) for j in range(50))
    assert pool.stats()["instances"] <= 4


def test_compiled_modules_are_cached_on_disk(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rt = Runtime(tmp_path)
    try:
        rt.compile(guests.ECHO)
        assert list(tmp_path.rglob("*.cwasm"))
    finally:
        rt.close()
    rt2 = Runtime(tmp_path)
    try:
        assert ActorPool(rt2, rt2.compile(guests.ECHO)).call("X", b"z") == b"z"
    finally:
        rt2.close()


def test_host_function_given_bad_pointers_traps_the_call_only(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.BAD_POINTER))
    with pytest.raises(ActorTrap, match="bad memory access"):
        pool.call("X.Y", b"payload")


def test_inline_call_runs_self_contained_guests_here(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.ECHO))
    assert pool.call_inline("X.Y", b"quick") == b"quick"
    assert pool.inline_eligible


def test_inline_call_gives_way_when_the_guest_makes_a_host_call(runtime: Runtime) -> None:
    calls: list[str] = []

    def host_call(binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
        calls.append(operation)
        return b"ok"

    pool = ActorPool(
        runtime, runtime.compile(guests.host_caller("wasmcloud:keyvalue", "KeyValue.Get")), host_call=host_call
    )
    for _ in range(3):
        pool.warm(1)  # the unwound instance was discarded; the worker's call would have made another
        assert pool.call_inline("X.Y", b"k") is None  # unwound before the host call happened
    assert calls == []
    assert not pool.inline_eligible
    assert pool.call("X.Y", b"k") == b"ok"  # the same call, run the ordinary way
    assert calls == ["KeyValue.Get"]


def test_inline_overruns_are_forgiven_after_calls_in_time_but_host_calls_are_not(runtime: Runtime) -> None:
    looping = ActorPool(runtime, runtime.compile(guests.LOOPS), limits=ActorLimits(deadline_s=0.2))
    for _ in range(INLINE_STRIKES):
        looping.warm(1)  # the unwound instance was discarded
        assert looping.call_inline("X.Y", b"") is None  # slow every time: off the inline path
    assert not looping.inline_eligible
    pool = ActorPool(runtime, runtime.compile(guests.ECHO))
    pool._inline_overruns = pool._inline_strikes = INLINE_STRIKES - 1  # two calls preempted past the budget
    for _ in range(INLINE_FORGIVE):
        assert pool.call_inline("X.Y", b"quick") == b"quick"
    assert pool._inline_strikes == INLINE_STRIKES - 2 and pool.inline_eligible


def test_inline_call_gives_way_to_a_long_guest_and_errors_still_raise(runtime: Runtime) -> None:
    looping = ActorPool(runtime, runtime.compile(guests.LOOPS), limits=ActorLimits(deadline_s=0.2))
    assert looping.call_inline("X.Y", b"") is None  # stopped at the inline budget, not the deadline
    failing = ActorPool(runtime, runtime.compile(guests.FAILS))
    with pytest.raises(ActorError, match="nope"):
        failing.call_inline("X.Y", b"")
