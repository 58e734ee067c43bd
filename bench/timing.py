"""Shared timing helper for the benchmark scripts (run as ``python bench/<name>.py``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(func: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``func`` after one warm-up call."""
    func()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
