"""Timing helpers shared by the benchmarks: best-of-n wall time, measured in the same run as the reference."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

import torch


def best_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1, min_seconds: float = 0.0) -> float:
    """Minimum wall time of `fn()` over `repeats` runs after `warmup` runs (synchronising CUDA); with
    `min_seconds`, runs go on until they add up to that long or number 10,000 (a sub-millisecond call's
    best of 3 is mostly noise: both sides of a comparison get the same rule)."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    while len(times) < repeats or (sum(times) < min_seconds and len(times) < 10_000):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def cpu_time(fn: Callable[[], object], repeats: int = 2, warmup: int = 1) -> float:
    """Minimum CPU time of this process over `repeats` runs of `fn()`: on a CPU shared with other jobs, wall
    time measures the neighbours as much as the code (use with one intra-op thread, `--threads 1`)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def machine() -> str:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    return f"{platform.processor() or platform.machine()}, {device}, torch {torch.__version__}"
