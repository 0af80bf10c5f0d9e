"""Prometheus metrics of the edge, in the process-wide default registry.

In a pool (edge/pool.py) every process writes its values to files in
`PROMETHEUS_MULTIPROC_DIR`, which its parent set before the process started; the
parent answers `/metrics` on the pool's metrics port and reads them all, so it reports
the whole pool (counters summed), as a worker pool does (workers/runtime/health.py).
"""

from __future__ import annotations

import os

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

REQUESTS = Counter(
    "agora_edge_http_requests_total",
    "HTTP requests answered by the edge",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "agora_edge_http_request_duration_seconds",
    "Time from request to response at the edge",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

# Clients choose the method token: bound the label values it can create.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in _METHODS else "OTHER"
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    pool = CollectorRegistry()
    MultiProcessCollector(pool)  # type: ignore[no-untyped-call]
    return pool


_EXPORTED = _registry()


async def metrics_handler(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(_EXPORTED), headers={"Content-Type": CONTENT_TYPE_LATEST})
