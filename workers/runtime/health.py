"""`/healthz`, `/readyz` and `/metrics` for a worker process, served by FastStream's ASGI app.

With `agora worker NAME --workers N` the processes share one port, so `/metrics`
reads Prometheus' multiprocess directory and reports the whole pool.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING, Any

from faststream.asgi import AsgiResponse, get
from prometheus_client import REGISTRY, CollectorRegistry, make_asgi_app, multiprocess
from sqlalchemy import text

if TYPE_CHECKING:
    from workers.runtime.service import WorkerService


def metrics_app() -> Any:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return make_asgi_app(registry)
    return make_asgi_app(REGISTRY)


def health_routes(service: WorkerService) -> list[tuple[str, Any]]:
    @get(include_in_schema=False)
    async def healthz(scope: Any) -> AsgiResponse:
        return AsgiResponse(b'{"status":"ok"}', status_code=200, headers={"content-type": "application/json"})

    @get(include_in_schema=False)
    async def readyz(scope: Any) -> AsgiResponse:
        checks = {
            "consuming": service.consuming,
            "broker": await _broker_ok(service),
            "database": await _database_ok(service),
        }
        ok = all(checks.values())
        body = json.dumps({"status": "ready" if ok else "not ready", "checks": checks}).encode()
        return AsgiResponse(body, status_code=200 if ok else 503, headers={"content-type": "application/json"})

    return [("/healthz", healthz), ("/readyz", readyz), ("/metrics", metrics_app())]


async def _broker_ok(service: WorkerService) -> bool:
    try:
        return bool(await service.broker.ping(timeout=2.0))
    except Exception:
        return False


async def _database_ok(service: WorkerService) -> bool:
    try:
        async with asyncio.timeout(2.0), service.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
