"""Timing helper shared by the bench scripts (run them as `python bench/<script>.py`)."""

import statistics
import time


def median_ms(fn, repeats=20, warmup=2):
    """Median wall time of fn() in milliseconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)
