"""Dead-letter queues: list, inspect, replay, discard. Used by `agora dlq` and the admin API.

Counts come from RabbitMQ's management API (they lag a few seconds); messages are read
over AMQP with `basic.get` without acknowledging them. A message that is only looked at
stays unacknowledged until the channel closes, when the broker returns every one of
them to the queue, in order: inspecting loses and reorders nothing.

Replay publishes the message (body and properties, minus the broker's `x-` headers)
through `agora.retry` under its work queue's name, so it reaches that one queue again
and no other subscriber of the same routing key; only after the publish is confirmed
is the dead letter acknowledged. A crash in between leaves both copies, and the
handler's inbox makes the second a no-op.

Only queues named `<queue>.dlq` in Agora's vhost are touched: anything else is
`NoSuchDeadLetterQueue`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Collection
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aio_pika
import aiohttp
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, HeadersType
from aio_pika.exceptions import ChannelClosed

from contracts.topology import (
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTERED_AT_HEADER,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    RETRY_EXCHANGE,
)
from kernel.redaction import REDACTED, SECRET_HEADERS, redact_body, secrets_of
from kernel.settings import Settings

log = logging.getLogger("agora.dead_letters")

DLQ_SUFFIX = ".dlq"
BODY_LIMIT = 10 * 1024
_TIMEOUT = aiohttp.ClientTimeout(total=15)
# The header a replayed message carries: how many times an operator replayed it.
REPLAYS_HEADER = "agora-replays"


class DeadLetterError(Exception):
    """The broker could not be reached or refused the operation."""


class NoSuchDeadLetterQueue(DeadLetterError):
    """Not a dead-letter queue of Agora's vhost (or no such queue at all)."""


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    messages: int
    consumers: int
    # Messages per second published to it and delivered from it (RabbitMQ's recent average).
    publish_rate: float = 0.0
    deliver_rate: float = 0.0


@dataclass(frozen=True)
class DeadLetterQueue:
    queue: str
    source: str
    messages: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeadLetter:
    id: str | None
    exchange: str | None
    routing_key: str | None
    reason: str | None
    dead_lettered_at: str | None
    headers: dict[str, Any]
    body: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def depth_of(row: dict[str, Any]) -> QueueDepth:
    """A queue as the management API lists it; a queue without traffic yet has no `message_stats`."""
    stats = row.get("message_stats") or {}

    def rate(name: str) -> float:
        return round(float((stats.get(name) or {}).get("rate") or 0.0), 2)

    return QueueDepth(
        str(row["name"]),
        int(row.get("messages") or 0),
        int(row.get("consumers") or 0),
        rate("publish_details"),
        rate("deliver_get_details"),
    )


def is_dead_letter_queue(name: str) -> bool:
    return name.endswith(DLQ_SUFFIX) and len(name) > len(DLQ_SUFFIX)


def source_queue(dlq: str) -> str:
    return dlq.removesuffix(DLQ_SUFFIX)


def vhost_of(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).path[1:]) or "/"


class DeadLetters:
    """The operations on Agora's dead-letter queues. One AMQP connection per operation:
    they are rare, and a short-lived connection holds nothing between them."""

    def __init__(self, amqp_url: str, management_url: str) -> None:
        self._amqp_url = amqp_url
        self._management_url = management_url.rstrip("/")
        self._vhost = vhost_of(amqp_url)

    @classmethod
    def from_settings(cls, settings: Settings) -> DeadLetters:
        return cls(settings.amqp_url, settings.rabbitmq_management_url)

    # --- counts (management API) ----------------------------------------------------------

    async def queue_depths(self) -> list[QueueDepth]:
        """Every queue of the vhost with its messages (ready and unacknowledged) and consumers."""
        parts = urlsplit(self._management_url)
        auth = aiohttp.BasicAuth(unquote(parts.username or "guest"), unquote(parts.password or "guest"))
        base = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        rates = "message_stats.publish_details.rate,message_stats.deliver_get_details.rate"
        url = f"{base}/api/queues/{quote(self._vhost, safe='')}?columns=name,messages,consumers,{rates}"
        try:
            async with aiohttp.ClientSession(auth=auth, timeout=_TIMEOUT) as http, http.get(url) as resp:
                if resp.status != 200:
                    raise DeadLetterError(f"RabbitMQ management API: GET queues → {resp.status}")
                rows = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeadLetterError(f"RabbitMQ management API unreachable: {exc}") from exc
        return sorted((depth_of(r) for r in rows), key=lambda q: q.queue)

    async def queues(self) -> list[DeadLetterQueue]:
        return [
            DeadLetterQueue(q.queue, source_queue(q.queue), q.messages)
            for q in await self.queue_depths()
            if is_dead_letter_queue(q.queue)
        ]

    # --- messages (AMQP) ------------------------------------------------------------------

    async def show(self, queue: str, limit: int = 20) -> list[DeadLetter]:
        """The first `limit` dead letters, oldest first; all stay in the queue."""
        shown: list[DeadLetter] = []
        async with self._holding(queue) as (_, messages):
            async for message in messages:
                shown.append(describe(message, queue))
                if len(shown) >= limit:
                    break
        return shown

    async def replay(self, queue: str, ids: Collection[str] | None = None) -> int:
        """Send the chosen dead letters (all when `ids` is None) back to their work queue."""
        replayed = 0
        async with self._holding(queue) as (channel, messages):
            retry = await channel.get_exchange(RETRY_EXCHANGE, ensure=False)
            async for message in messages:
                if ids is not None and message.message_id not in ids:
                    continue
                await retry.publish(_replay_copy(message), routing_key=source_queue(queue), mandatory=True)
                await message.ack()
                replayed += 1
        log.info("dead letters replayed", extra={"queue": queue, "count": replayed})
        return replayed

    async def discard(self, queue: str, ids: Collection[str] | None = None) -> int:
        """Delete the chosen dead letters (all when `ids` is None)."""
        discarded = 0
        async with self._holding(queue) as (_, messages):
            async for message in messages:
                if ids is not None and message.message_id not in ids:
                    continue
                await message.ack()
                discarded += 1
        log.info("dead letters discarded", extra={"queue": queue, "count": discarded})
        return discarded

    async def purge(self, queue: str) -> int:
        return await self.discard(queue)

    @contextlib.asynccontextmanager
    async def _holding(
        self, queue: str
    ) -> AsyncIterator[tuple[AbstractChannel, AsyncIterator[AbstractIncomingMessage]]]:
        """A confirming channel and the queue's messages, each held unacknowledged until
        the caller acks it or the channel closes (which returns the rest, in order)."""
        if not is_dead_letter_queue(queue):
            raise NoSuchDeadLetterQueue(queue)
        try:
            connection = await aio_pika.connect(self._amqp_url, timeout=15)
        except Exception as exc:
            raise DeadLetterError(f"RabbitMQ unreachable: {exc}") from exc
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            try:
                dlq = await channel.declare_queue(queue, passive=True)
            except ChannelClosed as exc:
                raise NoSuchDeadLetterQueue(queue) from exc
            # Only what was there at the start: a message dead-lettered meanwhile waits
            # for the next run, and the loop cannot chase a queue that keeps filling.
            present = dlq.declaration_result.message_count or 0

            async def messages() -> AsyncIterator[AbstractIncomingMessage]:
                for _ in range(present):
                    message = await dlq.get(no_ack=False, fail=False)
                    if message is None:
                        return
                    yield message

            yield channel, messages()
        finally:
            await connection.close()


