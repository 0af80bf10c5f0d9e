"""A new version of a contract served beside the old one (docs/operations.md, "Rolling out
a new contract version"): `orders.place_order.v2` next to v1, as they are during a rollout.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any, cast

import pytest
from faststream.rabbit import RabbitBroker, RabbitQueue, TestRabbitBroker
from pydantic import Field

from contracts import asyncapi, orders
from contracts.partners import SCOPES, Scope, scope_allows, topic_write_pattern
from contracts.registry import COMMANDS, EVENTS
from contracts.topology import CommandSpec, EventSpec, dead_letter_queue
from kernel.settings import Settings
from workers.runtime import broker as runtime_broker
from workers.runtime.broker import commands_exchange, work_queue
from workers.runtime.context import HandlerContext


class PlaceOrderV2(orders.PlaceOrder):
    """v2 as this test stands it up: v1's body and one field more. A breaking change would
    do as well; what matters is that it is another model, with a name of its own."""

    gift_message: str | None = Field(default=None, max_length=200)


V1 = orders.PLACE_ORDER
V2 = replace(V1, version=2, payload=PlaceOrderV2)


def _settings() -> Settings:
    return Settings(_env_file=None)


def test_each_version_has_its_own_routing_key_queue_and_dead_letter_queue() -> None:
    assert (V1.routing_key, V1.queue) == ("orders.place_order.v1", "orders.place_order_v1")
    assert (V2.routing_key, V2.queue) == ("orders.place_order.v2", "orders.place_order_v2")
    assert dead_letter_queue(V2.queue) == "orders.place_order_v2.dlq"
    # Beside every contract there is today, v2 clashes with none.
    specs: tuple[CommandSpec | EventSpec, ...] = (*COMMANDS, V2, *EVENTS)
    keys = [spec.routing_key for spec in specs]
    assert len(keys) == len(set(keys))
    assert len({spec.queue for spec in (*COMMANDS, V2)}) == len(COMMANDS) + 1


async def test_one_worker_consumes_both_versions_each_from_its_own_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.runtime.service import WorkerService

    service = WorkerService("orders", settings=_settings())

    async def handler(payload: Any, ctx: HandlerContext) -> None:
        return None

    service.command(V1, handler)
    service.command(V2, handler)
    assert [(q.name, q.routing_key) for q in service._queues] == [
        ("orders.place_order_v1", "orders.place_order.v1"),
        ("orders.place_order_v2", "orders.place_order.v2"),
    ]
    # Both quorum queues with the same bounded redelivery, each dead-lettering to its own .dlq.
    for queue in service._queues:
        assert queue.arguments["x-queue-type"] == "quorum"
        assert queue.arguments["x-delivery-limit"] == service.settings.delivery_limit
        assert queue.arguments["x-dead-letter-routing-key"] == queue.name

    # Each routing key reaches its own version's subscription, and no other. (FastStream's
    # in-memory broker routes as the topic exchange would; the delivery itself is the
    # runtime's, which needs the database, so it is replaced by a recorder here.)
    seen: list[tuple[str, str]] = []

    async def consume(spec: Any, handler: Any, message: Any) -> None:
        seen.append((spec.queue, message.raw_message.routing_key))

    monkeypatch.setattr(service, "_consume", consume)
    async with TestRabbitBroker(service.broker, connect_only=False) as broker:
        for spec in (V2, V1):
            await broker.publish(b"{}", exchange=commands_exchange, routing_key=spec.routing_key)
    assert seen == [
        ("orders.place_order_v2", "orders.place_order.v2"),
        ("orders.place_order_v1", "orders.place_order.v1"),
    ]


def test_the_message_document_shows_both_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asyncapi, "COMMANDS", (*COMMANDS, V2))
    doc = asyncapi.asyncapi_document()
    for spec in (V1, V2):
        channel = doc["channels"][spec.routing_key]
        assert f"`{spec.queue}`" in channel["description"]
        assert f"`{spec.queue}.dlq`" in channel["description"]
        assert f"handle.{spec.routing_key}" in doc["operations"]
        message = doc["components"]["messages"][spec.routing_key]
        assert message["payload"] == {"$ref": f"#/components/schemas/{spec.payload.__name__}"}
        assert f"{spec.routing_key}.reply" in doc["components"]["messages"]
    schemas = doc["components"]["schemas"]
    assert "gift_message" in schemas["PlaceOrderV2"]["properties"]
    assert "gift_message" not in schemas["PlaceOrder"]["properties"]


def test_a_new_version_whose_model_reuses_the_old_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Schemas are named by class: a v2 model called `PlaceOrder` (in a module of its own)
    # would silently give v1's channel v2's schema. The document refuses to be built.
    class PlaceOrder(PlaceOrderV2):
        pass

    monkeypatch.setattr(asyncapi, "COMMANDS", (*COMMANDS, replace(V2, payload=PlaceOrder)))
    with pytest.raises(ValueError, match="named 'PlaceOrder'"):
        asyncapi.asyncapi_document()


def test_partner_scopes_name_exact_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    # Until the scope lists v2, a worker refuses v2 from a partner (`scope_denied`), and
    # the partner's topic permission (set when it was created) lets the broker refuse it.
    assert not scope_allows(["orders:write"], V2.routing_key)
    write = SCOPES["orders:write"]
    monkeypatch.setitem(SCOPES, "orders:write", Scope(write.name, write.description, (V1.routing_key, V2.routing_key)))
    assert scope_allows(["orders:write"], V2.routing_key)
    # The pattern to set on each existing partner's RabbitMQ user (docs/operations.md).
    pattern = topic_write_pattern(["orders:write"])
    assert pattern == r"^(orders\.place_order\.v1|orders\.place_order\.v2)$"
    assert all(re.fullmatch(pattern, spec.routing_key) for spec in (V1, V2))
    assert not re.fullmatch(pattern, "orders.place_order.v3")


@dataclass
class _DeclaredQueue:
    broker: _Broker
    queue: RabbitQueue
    declaration_result: SimpleNamespace

    async def delete(self, *, if_unused: bool, if_empty: bool) -> None:
        self.broker.deleted.append((self.queue.name, if_unused, if_empty))


@dataclass
class _Broker:
    """Declares and deletes, and remembers what: the calls `delete_retired_queues` makes."""

    messages: dict[str, int]
    declared: list[RabbitQueue] = field(default_factory=list)
    deleted: list[tuple[str, bool, bool]] = field(default_factory=list)

    async def declare_queue(self, queue: RabbitQueue) -> _DeclaredQueue:
        self.declared.append(queue)
        return _DeclaredQueue(self, queue, SimpleNamespace(message_count=self.messages.get(queue.name, 0)))


async def test_retiring_v1_deletes_its_queue_and_dead_letters_whatever_they_hold(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runtime_broker, "RETIRED_QUEUES", (V1.queue,))
    settings = _settings()
    broker = _Broker(messages={V1.queue: 3, dead_letter_queue(V1.queue): 2, V2.queue: 5})
    with caplog.at_level(logging.WARNING, logger="agora.broker"):
        # Another service's workers leave it alone; every orders replica deletes it at start.
        await runtime_broker.delete_retired_queues(cast(RabbitBroker, broker), "inventory", settings)
        assert broker.declared == []
        await runtime_broker.delete_retired_queues(cast(RabbitBroker, broker), "orders", settings)

    # Declared as its subscription declared it (RabbitMQ refuses other arguments), then
    # deleted even with messages in it: a retired queue must be drained first.
    work, dead = broker.declared
    assert (work.name, work.arguments, work.routing_key) == (V1.queue, work_queue(V1.queue, settings).arguments, "")
    assert (dead.name, dead.arguments["x-queue-type"]) == ("orders.place_order_v1.dlq", "quorum")
    assert broker.deleted == [(V1.queue, False, False), ("orders.place_order_v1.dlq", False, False)]
    # v2 is untouched. What was lost is said, with its count.
    assert [(vars(r)["queue"], vars(r)["messages"]) for r in caplog.records] == [
        ("orders.place_order_v1", 3),
        ("orders.place_order_v1.dlq", 2),
    ]
