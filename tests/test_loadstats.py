"""Per-actor load and latency accounting (``lattice.loadstats``): the time integral of calls in a pool, its
average per heartbeat interval (Little's law), and latency histograms that add up across hosts. Pure, plus
a real wasmtime pool whose calls are counted while they run."""

from __future__ import annotations

import threading

from lattice.host.pool import ActorPool
from lattice.host.runtime import Runtime
from lattice.loadstats import BOUNDS_MS, LoadMeter, Sampler, add_buckets, percentile_ms, sub_buckets, trimmed
from tests.conftest import from_threads
from tests.host import guests


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_integral_counts_calls_times_seconds_and_the_sampler_averages_it() -> None:
    clock = Clock()
    meter = LoadMeter(clock)
    sampler = Sampler(meter)
    meter.add(1)  # one call from t=100
    clock.now = 101.0
    meter.add(1)  # a second from t=101
    clock.now = 102.0
    meter.add(-1)  # one leaves at t=102
    clock.now = 104.0
    assert meter.area() == 1 + 2 + 2  # 1 call for 1 s, 2 for 1 s, 1 for 2 s
    assert sampler.sample() == 5 / 4  # 1.25 calls in the pool on average over the 4 s interval
    clock.now = 106.0  # the remaining call is still running: it counts although it has not finished
    assert sampler.sample() == 1.0
    meter.add(-1)
    clock.now = 110.0
    assert sampler.sample() == 0.0


def test_many_short_calls_add_up_to_the_load_a_snapshot_never_sees() -> None:
    """1000 calls of 2 ms in a second: never more than one in flight at a sample, but 2 on average."""
    clock = Clock()
    meter = LoadMeter(clock)
    sampler = Sampler(meter)
    for i in range(1000):
        clock.now = 100.0 + i / 1000
        meter.add(1)
        meter.add(1)  # two callers at once, each for 2 ms (overlapping in pairs)
        clock.now += 0.002
        meter.add(-1)
        meter.add(-1)
    clock.now = 101.0
    assert abs(sampler.sample() - 4.0) < 1e-6  # 2 calls × 2 ms per 1 ms slot


def test_histograms_add_subtract_and_read_back_a_percentile() -> None:
    meter = LoadMeter()
    for ms in [1.0] * 98 + [40.0, 900.0]:
        meter.record(ms / 1000)
    assert sum(meter.buckets) == 100
    p50 = percentile_ms(meter.buckets, 0.5)
    assert p50 is not None and 0.5 < p50 <= 1.0  # inside the (0.5, 1] ms bucket
    assert percentile_ms(meter.buckets, 0.99) == 50.0  # the 99th call is the 40 ms one, at its bucket's top
    assert percentile_ms(meter.buckets, 1.0) == 1000.0
    assert trimmed(meter.buckets) == meter.buckets[: BOUNDS_MS.index(1000.0) + 1] and trimmed([0, 0]) == []
    assert percentile_ms([0] * (len(BOUNDS_MS) + 1)) is None
    slow = LoadMeter()
    slow.record(20.0)  # past the last bound
    assert percentile_ms(slow.buckets) == float("inf")
    both = add_buckets(meter.buckets, slow.buckets)
    assert sum(both) == 101 and sub_buckets(both, meter.buckets) == slow.buckets
    assert sub_buckets(meter.buckets, both) == [0] * len(both)  # a restarted host never goes negative
    assert add_buckets(["x", True], [1]) == [1] + [0] * len(BOUNDS_MS)  # malformed reports count as nothing


def test_a_real_pool_counts_a_call_while_it_runs_and_times_every_call(runtime: Runtime) -> None:
    entered, release = threading.Event(), threading.Event()

    def host_call(binding: str, namespace: str, operation: str, payload: bytes) -> bytes:
        entered.set()
        assert release.wait(30)
        return payload

    pool = ActorPool(runtime, runtime.compile(guests.host_caller("test:slow", "Slow.Op")), host_call=host_call)
    caller = threading.Thread(target=pool.call, args=("Op", b"x"))
    caller.start()
    try:
        assert entered.wait(30)
        t1 = pool.meter.clock()
        t2 = t1 + 5.0
        assert abs(pool.meter.area(t2) - pool.meter.area(t1) - 5.0) < 1e-6  # one call in the pool, not yet finished
    finally:
        release.set()
        caller.join(30)
    assert pool.meter.area(t2 + 10) - pool.meter.area(t2 + 5) == 0.0  # it left: no call in the pool
    echo = ActorPool(runtime, runtime.compile(guests.ECHO))
    from_threads(lambda p: echo.call("Echo", p), threads=4, per_thread=25)
    assert sum(echo.meter.buckets) == echo.calls == 100
    assert echo.meter.area() > 0


def test_a_call_waiting_for_a_worker_counts_until_it_enters_the_pool(runtime: Runtime) -> None:
    pool = ActorPool(runtime, runtime.compile(guests.ECHO))
    left = pool.queued()
    t = pool.meter.clock()
    assert abs(pool.meter.area(t + 2.0) - pool.meter.area(t) - 2.0) < 1e-6  # one call waiting
    left()
    left()  # once only: a second call does not take another one off
    t = pool.meter.clock()
    assert pool.meter.area(t + 2.0) - pool.meter.area(t) == 0.0
