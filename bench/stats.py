"""Percentiles from sorted samples (nearest rank) and a timing loop for in-process micro benchmarks."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence


def percentile(sorted_samples: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q ≤ 1) of already sorted samples; NaN when there are none."""
    if not sorted_samples:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_samples)))
    return float(sorted_samples[min(rank, len(sorted_samples)) - 1])


def summarize(samples: list[float], prefix: str, unit: str) -> dict[str, float]:
    """``{prefix}_{unit}_p50`` and ``_p99`` of ``samples`` (sorted in place)."""
    samples.sort()
    return {f"{prefix}_{unit}_p50": percentile(samples, 0.50), f"{prefix}_{unit}_p99": percentile(samples, 0.99)}


def time_each_us(fn: Callable[[], object], count: int, *, warmup: int = 50) -> list[float]:
    """Microseconds of each of ``count`` calls of ``fn`` (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        fn()
    clock = time.perf_counter_ns
    samples = []
    for _ in range(count):
        start = clock()
        fn()
        samples.append((clock() - start) / 1000)
    return samples
