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


def test_a_call_that_finds_none_idle_has_a_spare_built_with_its_start_functions(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.STARTS), spare=True, limits=ActorLimits(max_instances=4))
    threads = _instantiated_on(pool)
    with pool._instance(), pool._instance():  # two calls in flight: the second found none idle
        _until(lambda: len(pool._idle) == 1)
        assert pool.stats()["instances"] == 3
    assert sorted(threads) == sorted([threading.current_thread().name, "spare-maker"])
    # each instance, the spare too, ran wapc_init and start exactly once before its first call
    assert [pool.call("Any.Op", b"") for _ in range(6)] == [b"2"] * 6


def test_sequential_calls_wake_no_spare_maker(runtime: Runtime) -> None:
    """A call that finds an idle instance asks for nothing: no thread is woken on the hot path."""
    pool = ActorPool(runtime, runtime.compile(guests.ECHO), spare=True, limits=ActorLimits(max_instances=4))
    for _ in range(20):
        assert pool.call("Echo.Echo", b"x") == b"x"
    assert not pool._spare_asked
    assert pool.stats()["instances"] == 1


def test_the_next_call_of_a_burst_gets_the_spare_instead_of_instantiating(runtime: Runtime) -> None:
    entered, release = threading.Semaphore(0), threading.Event()

    def blocking(binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
        entered.release()
        assert release.wait(10)
        return b"ok"

    caller = runtime.compile(guests.host_caller("example:kv", "Get"))
    pool = ActorPool(runtime, caller, spare=True, host_call=blocking, limits=ActorLimits(max_instances=4))
    threads = _instantiated_on(pool)
    calls = [threading.Thread(target=pool.call, args=("X.Y", b""), name=f"call-{i}") for i in range(3)]
    try:
        for call in calls[:2]:  # the first on the pool's instance, the second on one it builds
            call.start()
            assert entered.acquire(timeout=10)
        _until(lambda: len(pool._idle) == 1)  # the spare the second call asked for
        calls[2].start()
        assert entered.acquire(timeout=10)  # the third call runs, on the spare
        assert sorted(threads) == ["call-1", "spare-maker"], threads
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
