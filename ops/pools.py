"""`agora workers`: each worker pool's health, as an operator asks it.

Two sources, because neither alone tells it all: the pool's own `/readyz` on this
machine's health port (is the process that answers there consuming, with its broker and
database reachable?), and the broker's consumer counts (how many processes, on any
machine, consume the pool's queues). A pool's processes each consume every one of its
queues, so the most consumers on one of its work queues is how many processes it has.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from edge.dead_letters import DeadLetterError, DeadLetters, QueueDepth, is_dead_letter_queue
from kernel.settings import SERVICES, Settings, worker_port

_PROBE_TIMEOUT = aiohttp.ClientTimeout(total=3)


@dataclass(frozen=True)
class PoolHealth:
    name: str
    port: int
    # "ready", "not ready (broker, database)" (the failed checks), or "no answer"
    readiness: str
    # Processes consuming the pool's queues, from the broker; None when it could not be asked.
    processes: int | None
    queues: int

    @property
    def ready(self) -> bool:
        return self.readiness == "ready"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ready": self.ready}


async def pools(settings: Settings) -> list[PoolHealth]:
    depths: list[QueueDepth] | None
    try:
        depths = await DeadLetters.from_settings(settings).queue_depths()
    except DeadLetterError:
        depths = None
    async with aiohttp.ClientSession(timeout=_PROBE_TIMEOUT) as http:
        readiness = await asyncio.gather(
            *(_readiness(http, f"http://{settings.host}:{worker_port(settings, name)}/readyz") for name in SERVICES)
        )
    found = []
    for name, ready in zip(SERVICES, readiness, strict=True):
        own = [q for q in depths or () if q.queue.startswith(f"{name}.") and not is_dead_letter_queue(q.queue)]
        processes = max((q.consumers for q in own), default=0) if depths is not None else None
        found.append(PoolHealth(name, worker_port(settings, name), ready, processes, len(own)))
    return found


async def _readiness(http: aiohttp.ClientSession, url: str) -> str:
    try:
        async with http.get(url) as resp:
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
        return "no answer"
    if resp.status == 200:
        return "ready"
    failed = [check for check, ok in (body.get("checks") or {}).items() if not ok]
    return f"not ready ({', '.join(failed)})" if failed else "not ready"


def table(found: list[PoolHealth]) -> list[str]:
    """The rows `agora workers` prints, a header first."""
    rows = [("WORKER", "PORT", "PROCESSES", "QUEUES", "READY (this machine's /readyz)")]
    rows += [
        (p.name, str(p.port), "?" if p.processes is None else str(p.processes), str(p.queues), p.readiness)
        for p in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[4]]) for row in rows]
