"""Transactional outbox: write with the state change, publish right after the commit,
sweep up what was left (architecture §3, issue 14).

A handler's events and commands are kept in memory (`prepare`) and written together
just before its transaction commits (`write`: one statement for them all). Right after
the transaction commits, the runtime publishes those rows from memory, all at once
(their confirms are awaited together), and the relay marks them sent in bulk a moment
later (`flush_marks`): no NOTIFY, no second transaction per delivery.

The relay only sweeps up leftovers: rows whose publish failed (a broker outage), rows of
a process that died between its commit and its publish, and rows written outside a
delivery (a command-line tool). It claims unsent rows older than `grace_seconds` with
`FOR UPDATE SKIP LOCKED` (any number of replicas share the work, none publishes a row
another holds), publishes them with confirms and marks them sent in the same
transaction. A crash between a publish and its mark publishes the row again: delivery
is at-least-once and consumers deduplicate by message id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from aio_pika.exceptions import DeliveryError
from prometheus_client import Counter, Histogram
from sqlalchemy import Table, func, select, update
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


class OutboxMessage(Protocol):
    """What publishing needs of a row, whether read back or still in memory."""

    @property
    def message_id(self) -> UUID: ...
    @property
    def exchange(self) -> str: ...
    @property
    def routing_key(self) -> str: ...
    @property
    def headers(self) -> dict[str, Any]: ...
    @property
    def body(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Written:
    """An outbox row as its transaction wrote it, kept to publish after the commit."""

    message_id: UUID
    exchange: str
    routing_key: str
    headers: dict[str, Any]
    body: dict[str, Any]
    created_at: datetime


Publish = Callable[[OutboxMessage], Awaitable[None]]

# Failures that belong to one row (the broker returned or nacked it, or it names an
# exchange this process does not know), as opposed to the broker being unreachable.
_ROW_ERRORS = (DeliveryError, KeyError)
_MAX_ROW_BACKOFF_SECONDS = 300


def prepare(*, exchange: str, routing_key: str, body: dict[str, Any], envelope: Envelope) -> Written:
    """An outbox row, in memory: `write` puts a transaction's rows in with one statement."""
    return Written(
        message_id=envelope.message_id,
        exchange=exchange,
        routing_key=routing_key,
        headers=envelope.to_headers(),
        body=body,
        created_at=datetime.now(UTC),
    )


async def write(session: AsyncSession, outbox: Table, rows: list[Written]) -> None:
    """Insert the rows in the session's transaction, all in one statement."""
    if rows:
        await session.execute(
            outbox.insert(),
            [
                {
                    "message_id": row.message_id,
                    "exchange": row.exchange,
                    "routing_key": row.routing_key,
                    "headers": row.headers,
                    "body": row.body,
                }
                for row in rows
            ],
        )


async def enqueue(
    session: AsyncSession, outbox: Table, *, exchange: str, routing_key: str, body: dict[str, Any], envelope: Envelope
) -> Written:
    """One row, written now (outside a delivery: an operator's command)."""
    written = prepare(exchange=exchange, routing_key=routing_key, body=body, envelope=envelope)
    await write(session, outbox, [written])
    return written


class OutboxRelay:
    def __init__(
        self,
        *,
        service: str,
        engine: AsyncEngine,
        outbox: Table,
        publish: Publish,
        poll_seconds: float = 0.5,
        grace_seconds: float = 1.0,
        batch_size: int = 100,
    ) -> None:
        self._service = service
        self._engine = engine
        self._outbox = outbox
        self._publish = publish
        self._poll = poll_seconds
        self._grace = timedelta(seconds=grace_seconds)
        self._batch = batch_size
        self._stopping = asyncio.Event()
        self._to_mark: list[UUID] = []

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                await self.flush_marks()
                published = await self.publish_batch()
                failures = 0
            except Exception as exc:  # broker or database down: keep the rows, back off
                failures += 1
                log.warning("outbox publish failed, will retry", extra={"error": repr(exc), "attempt": failures})
                published = 0
            if published == self._batch:
                continue  # more rows are probably waiting
            await self._sleep(min(0.1 * 2**failures, 5.0) if failures else self._poll)

    def stop(self) -> None:
        self._stopping.set()

    async def publish_written(self, written: list[Written]) -> None:
        """Right after their transaction committed: publish its rows from memory, all at
        once (the confirms are awaited together), and have them marked sent in bulk. A row
        that fails here stays unsent for the sweep."""
        results = await asyncio.gather(*(self._publish(row) for row in written), return_exceptions=True)
        for row, result in zip(written, results, strict=True):
            if isinstance(result, BaseException):
                FAILURES.labels(self._service).inc()
                log.warning("outbox row not published after commit; the relay will", extra={"error": repr(result)})
                continue
            self._to_mark.append(row.message_id)
            DELAY.labels(self._service).observe((datetime.now(UTC) - row.created_at).total_seconds())
        PUBLISHED.labels(self._service).inc(sum(1 for r in results if not isinstance(r, BaseException)))

    async def flush_marks(self) -> None:
        """Mark what was published after its commit as sent, in one statement."""
        if not self._to_mark:
            return
        marks, self._to_mark = self._to_mark, []
        t = self._outbox
        try:
            async with self._engine.begin() as conn:
                await conn.execute(update(t).where(t.c.message_id.in_(marks)).values(sent_at=func.now()))
        except BaseException:
            self._to_mark.extend(marks)  # the next flush tries again; the sweep waits for them
            raise

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
                    .where(
                        t.c.sent_at.is_(None),
                        t.c.next_attempt_at <= func.now(),
                        # Younger rows are being published (or marked) by the process
                        # that wrote them: leave them to it.
                        t.c.created_at < func.now() - self._grace,
                    )
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

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


def body_bytes(row: OutboxMessage) -> bytes:
    return json.dumps(row.body, separators=(",", ":")).encode()