def describe(message: AbstractIncomingMessage, queue: str) -> DeadLetter:
    """A dead letter as people may see it: secrets, tokens and card numbers redacted
    (kernel/redaction.py), whatever the message itself still holds."""
    headers = dict(message.headers or {})
    deaths = headers.get("x-death")
    first: dict[str, Any] = deaths[-1] if isinstance(deaths, list) and deaths and isinstance(deaths[-1], dict) else {}
    routing_keys = first.get("routing-keys")
    routing_key = routing_keys[0] if isinstance(routing_keys, list) and routing_keys else None
    at = first.get("time")
    when = at.astimezone(UTC).isoformat() if isinstance(at, datetime) else _text(headers.get(DEAD_LETTERED_AT_HEADER))
    return DeadLetter(
        id=message.message_id,
        # The broker's x-death, or what the runtime wrote on a redacted copy it made.
        exchange=_text(
            headers.get("x-first-death-exchange") or first.get("exchange") or headers.get(ORIGINAL_EXCHANGE_HEADER)
        ),
        routing_key=_text(routing_key or headers.get(ORIGINAL_ROUTING_KEY_HEADER)),
        reason=_reason(headers, first),
        dead_lettered_at=when,
        headers=_redacted(headers),
        body=(redact_body(message.body, secrets_of(queue))[:BODY_LIMIT]).decode("utf-8", errors="replace"),
    )


def _reason(headers: dict[str, Any], first: dict[str, Any]) -> str | None:
    """The broker's reason; `rejected` is the runtime refusing bad input (logged with the
    message id and its own reason), `delivery_limit` a handler that kept failing."""
    own = headers.get(DEAD_LETTER_REASON_HEADER)  # the runtime's redacted copy
    if own is not None:
        return f"{_text(own)} (redacted)"
    reason = _text(headers.get("x-first-death-reason") or first.get("reason"))
    if reason == "rejected" and headers.get("agora-retries"):
        return f"rejected (gave up after {headers['agora-retries']} retries)"
    return reason


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes | bytearray) else str(value)


def _redacted(value: Any, key: str = "") -> Any:
    if key.lower() in SECRET_HEADERS:
        return REDACTED
    if isinstance(value, dict):
        return {str(k): _redacted(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes | bytearray):
        return value.decode(errors="replace")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _replay_copy(message: AbstractIncomingMessage) -> aio_pika.Message:
    # x-death, x-first-death-*, x-delivery-count describe the last trip; a fresh one starts.
    # So do the runtime's notes on a redacted copy (reason, original exchange and key).
    dropped = (
        "x-",
        DEAD_LETTER_REASON_HEADER,
        DEAD_LETTERED_AT_HEADER,
        ORIGINAL_EXCHANGE_HEADER,
        ORIGINAL_ROUTING_KEY_HEADER,
    )
    headers: HeadersType = {k: v for k, v in (message.headers or {}).items() if not k.startswith(dropped)}
    headers[REPLAYS_HEADER] = int(str(headers.get(REPLAYS_HEADER) or 0)) + 1
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=message.priority,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )
