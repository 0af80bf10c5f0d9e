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


def latency_figures(latencies: list[float]) -> tuple[float, float, float, float]:
    """p50, p95, p99 and mean in milliseconds."""
    ms = sorted(1000 * s for s in latencies)
    return percentile(ms, 0.50), percentile(ms, 0.95), percentile(ms, 0.99), statistics.fmean(ms)


def latency_columns(latencies: list[float]) -> str:
    """p50, p95, p99 and mean in milliseconds, under LATENCY_HEADER."""
    return " ".join(f"{figure:>8.1f}" for figure in latency_figures(latencies))


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


async def for_duration(
    call: Callable[[], Awaitable[T]], concurrency: int, seconds: float
) -> tuple[list[T], list[float], float]:
    """Keep `concurrency` calls in flight, starting new ones for `seconds`; their results,
    latencies (in the same order) and the time until the last one ended."""
    results: list[T] = []
    latencies: list[float] = []
    started = time.perf_counter()

    async def lane() -> None:
        while time.perf_counter() - started < seconds:
            call_started = time.perf_counter()
            results.append(await call())
            latencies.append(time.perf_counter() - call_started)

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return results, latencies, time.perf_counter() - started
