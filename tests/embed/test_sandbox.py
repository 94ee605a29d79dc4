"""host.Sandbox with waPC plugins: grants, WASI grants, limits, concurrency, lifecycle (real wasmtime)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime

from lattice.errors import ActorError, Busy, Closed, DeadlineExceeded, InvalidActor, LimitExceeded
from lattice.host import ActorLimits, Runtime, Sandbox, WasiGrants
from tests.conftest import from_threads
from tests.host import guests

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SNOOP = EXAMPLES / "text_filter" / "plugins" / "snoop.wasm"
CENSOR = EXAMPLES / "text_filter" / "plugins" / "censor.wasm"
KV_CALLER = guests.host_caller("example:kv", "KV.Get")
# Loops forever on an empty payload, echoes anything else.
LOOPS_ON_EMPTY = guests.guest(
    "(if (i32.eqz (local.get $msg_len)) (then (loop $l (br $l)))) "
    "(call $guest_response (i32.const 2048) (local.get $msg_len)) (i32.const 1)"
)


def _wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.001)


# --- grants -------------------------------------------------------------------------------------------


def test_host_call_to_an_ungranted_contract_fails_that_host_call_with_a_clear_error(runtime: Runtime) -> None:
    with Sandbox(KV_CALLER, runtime=runtime, name="kv-plugin") as plugin:
        with pytest.raises(ActorError, match=r"kv-plugin may not call example:kv \(KV.Get\): no grant") as err:
            plugin.call("X.Y", b"key")
        assert "sandbox.grant('example:kv', handler)" in str(err.value)
        assert plugin.stats()["denied"] == 1


def test_granted_contract_reaches_the_handler_with_operation_and_payload(runtime: Runtime) -> None:
    seen: list[tuple[str, bytes]] = []

    def kv(operation: str, payload: bytes) -> bytes:
        seen.append((operation, payload))
        return b"value-of-" + payload

    with Sandbox(KV_CALLER, runtime=runtime, grants={"example:kv": kv}) as plugin:
        assert plugin.call("X.Y", b"key") == b"value-of-key"
        assert seen == [("KV.Get", b"key")]
        assert plugin.granted == {"example:kv"}


def test_grant_and_revoke_take_effect_on_the_next_call(runtime: Runtime) -> None:
    with Sandbox(KV_CALLER, runtime=runtime) as plugin:
        with pytest.raises(ActorError, match="no grant"):
            plugin.call("X.Y", b"k")
        plugin.grant("example:kv", lambda operation, payload: b"ok")
        assert plugin.call("X.Y", b"k") == b"ok"
        plugin.revoke("example:kv")
        with pytest.raises(ActorError, match="no grant"):
            plugin.call("X.Y", b"k")


def test_a_grant_for_another_contract_does_not_open_this_one(runtime: Runtime) -> None:
    with (
        Sandbox(KV_CALLER, runtime=runtime, grants={"example:other": lambda o, p: b""}) as plugin,
        pytest.raises(ActorError, match="may not call example:kv"),
    ):
        plugin.call("X.Y", b"k")


def test_a_failing_handler_is_a_host_call_error_for_the_guest_not_a_trap(runtime: Runtime) -> None:
    def broken(operation: str, payload: bytes) -> bytes:
        raise ValueError("backend down")

    with (
        Sandbox(KV_CALLER, runtime=runtime, grants={"example:kv": broken}) as plugin,
        pytest.raises(ActorError, match="host call failed: backend down"),
    ):
        plugin.call("X.Y", b"k")  # an ActorError, not an ActorTrap: the guest answered


def test_c_plugin_uses_its_grant_and_logs_through_the_sink(runtime: Runtime) -> None:
    lines: list[tuple[str, str]] = []
    words = {"example:wordlist": lambda operation, payload: b"heck\ndarn"}
    with Sandbox(CENSOR, runtime=runtime, grants=words, log_sink=lambda s, t: lines.append((s, t))) as censor:
        assert censor.call("Filter.Apply", b"What the HECK, darn it") == b"What the ****, **** it"
    assert lines == [("console", "masked 2 words")]


# --- WASI grants --------------------------------------------------------------------------------------


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "token.txt").write_text("t0ken\n")
    return folder


def test_no_wasi_grant_means_the_open_fails_inside_the_guest(runtime: Runtime, secrets: Path) -> None:
    with Sandbox(SNOOP, runtime=runtime) as snoop:
        with pytest.raises(ActorError, match="cannot open /secrets/token"):
            snoop.call("Filter.Apply", b"line")
        with pytest.raises(ActorError, match=re.escape(f"cannot open {secrets}/token.txt")):
            snoop.call("File.Read", str(secrets / "token.txt").encode())  # host paths mean nothing inside


def test_read_only_dir_grant_allows_reads_and_refuses_writes(runtime: Runtime, secrets: Path) -> None:
    grants = WasiGrants(dirs={"/secrets": str(secrets)}, readonly=True)
    with Sandbox(SNOOP, runtime=runtime, wasi=grants) as snoop:
        assert snoop.call("Filter.Apply", b"line") == b"line [token: t0ken]"
        assert snoop.call("File.Read", b"/secrets/token.txt") == b"t0ken\n"
        with pytest.raises(ActorError, match=r"cannot open for writing /secrets/new\.txt"):
            snoop.call("File.Write", b"/secrets/new.txt\nhello")
        with pytest.raises(ActorError, match="cannot open"):
            snoop.call("File.Read", b"/secrets/../../etc/passwd")
    assert sorted(p.name for p in secrets.iterdir()) == ["token.txt"]


def test_writable_dir_grant_lets_the_guest_write_there(runtime: Runtime, secrets: Path) -> None:
    with Sandbox(SNOOP, runtime=runtime, wasi=WasiGrants(dirs={"/secrets": str(secrets)})) as snoop:
        assert snoop.call("File.Write", b"/secrets/new.txt\nhello") == b"wrote 5 bytes"
    assert (secrets / "new.txt").read_text() == "hello"


def test_env_is_empty_unless_granted_and_wasi_output_reaches_the_log_sink(runtime: Runtime) -> None:
    lines: list[tuple[str, str]] = []
    with (
        Sandbox(SNOOP, runtime=runtime) as snoop,
        pytest.raises(ActorError, match="cannot read environment variable HOME: not set"),
    ):
        snoop.call("Env.Get", b"HOME")
    grants = WasiGrants(env={"GREETING": "hi"})
    with Sandbox(SNOOP, runtime=runtime, wasi=grants, log_sink=lambda s, t: lines.append((s, t))) as snoop:
        assert snoop.call("Env.Get", b"GREETING") == b"hi"
        with pytest.raises(ActorError):
            snoop.call("Filter.Apply", b"line")
    assert ("stderr", "snoop: reading /secrets/token.txt\n") in lines


# --- limits ---------------------------------------------------------------------------------------------


def test_runaway_call_is_stopped_at_the_deadline_and_the_plugin_keeps_serving(runtime: Runtime) -> None:
    with Sandbox(LOOPS_ON_EMPTY, runtime=runtime, limits=ActorLimits(deadline_s=0.05), name="looper") as plugin:
        with pytest.raises(DeadlineExceeded, match=r"looper ran past its deadline of 0\.05 s"):
            plugin.call("X.Y", b"")
        assert plugin.call("X.Y", b"still here") == b"still here"


def test_memory_growth_past_the_limit_fails_the_call(runtime: Runtime) -> None:
    limits = ActorLimits(max_memory_bytes=2 * 1024 * 1024)
    with (
        Sandbox(guests.GROWS, runtime=runtime, limits=limits) as plugin,
        pytest.raises(LimitExceeded, match="memory limit of 2 MiB"),
    ):
        plugin.call("X.Y", b"")


def test_oversized_payload_is_refused_before_the_guest_runs(runtime: Runtime) -> None:
    with (
        Sandbox(guests.ECHO, runtime=runtime, limits=ActorLimits(max_payload_bytes=4)) as plugin,
        pytest.raises(LimitExceeded, match="over"),
    ):
        plugin.call("X.Y", b"12345")


def test_instances_are_bounded_and_calls_beyond_the_queue_are_busy(runtime: Runtime) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(operation: str, payload: bytes) -> bytes:
        entered.set()
        release.wait(10)
        return payload

    limits = ActorLimits(max_instances=1, max_waiting=1, deadline_s=10)
    with Sandbox(KV_CALLER, runtime=runtime, limits=limits, grants={"example:kv": slow}) as plugin:
        results: list[bytes] = []
        first = threading.Thread(target=lambda: results.append(plugin.call("X.Y", b"1")))
        first.start()
        assert entered.wait(10)
        second = threading.Thread(target=lambda: results.append(plugin.call("X.Y", b"2")))
        second.start()
        _wait_until(lambda: plugin.stats()["waiting"] == 1)
        with pytest.raises(Busy, match="busy"):
            plugin.call("X.Y", b"3")
        release.set()
        first.join(10)
        second.join(10)
        assert sorted(results) == [b"1", b"2"]
        assert plugin.stats()["instances"] == 1


# --- concurrency ----------------------------------------------------------------------------------------


def test_concurrent_calls_from_threads_all_answer_on_a_bounded_pool(runtime: Runtime) -> None:
    calls = 0
    lock = threading.Lock()

    def kv(operation: str, payload: bytes) -> bytes:
        nonlocal calls
        with lock:
            calls += 1
        return payload.upper()

    limits = ActorLimits(max_instances=3)
    with Sandbox(KV_CALLER, runtime=runtime, limits=limits, grants={"example:kv": kv}) as plugin:
        results = from_threads(lambda payload: plugin.call("X.Y", payload), threads=8, per_thread=40, prefix="t")
        assert plugin.stats()["instances"] <= 3
    assert sorted(results) == sorted(f"T{i}-{j}".encode() for i in range(8) for j in range(40))
    assert calls == 320


async def test_acall_runs_off_the_event_loop_and_calls_overlap(runtime: Runtime) -> None:
    with Sandbox(guests.ECHO, runtime=runtime, limits=ActorLimits(max_instances=4)) as plugin:
        outs = await asyncio.gather(*(plugin.acall("X.Y", str(i).encode()) for i in range(50)))
        assert outs == [str(i).encode() for i in range(50)]


async def test_acall_raises_the_same_typed_errors(runtime: Runtime) -> None:
    async with Sandbox(LOOPS_ON_EMPTY, runtime=runtime, limits=ActorLimits(deadline_s=0.05)) as plugin:
        with pytest.raises(DeadlineExceeded):
            await plugin.acall("X.Y", b"")
        assert await plugin.acall("X.Y", b"ok") == b"ok"


# --- loading and lifecycle ----------------------------------------------------------------------------


def test_a_plugin_is_compiled_once_per_runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compiled: list[int] = []
    real_module = wasmtime.Module

    def counting_module(engine: wasmtime.Engine, wasm: bytes) -> wasmtime.Module:
        compiled.append(len(wasm))
        return real_module(engine, wasm)

    monkeypatch.setattr(wasmtime, "Module", counting_module)
    path = tmp_path / "echo.wasm"
    path.write_bytes(guests.ECHO)
    rt = Runtime()
    try:
        sandboxes = [Sandbox(path, runtime=rt), Sandbox(path, runtime=rt), Sandbox(guests.ECHO, runtime=rt)]
        assert [s.call("X", b"z") for s in sandboxes] == [b"z"] * 3
        assert len(compiled) == 1
        assert sandboxes[0].name == "echo.wasm" and sandboxes[2].name == sandboxes[2].actor_id
        assert len({s.digest for s in sandboxes}) == 1
        for s in sandboxes:
            s.close()
    finally:
        rt.close()


def test_a_module_that_is_not_a_wapc_actor_is_refused_with_a_hint(runtime: Runtime) -> None:
    plain = wasmtime.wat2wasm('(module (memory (export "memory") 1))')
    with pytest.raises(InvalidActor, match=r"does not export __guest_call.*abi='function'"):
        Sandbox(plain, runtime=runtime)
    with pytest.raises(InvalidActor, match="cannot read plugin"):
        Sandbox(Path("/nonexistent/plugin.wasm"), runtime=runtime)


def test_a_closed_sandbox_refuses_calls_and_a_sandbox_without_runtime_owns_one() -> None:
    plugin = Sandbox(guests.ECHO)
    assert plugin.call("X", b"a") == b"a"
    plugin.close()
    with pytest.raises(Closed, match="is closed: it takes no more calls") as refused:
        plugin.call("X", b"a")
    assert not isinstance(refused.value, LimitExceeded)  # issue 13: not Busy, which reads as "retry later"
    plugin.close()  # idempotent


async def test_acall_on_a_closed_sandbox_is_refused() -> None:
    plugin = Sandbox(guests.ECHO)
    assert await plugin.acall("X", b"a") == b"a"
    plugin.close()
    with pytest.raises(Closed, match="closed"):
        await plugin.acall("X", b"a")
