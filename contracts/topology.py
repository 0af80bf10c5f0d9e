"""Names on the broker: exchanges, routing keys, queues (architecture §3).

A `CommandSpec` or `EventSpec` ties a routing key to the pydantic model of its body
(and, for commands answered over RPC, of its reply). Both the edge and the workers
use these specs, so a name or a schema is written down exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contracts.base import Contract

COMMANDS_EXCHANGE = "agora.commands"
EVENTS_EXCHANGE = "agora.events"
DEAD_LETTER_EXCHANGE = "agora.dlx"
# Events nobody subscribes to yet land here instead of being returned to the
# publisher (the events exchange's alternate exchange): publishing an event must not
# depend on which consumers happen to be deployed.
UNROUTED_EXCHANGE = "agora.unrouted"
UNROUTED_QUEUE = "agora.unrouted"
# Queues of subscriptions that are gone, deleted (with their dead-letter queues) by their
# service's workers at start: left bound to the events exchange, they would fill up
# with copies nobody takes. The orders service's own order events fed the sales
# projection until the saga wrote it itself (issue 14; migration 0016).
RETIRED_QUEUES = ("orders.on_orders_order_confirmed_v1", "orders.on_orders_order_cancelled_v1")
# Delayed retry (RabbitMQ 3.10 has no delayed-message plugin): a message to handle again
# later goes to DELAY_EXCHANGE (headers) with its work queue's name as routing key and a
# DELAY_HEADER naming one of the DELAY_TIERS (seconds). That tier's queue holds it for its
# TTL, then dead-letters it, routing key unchanged, to RETRY_EXCHANGE (direct), where
# every work queue is bound under its own name.
DELAY_EXCHANGE = "agora.delay"
RETRY_EXCHANGE = "agora.retry"
DELAY_HEADER = "agora-delay"
RETRIES_HEADER = "agora-retries"
DELAY_TIERS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
# Where replies may go (a worker refuses any other `reply_to`): RabbitMQ's direct
# reply-to pseudo-queue, or an edge process's own exclusive reply queue.
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
EDGE_REPLY_QUEUE_PREFIX = "agora.edge.replies."
# On a dead letter the runtime wrote itself (a redacted copy, see kernel/redaction.py):
# why it was dead-lettered, and that something was redacted.
DEAD_LETTER_REASON_HEADER = "agora-dead-letter-reason"
REDACTED_HEADER = "agora-redacted"
ORIGINAL_EXCHANGE_HEADER = "agora-original-exchange"
ORIGINAL_ROUTING_KEY_HEADER = "agora-original-routing-key"
DEAD_LETTERED_AT_HEADER = "agora-dead-lettered-at"


@dataclass(frozen=True)
class CommandSpec:
    """A request to one service. `kind="query"` marks a pure read (no inbox, no outbox)."""

    service: str
    name: str
    version: int
    payload: type[Contract]
    reply: type[Contract] | None
    kind: Literal["command", "query"] = "command"
    requires_actor: bool = False
    summary: str = ""

    @property
    def routing_key(self) -> str:
        return f"{self.service}.{self.name}.v{self.version}"

    @property
    def handler(self) -> str:
        return f"{self.name}_v{self.version}"

    @property
    def queue(self) -> str:
        return queue_name(self.service, self.handler)


@dataclass(frozen=True)
class EventSpec:
    service: str
    name: str
    version: int
    payload: type[Contract]
    summary: str = ""

    @property
    def routing_key(self) -> str:
        return f"{self.service}.{self.name}.v{self.version}"


def broker_user(process: str) -> str:
    """The RabbitMQ user a process connects as (`agora-orders`, `agora-edge`): an event's
    `user_id` names it, and only its owning service's user may publish it."""
    return f"agora-{process}"


def queue_name(service: str, handler: str) -> str:
    return f"{service}.{handler}"


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.dlq"


def delay_queue(seconds: int) -> str:
    return f"agora.delay.{seconds}s"


def delay_tier(seconds: float) -> int:
    """The shortest tier that waits at least `seconds` (the longest if none does)."""
    return next((tier for tier in DELAY_TIERS if tier >= seconds), DELAY_TIERS[-1])
