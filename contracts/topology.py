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


def queue_name(service: str, handler: str) -> str:
    return f"{service}.{handler}"


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.dlq"
