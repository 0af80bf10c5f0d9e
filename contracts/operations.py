"""The operators' HTTP shapes that no service answers: the dead-letter tools.

The edge answers these itself from RabbitMQ (edge/dead_letters.py); no message on the
bus carries them, so they are not in contracts/registry.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from contracts.base import Contract
from contracts.orders import DaySales

# Ids a body can hold in full within AGORA_MAX_BODY_BYTES (64 KiB): 100 of 128 characters.
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class DeadLetterQueueView(Contract):
    queue: str = Field(description="The dead-letter queue, `<work queue>.dlq`")
    source: str = Field(description="The work queue its messages were dead-lettered from")
    messages: int = Field(description="Messages in it (RabbitMQ's count; lags a few seconds)")


class DeadLetterQueues(Contract):
    queues: tuple[DeadLetterQueueView, ...]


class DeadLetterView(Contract):
    id: str | None = Field(description="The message id (null for a message published without one)")
    exchange: str | None = Field(description="The exchange it was first published to")
    routing_key: str | None = Field(description="The routing key it was first published with")
    reason: str | None = Field(
        description="Why it was dead-lettered: `rejected` (bad input, refused at once; the worker's log line "
        "with this message id says which check), `delivery_limit` (kept failing), `expired`, ..."
    )
    dead_lettered_at: datetime | None
    headers: dict[str, Any] = Field(description="Its headers; `authorization` values are redacted")
    body: str = Field(description="The body as text (invalid UTF-8 replaced), at most 10 KB")


class DeadLetterList(Contract):
    queue: str
    messages: tuple[DeadLetterView, ...]


class DeadLetterQuery(Contract):
    """The query string of `GET /api/admin/dead-letters/{queue}`."""

    limit: int = Field(default=20, ge=1, le=500)


class DeadLetterQueuePath(Contract):
    queue: str = Field(description="A dead-letter queue's name, ending in `.dlq`")


class DeadLetterSelection(Contract):
    ids: tuple[MessageId, ...] | None = Field(
        default=None, max_length=100, description="Message ids; all messages of the queue when left out"
    )


class Replayed(Contract):
    replayed: int


class Discarded(Contract):
    discarded: int


class QueueDepthView(Contract):
    queue: str
    messages: int = Field(description="Ready and unacknowledged (RabbitMQ's count; lags a few seconds)")
    consumers: int
    publish_rate: float = Field(default=0.0, description="Messages per second published to it, lately")
    deliver_rate: float = Field(default=0.0, description="Messages per second delivered from it, lately")


class AdminOverview(Contract):
    currency: str
    days: tuple[DaySales, ...] = Field(description="Oldest first, up to today (UTC)")
    queues: tuple[QueueDepthView, ...] = Field(
        description="Agora's work queues (those with a `.dlq`) and their dead-letter queues, by name; empty when "
        "the management API did not answer"
    )
