"""Issue 17, findings 5–7 and 10: a guest's code, memory and output are bounded by its host, not the reverse."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from lattice.errors import ActorError, ConfigError, InvalidActor, RemoteError
from lattice.host.actors import limits_from
from lattice.host.host import Host
from lattice.host.pool import ActorPool
from lattice.host.runtime import ActorLimits, Runtime
from lattice.settings import Settings
from tests.conftest import wait_for
from tests.host import guests
from tests.host.test_host import command, write

ECHO_BODY = "(call $guest_response (i32.const 2048) (local.get $msg_len)) (i32.const 1)"

# An echo whose start function logs: shows on which thread start functions run.
LOGS_AT_START = guests.guest(
    ECHO_BODY,
    extra='(func (export "start") (call $console_log (i32.const 16) (i32.const 7))) (data (i32.const 16) "started")',
)


# --- 5. guest code on the event loop, unbounded deadlines -----------------------------------------


def test_inline_call_never_runs_start_functions_on_the_calling_thread(runtime: Runtime) -> None:
    starts: list[int] = []
    pool = ActorPool(
        runtime, runtime.compile(LOGS_AT_START), log_sink=lambda stream, text: starts.append(threading.get_ident())
    )
    starts.clear()
    with pool._instance():  # the only instance is busy: an inline call would need a new one
        assert pool.call_inline("Echo.Echo", b"x") is None
    assert starts == []  # no start function ran here (the event loop's thread, in a host)
    assert pool.call("Echo.Echo", b"y") == b"y"


@pytest.mark.parametrize(
    ("limits", "count", "message"),
    [
        ({"deadline_ms": 10**30}, 1, "deadline_ms is at most"),
        ({"max_memory_mb": 1 << 20}, 1, "max_memory_mb is at most"),
        ({"max_instances": 40000}, 1, "max_instances is at most"),
        ({}, 40000, "at most 256 per actor per host"),
    ],
)
def test_limits_over_the_hosts_caps_are_refused(limits: dict[str, int], count: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        limits_from({"limits": limits}, count)


async def test_control_command_with_huge_deadline_or_replicas_is_refused(host_factory: Any, tmp_path: Path) -> None:
    host = await host_factory()
    image = write(tmp_path, "e.wasm", guests.ECHO)
    huge = await command(
        host, "scale", {"actor_ref": image, "count": 1, "properties": {"limits": {"deadline_ms": 10**30}}}
    )
    assert not huge["accepted"] and "deadline_ms" in huge["error"]
    many = await command(host, "scale", {"actor_ref": image, "count": 40000})
    assert not many["accepted"] and "at most" in many["error"]
    assert host.actors == {}


# --- 6. memory per instance, tables ----------------------------------------------------------------


def test_many_memories_do_not_multiply_the_memory_limit(runtime: Runtime) -> None:
    memories = "".join(f"(memory $m{i} 1000)" for i in range(15))
    wasm = guests.guest(ECHO_BODY, extra=memories)
    with pytest.raises(InvalidActor, match="memory count"):
        ActorPool(runtime, runtime.compile(wasm), limits=ActorLimits(max_memory_bytes=64 << 20))


def test_huge_table_is_refused(runtime: Runtime) -> None:
    wasm = guests.guest(ECHO_BODY, extra="(table 50000000 funcref)")
    with pytest.raises(InvalidActor, match="table"):
        ActorPool(runtime, runtime.compile(wasm))


# --- 7. one actor cannot take every worker thread --------------------------------------------------


async def test_spinning_actor_cannot_take_every_worker_thread(settings: Settings, tmp_path: Path) -> None:
    host = Host(settings.with_overrides(files_root=tmp_path), workers=8)
    await host.__aenter__()
    try:
        spin = await host.scale_actor(
            write(tmp_path, "spin.wasm", guests.LOOPS), 1, {"app": "t"}, {"limits": {"deadline_ms": 3000}}
        )
        echo = await host.scale_actor(write(tmp_path, "echo.wasm", guests.ECHO), 1, {"app": "t"}, {})
        assert spin is not None and echo is not None
        # the victim makes a host call (to echo), so it needs a worker thread, as the demo's kvcounter does
        victim = await host.scale_actor(
            write(tmp_path, "victim.wasm", guests.host_caller(echo.actor_id, "Echo.Echo")), 1, {"app": "t"}, {}
        )
        assert victim is not None
        spinning = [asyncio.create_task(host.invoke(spin.actor_id, "X.Y", b"")) for _ in range(16)]
        await wait_for(lambda: spin.pool.stats()["in_flight"] >= 2)
        assert await host.invoke(victim.actor_id, "X.Y", b"still served") == b"still served"
        assert not any(t.done() for t in spinning)  # answered while every spinning call still ran or waited
        assert spin.pool.stats()["in_flight"] <= 8 // 4
        results = await asyncio.gather(*spinning, return_exceptions=True)
        assert all("deadline" in str(r) for r in results)
    finally:
        await host.shutdown()


# --- 10. guest output ------------------------------------------------------------------------------

BIG = 4 * 1024 * 1024


def _shouter() -> bytes:
    """Logs a 4 MiB line, then fails with a 4 MiB error."""
    pages = BIG // 65536 + 2
    return guests.guest(
        f"(drop (memory.grow (i32.const {pages})))"
        f"(call $console_log (i32.const 65536) (i32.const {BIG}))"
        f"(call $guest_error (i32.const 65536) (i32.const {BIG}))"
        "(i32.const 0)"
    )


def test_huge_guest_error_and_log_line_are_cut(runtime: Runtime) -> None:
    lines: list[str] = []
    pool = ActorPool(runtime, runtime.compile(_shouter()), log_sink=lambda stream, text: lines.append(text))
    with pytest.raises(ActorError) as caught:
        pool.call("X.Y", b"")
    assert len(str(caught.value)) < 20_000 and "cut" in str(caught.value)
    assert lines and all(len(line) < 20_000 for line in lines) and "cut" in lines[0]


def test_guest_logging_is_rate_limited(runtime: Runtime) -> None:
    lines: list[str] = []
    chatty = guests.guest(
        "(block $done (loop $l (call $console_log (i32.const 16) (i32.const 4))"
        " (br_if $done (i32.eqz (local.tee $msg_len (i32.sub (local.get $msg_len) (i32.const 1))))) (br $l)))"
        " (call $guest_response (i32.const 16) (i32.const 4)) (i32.const 1)",
        extra='(data (i32.const 16) "spam")',
    )
    pool = ActorPool(runtime, runtime.compile(chatty), log_sink=lambda stream, text: lines.append(text))
    assert pool.call("X.Y", b"\0" * 5000) == b"spam"
    assert 0 < len(lines) < 1000


async def test_error_larger_than_nats_max_payload_is_still_answered(host_factory: Any, tmp_path: Path) -> None:
    serving, calling = await host_factory(), await host_factory()
    reply = await command(serving, "scale", {"actor_ref": write(tmp_path, "big.wasm", _shouter()), "count": 1})
    assert reply["accepted"], reply
    assert serving.nc.max_payload < BIG
    with pytest.raises(RemoteError, match="cut"):
        await calling.invoke(reply["actor_id"], "X.Y", b"")
