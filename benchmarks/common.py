"""Shared helpers for the benchmarks: the machine's fp32 matmul peak, medians, machine description."""

from __future__ import annotations

import platform
import statistics
import subprocess
import time
from typing import Callable

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
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "")
    except OSError:
        model = platform.processor()
    return f"{model or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
