"""Transactional outbox: write with the state change, publish from a relay (architecture §3).

Handlers call `enqueue` inside their transaction. The relay claims unsent rows with
`FOR UPDATE SKIP LOCKED` (so any number of replicas share the work and none publishes
a row another holds), publishes each with confirms, and marks it sent in the same
transaction. A crash between publish and commit republishes the row: delivery is
at-least-once and consumers deduplicate by message id. The relay wakes on the
schema's NOTIFY channel and polls as a fallback; during a broker outage it keeps the
rows and retries with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aio_pika.exceptions import DeliveryError
from prometheus_client import Counter, Histogram
from sqlalchemy import Row, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contracts.envelope import Envelope

log = logging.getLogger("agora.outbox")

PUBLISHED = Counter("agora_outbox_published_total", "Outbox rows published", ["service"])
FAILURES = Counter("agora_outbox_publish_failures_total", "Outbox publish attempts that failed", ["service"])
DELAY = Histogram(
    "agora_outbox_delay_seconds",
    "Time from outbox insert to confirmed publish",
    ["service"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)

Publish = Callable[[Row[Any]], Awaitable[None]]

# Failures that belong to one row (the broker returned or nacked it, or it names an
# exchange this process does not know), as opposed to the broker being unreachable.
_ROW_ERRORS = (DeliveryError, KeyError)
_MAX_ROW_BACKOFF_SECONDS = 300


async def enqueue(
    session: AsyncSession, outbox: Table, *, exchange: str, routing_key: str, body: dict[str, Any], envelope: Envelope
) -> None:
    await session.execute(
        outbox.insert().values(
            message_id=envelope.message_id,
            exchange=exchange,
            routing_key=routing_key,
            headers=envelope.to_headers(),
            body=body,
        )
    )


class OutboxRelay:
    def __init__(
        self,
        *,
        service: str,
        engine: AsyncEngine,
        outbox: Table,
        notify_channel: str,
        listen_dsn: str,
        publish: Publish,
        poll_seconds: float = 1.0,
        batch_size: int = 100,
    ) -> None:
        self._service = service
        self._engine = engine
        self._outbox = outbox
        self._channel = notify_channel
        self._dsn = listen_dsn
        self._publish = publish
        self._poll = poll_seconds
        self._batch = batch_size
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen(), name=f"{self._service}-outbox-listen")
        failures = 0
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    published = await self.publish_batch()
                    failures = 0
                except Exception as exc:  # broker or database down: keep the rows, back off
                    failures += 1
                    log.warning("outbox publish failed, will retry", extra={"error": repr(exc), "attempt": failures})
                    published = 0
                if published == self._batch:
                    continue  # more rows are probably waiting
                timeout = min(0.1 * 2**failures, 5.0) if failures else self._poll
                await self._sleep(timeout, wake_early=not failures)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def publish_batch(self) -> int:
        """Publish up to one batch of due rows; return how many went out.

        A row the broker refuses (unroutable, nacked) is set aside with its own
        backoff so it cannot hold up the rows behind it. Any other failure (broker or
        network down) ends the batch: what was published is still marked sent, and
        the error is raised for the caller's backoff.
        """
        t = self._outbox
        error: Exception | None = None
        sent: list[int] = []
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(t)
                    .where(t.c.sent_at.is_(None), t.c.next_attempt_at <= func.now())
                    .order_by(t.c.id)
                    .limit(self._batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                try:
                    await self._publish(row)
                except Exception as exc:
                    FAILURES.labels(self._service).inc()
                    delay = timedelta(seconds=min(2 ** (row.attempts + 1), _MAX_ROW_BACKOFF_SECONDS))
                    await conn.execute(
                        update(t)
                        .where(t.c.id == row.id)
                        .values(
                            attempts=t.c.attempts + 1,
                            last_error=repr(exc)[:500],
                            next_attempt_at=func.now() + delay,
                        )
                    )
                    if isinstance(exc, _ROW_ERRORS):
                        log.error("outbox row refused; will retry it later", extra={"row": row.id, "error": repr(exc)})
                        continue
                    error = exc
                    break
                sent.append(row.id)
                DELAY.labels(self._service).observe((datetime.now(UTC) - row.created_at).total_seconds())
            if sent:
                await conn.execute(update(t).where(t.c.id.in_(sent)).values(sent_at=func.now()))
        PUBLISHED.labels(self._service).inc(len(sent))
        if error is not None:
            raise error
        return len(sent)

    async def _sleep(self, seconds: float, *, wake_early: bool) -> None:
        waiter = self._wake if wake_early else self._stopping
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout=seconds)

    async def _listen(self) -> None:
        """Hold a LISTEN connection open; reconnect when it drops (polling covers gaps)."""
        while not self._stopping.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=10)
                await conn.add_listener(self._channel, lambda *_: self._wake.set())
                # asyncpg notices a dead connection only when it is used; check it
                # now and then, and stop waiting as soon as the relay stops.
                while not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), timeout=5)
                    if self._stopping.is_set():
                        break
                    await conn.execute("SELECT 1", timeout=5)
            except Exception as exc:
                log.warning("outbox listener disconnected", extra={"error": repr(exc)})
                await asyncio.sleep(2)
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()


def body_bytes(row: Row[Any]) -> bytes:
    return json.dumps(row.body, separators=(",", ":")).encode()
