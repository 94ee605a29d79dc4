"""host.Sandbox in plain-function mode (abi="function"): the ABI of docs/embedding.md, limits per record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from bench.embed import python_transform
from lattice.errors import ActorError, ActorTrap, DeadlineExceeded, InvalidActor, LimitExceeded, NotFound
from lattice.host import ActorLimits, Runtime, Sandbox

TRANSFORM = Path(__file__).resolve().parents[2] / "examples" / "pipeline" / "transform.wasm"
RECORDS = (TRANSFORM.parent / "records.csv").read_bytes().splitlines()[1:]


def plain(functions: str, extra: str = "") -> bytes:
    """A plain-function module: ``alloc`` always answers 1024; ``functions`` are WAT funcs."""
    return bytes(
        wasmtime.wat2wasm(
            f"""(module
  {extra}
  (memory (export "memory") 1)
  (func (export "alloc") (param $len i32) (result i32) (i32.const 1024))
  {functions})"""
        )
    )


# (ptr, len) -> the same bytes, ASCII upper-cased in place.
UPPER = """(func (export "upper") (param $ptr i32) (param $len i32) (result i64) (local $i i32) (local $c i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (local.set $c (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
      (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
        (then (i32.store8 (i32.add (local.get $ptr) (local.get $i)) (i32.sub (local.get $c) (i32.const 32)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))"""
# Refuses with the message "bad record" (10 bytes at 16): -((16 << 32) | 10).
REFUSES = """(data (i32.const 16) "bad record")
  (func (export "refuses") (param i32 i32) (result i64) (i64.sub (i64.const 0) (i64.const 68719476746)))"""
REFUSES_SILENTLY = '(func (export "refuses_silently") (param i32 i32) (result i64) (i64.const -1))'
LOOPS = '(func (export "loops") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0))'
TRAPS = '(func (export "traps") (param i32 i32) (result i64) unreachable)'
GROWS = """(func (export "grows") (param i32 i32) (result i64)
    (block $done (loop $l (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1))) (br $l)))
    unreachable)"""
OUT_OF_BOUNDS = '(func (export "out_of_bounds") (param i32 i32) (result i64) (i64.const 0x0000fff000000100))'
NOT_A_FUNCTION = '(func (export "helper") (param i32) (result i32) (local.get 0))'
MODULE = plain("\n".join([UPPER, REFUSES, REFUSES_SILENTLY, LOOPS, TRAPS, GROWS, OUT_OF_BOUNDS, NOT_A_FUNCTION]))


@pytest.fixture
def plugin(runtime: Runtime) -> Iterator[Sandbox]:
    limits = ActorLimits(deadline_s=0.05, max_memory_bytes=2 * 1024 * 1024, max_payload_bytes=4096)
    with Sandbox(MODULE, abi="function", runtime=runtime, limits=limits, name="plain") as sandbox:
        yield sandbox


def test_function_takes_and_returns_bytes_through_linear_memory(plugin: Sandbox) -> None:
    assert plugin.call("upper", b"hello, plain world") == b"HELLO, PLAIN WORLD"
    assert plugin.call("upper", b"") == b""


def test_only_exports_of_the_plain_signature_are_functions(plugin: Sandbox) -> None:
    assert "upper" in plugin.functions and "alloc" not in plugin.functions and "helper" not in plugin.functions
    with pytest.raises(NotFound, match=r"plain has no function helper\(ptr: i32, len: i32\) -> i64; it exports"):
        plugin.call("helper", b"x")


def test_negative_result_refuses_the_input_with_the_guests_message(plugin: Sandbox) -> None:
    with pytest.raises(ActorError, match=r"^plain: bad record$"):
        plugin.call("refuses", b"x")
    with pytest.raises(ActorError, match=r"refuses_silently failed without an error message \(result -1\)"):
        plugin.call("refuses_silently", b"x")


def test_runaway_trap_and_memory_fail_only_their_call(plugin: Sandbox) -> None:
    with pytest.raises(DeadlineExceeded, match="plain ran past its deadline"):
        plugin.call("loops", b"x")
    with pytest.raises(ActorTrap, match="unreachable"):
        plugin.call("traps", b"x")
    with pytest.raises(LimitExceeded, match="memory limit of 2 MiB"):
        plugin.call("grows", b"x")
    assert plugin.call("upper", b"after") == b"AFTER"


def test_a_result_outside_memory_or_over_the_payload_limit_fails_the_call(plugin: Sandbox) -> None:
    with pytest.raises(ActorTrap, match="outside its memory"):
        plugin.call("out_of_bounds", b"x")
    with pytest.raises(LimitExceeded, match="over"):
        plugin.call("upper", b"x" * 4097)


def test_dealloc_is_called_for_input_then_output_after_the_copy(runtime: Runtime) -> None:
    # dealloc logs "d" through the waPC console import, which plain modules may use too.
    module = plain(
        UPPER
        + '(data (i32.const 8) "d") (func (export "dealloc") (param i32 i32) (call $log (i32.const 8) (i32.const 1)))',
        extra='(import "wapc" "__console_log" (func $log (param i32 i32)))',
    )
    lines: list[str] = []
    with Sandbox(module, abi="function", runtime=runtime, log_sink=lambda s, t: lines.append(t)) as sandbox:
        assert sandbox.call("upper", b"abc") == b"ABC"
    assert lines == ["d", "d"]


@pytest.mark.parametrize(
    ("wat", "reason"),
    [
        ('(module (func (export "alloc") (param i32) (result i32) (i32.const 0)))', "does not export its memory"),
        ('(module (memory (export "memory") 1))', r"does not export alloc\(len: i32\) -> i32"),
        (
            '(module (memory (export "memory") 1) (func (export "alloc") (param i64) (result i32) (i32.const 0)))',
            "does not export alloc",
        ),
    ],
)
def test_modules_without_the_abi_are_refused_with_the_reason(runtime: Runtime, wat: str, reason: str) -> None:
    with pytest.raises(InvalidActor, match=reason):
        Sandbox(wasmtime.wat2wasm(wat), abi="function", runtime=runtime)


def test_pipeline_transform_matches_the_python_reference_and_isolates_bad_records(runtime: Runtime) -> None:
    limits = ActorLimits(deadline_s=0.1, max_memory_bytes=16 * 1024 * 1024)
    outcomes: dict[bytes, str] = {}
    with Sandbox(TRANSFORM, abi="function", runtime=runtime, limits=limits) as transform:
        for record in RECORDS:
            try:
                out = transform.call("transform_record", record)
            except (ActorError, ActorTrap, DeadlineExceeded) as exc:
                outcomes[record] = type(exc).__name__
                continue
            assert out == python_transform(record)
            outcomes[record] = "ok"
        assert transform.stats()["failures"] == 4
    assert outcomes[b"5,edsger dijkstra,nuenen,3."] == "DeadlineExceeded"
    assert outcomes[b"7,ken thompson,berkeley,1234567890123"] == "ActorTrap"
    assert outcomes[b"4,,nowhere,1.00"] == outcomes[b"9,donald knuth,stanford,1x"] == "ActorError"
    assert list(outcomes.values()).count("ok") == 6


def test_the_transform_refuses_what_the_python_reference_refuses(runtime: Runtime) -> None:
    bad = [b"1,a,b", b"x,a,b,1", b"1,a,b,1.234", b"1,a,b,.5", b"1,a\x01,b,1", b"1,a,b,1,2", b"1234567890,a,b,1"]
    with Sandbox(TRANSFORM, abi="function", runtime=runtime) as transform:
        for record in bad:
            with pytest.raises(ValueError):
                python_transform(record)
            with pytest.raises(ActorError):
                transform.call("transform_record", record)
        quoted = b'2,o"neil-smith \\ jr,new-york,0'
        assert transform.call("transform_record", quoted) == python_transform(quoted)


def test_functions_with_other_signatures_are_not_offered_and_do_not_abort(runtime: Runtime) -> None:
    # a v128 in an exported signature: wasmtime's C API aborts the process when asked its kind
    module = plain(UPPER + '(func (export "simd") (param v128 i32) (result i64) (i64.const 0))')
    with Sandbox(module, abi="function", runtime=runtime, name="simd") as sandbox:
        assert sandbox.call("upper", b"abc") == b"ABC"
        with pytest.raises(NotFound):
            sandbox.call("simd", b"")
