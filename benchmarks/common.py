"""Shared helpers for the benchmarks: the machine's fp32 matmul peak, medians, machine description,
and the idle check (other processes' CPU use, from /proc/stat)."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable

import torch


def matmul_peak_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Median GFLOP/s of an n x n fp32 matmul: the practical peak the FLOP floors are measured against."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    return 2 * n**3 / median_seconds(lambda: a @ b, repeats) / 1e9


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in out.splitlines()
                if line.startswith("Model name")
            ),
            "",
        )
    except OSError:
        model = platform.processor()
    return f"{model or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def cpu_busy() -> float:
    """Jiffies all CPUs spent busy so far (from /proc/stat)."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds of fn(), and the CPU-seconds per second other processes used meanwhile."""
    busy0, own0, t0 = cpu_busy(), time.process_time(), time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    foreign = (cpu_busy() - busy0) - (time.process_time() - own0)
    return wall, max(0.0, foreign / wall)


def wait_quiet(max_wait: float, threshold: float = 0.3) -> float:
    """Wait (up to max_wait s) until other processes use under `threshold` cores; returns their load."""
    deadline = time.time() + max_wait
    while True:
        busy0 = cpu_busy()
        time.sleep(0.5)
        load = (cpu_busy() - busy0) / 0.5
        if load < threshold or time.time() > deadline:
            return load
