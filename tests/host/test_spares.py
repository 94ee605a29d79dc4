"""Warm spares (``host.spares``): a pool made with ``spare=True`` has a fresh instance built off the call's
path, within its limits, with its start functions run — real wasmtime, no NATS."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from lattice.host.pool import ActorPool
from lattice.host.runtime import ActorLimits, Runtime
from lattice.host.spares import SpareMaker
from tests.host import guests


def _until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met within the timeout"
        time.sleep(0.005)


def _instantiated_on(pool: ActorPool) -> list[str]:
    """The threads on which ``pool`` builds instances from now on."""
    threads: list[str] = []
    build = pool._new_instance

    def recorded() -> Any:
        threads.append(threading.current_thread().name)
        return build()

    pool._new_instance = recorded  # type: ignore[method-assign]
    return threads


def test_taking_the_last_idle_instance_builds_a_spare_with_its_start_functions(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.STARTS), spare=True, limits=ActorLimits(max_instances=4))
    threads = _instantiated_on(pool)
    with pool._instance():  # a call in flight on the only instance
        _until(lambda: len(pool._idle) == 1)
        assert pool.stats()["instances"] == 2
    assert threads == ["spare-maker"]
    # each instance, the spare too, ran wapc_init and start exactly once before its first call
    assert [pool.call("Any.Op", b"") for _ in range(4)] == [b"2"] * 4


def test_sequential_calls_need_no_spare(runtime: Runtime) -> None:
    """The spare keeps one instance idle: a call that put its instance back before the maker ran left one."""
    pool = ActorPool(runtime, runtime.compile(guests.ECHO), spare=True, limits=ActorLimits(max_instances=4))
    for _ in range(20):
        pool.call("Echo.Echo", b"x")
    _until(lambda: not pool._spare_asked)  # the maker has looked at every request
    assert 1 <= pool.stats()["instances"] <= 2


def test_a_call_that_finds_none_idle_gets_the_spare_instead_of_instantiating(runtime: Runtime) -> None:
    entered, release = threading.Event(), threading.Event()

    def blocking(binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
        entered.set()
        assert release.wait(10)
        return b"ok"

    caller = runtime.compile(guests.host_caller("example:kv", "Get"))
    pool = ActorPool(runtime, caller, spare=True, host_call=blocking, limits=ActorLimits(max_instances=3))
    threads = _instantiated_on(pool)
    calls = [threading.Thread(target=pool.call, args=("X.Y", b"")) for _ in range(2)]
    calls[0].start()
    try:
        assert entered.wait(10)
        _until(lambda: len(pool._idle) == 1)  # the spare, built while the first call runs
        entered.clear()
        calls[1].start()
        assert entered.wait(10)  # the second call runs, on the spare: no call thread instantiated
        assert threads and all(name == "spare-maker" for name in threads), threads
    finally:
        release.set()
        for call in calls:
            if call.is_alive():
                call.join(10)


def test_spares_never_take_a_pool_past_max_instances(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.ECHO), spare=True, limits=ActorLimits(max_instances=1))
    for _ in range(20):
        assert pool.call("Echo.Echo", b"x") == b"x"
    time.sleep(0.05)  # give a (wrong) spare the chance to appear; nothing is waited on
    assert pool.stats()["instances"] == 1


def test_pool_without_spare_keeps_one_instance_for_sequential_calls(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.ECHO), limits=ActorLimits(max_instances=4))
    for _ in range(20):
        pool.call("Echo.Echo", b"x")
    assert pool.stats()["instances"] == 1


def test_a_closed_pool_gets_no_spare_and_a_closed_maker_builds_none(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.ECHO), spare=True, limits=ActorLimits(max_instances=4))
    pool.close()
    pool.make_spare()
    assert pool.stats()["instances"] == 0
    maker = SpareMaker()
    maker.close()
    other = ActorPool(runtime, runtime.compile(guests.ECHO), spare=True)
    maker.request(other)
    assert other.stats()["instances"] == 1  # only the one every pool starts with
