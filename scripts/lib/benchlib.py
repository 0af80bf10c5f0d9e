"""What every benchmark script shares: timing calls at a fixed concurrency, and printing latencies."""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

LATENCY_HEADER = f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8}"


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}"


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def latency_columns(latencies: list[float]) -> str:
    """p50, p95, p99 and mean in milliseconds, under LATENCY_HEADER."""
    ms = sorted(1000 * s for s in latencies)
    return (
        f"{percentile(ms, 0.50):>8.1f} {percentile(ms, 0.95):>8.1f} {percentile(ms, 0.99):>8.1f} "
        f"{statistics.fmean(ms):>8.1f}"
    )


async def timed(calls: list[Callable[[], Awaitable[T]]], concurrency: int) -> tuple[list[T], list[float], float]:
    """Run the calls with `concurrency` in flight; their results, latencies and the total time."""
    results: list[T] = []
    latencies: list[float] = []
    queue = list(reversed(calls))

    async def lane() -> None:
        while queue:
            call = queue.pop()
            started = time.perf_counter()
            results.append(await call())
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return results, latencies, time.perf_counter() - started
