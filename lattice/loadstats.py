"""Per-actor load and latency as hosts report them in heartbeats (SPEC §5 elastic actors and rollouts).

A host cannot see an actor's load by sampling how many calls are in flight when the heartbeat goes out:
calls that take microseconds are almost never caught in flight. ``LoadMeter`` instead integrates the number
of calls in the actor's pool (waiting for an instance or running) over time, exactly, at every change. The
integral's growth over an interval divided by the interval is the time-averaged number of calls in the
pool (Little's law: arrival rate × time in the pool), even for a call still running. ``Sampler`` turns the
integral into that average once per heartbeat (the inventory's ``load``).

Each finished call's duration (waiting included) also lands in a fixed-bucket histogram (``BOUNDS_MS``),
cumulative since the pool started (the inventory's ``latency_buckets``). Histograms add up across hosts and
subtract over a window, which percentiles do not; ``percentile_ms`` reads one back (the bucket's upper
bound, so the answer never understates).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from typing import Final

BOUNDS_MS: Final = (
    *(0.1, 0.25, 0.5, 1.0, 2.0, 3.5, 5.0, 7.5, 10.0, 15.0, 25.0, 35.0, 50.0, 75.0),
    *(100.0, 150.0, 250.0, 350.0, 500.0, 750.0, 1000.0, 1500.0, 2500.0, 5000.0, 10000.0),
)
"""Upper bounds (ms) of the latency buckets; one more bucket counts everything slower."""


class LoadMeter:
    """The time integral of calls in a pool, and a histogram of their durations. ``add`` is called with the
    pool's own lock held (it keeps the counts), ``record`` from any thread (a lost count is harmless)."""

    __slots__ = ("_area", "_level", "_since", "buckets", "clock")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._level = 0
        self._area = 0.0
        self._since = clock()
        self.buckets = [0] * (len(BOUNDS_MS) + 1)

    def add(self, delta: int) -> None:
        """Calls in the pool changed by ``delta`` (+1: one arrived, -1: one left)."""
        now = self.clock()
        self._area += self._level * (now - self._since)
        self._since, self._level = now, self._level + delta

    def area(self, now: float | None = None) -> float:
        """Call-seconds spent in the pool so far (calls still in it counted up to ``now``)."""
        now = self.clock() if now is None else now
        return self._area + self._level * max(0.0, now - self._since)

    def record(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(BOUNDS_MS, seconds * 1000.0)] += 1


class Sampler:
    """The average of a ``LoadMeter``'s level between two ``sample`` calls (one per heartbeat)."""

    __slots__ = ("_area", "_at", "load", "meter")

    def __init__(self, meter: LoadMeter) -> None:
        self.meter = meter
        self._at = meter.clock()
        self._area = meter.area(self._at)
        self.load = 0.0

    def sample(self, now: float | None = None) -> float:
        now = self.meter.clock() if now is None else now
        area = self.meter.area(now)
        if now > self._at:
            self.load = max(0.0, area - self._area) / (now - self._at)
        self._at, self._area = now, area
        return self.load


def add_buckets(a: Sequence[int], b: Sequence[int]) -> list[int]:
    """Bucket-wise sum; a shorter or malformed list counts as zeros where it has nothing."""
    size = len(BOUNDS_MS) + 1
    return [_at(a, i) + _at(b, i) for i in range(size)]


def sub_buckets(a: Sequence[int], b: Sequence[int]) -> list[int]:
    """``a - b`` bucket-wise, never below 0 (a host that restarted starts its counts again)."""
    size = len(BOUNDS_MS) + 1
    return [max(0, _at(a, i) - _at(b, i)) for i in range(size)]


def _at(values: Sequence[int], i: int) -> int:
    value = values[i] if i < len(values) else 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def trimmed(buckets: Sequence[int]) -> list[int]:
    """``buckets`` without its trailing zeros (an idle actor reports ``[]``: heartbeats stay small)."""
    end = len(buckets)
    while end and not buckets[end - 1]:
        end -= 1
    return list(buckets[:end])


def percentile_ms(buckets: Sequence[int], fraction: float = 0.99) -> float | None:
    """The latency (ms) under which ``fraction`` of the calls finished, interpolated linearly inside the
    bucket where that call falls (as Prometheus' ``histogram_quantile``); ``inf`` when it is past the last
    bound, ``None`` when no call was recorded."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank, seen = fraction * total, 0
    for i, count in enumerate(buckets):
        if count and seen + count >= rank:
            if i >= len(BOUNDS_MS):
                return float("inf")
            lower = BOUNDS_MS[i - 1] if i else 0.0
            return lower + (BOUNDS_MS[i] - lower) * (rank - seen) / count
        seen += count
    return float("inf")
