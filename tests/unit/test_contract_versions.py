"""A new version of a contract beside the old one (docs/operations.md, "Rolling out a new
contract version"): `orders.place_order.v2` next to v1, as they are during a rollout: the
names, the message document and the partner scopes. Consuming both and retiring v1 are
tested on the real broker in tests/reliability/test_contract_versions.py.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from pydantic import Field

from contracts import asyncapi, orders
from contracts.partners import SCOPES, Scope, scope_allows, topic_write_pattern
from contracts.registry import COMMANDS, EVENTS
from contracts.topology import CommandSpec, EventSpec, dead_letter_queue


class PlaceOrderV2(orders.PlaceOrder):
    """v2 as this test stands it up: v1's body and one field more. A breaking change would
    do as well; what matters is that it is another model, with a name of its own."""

    gift_message: str | None = Field(default=None, max_length=200)


V1 = orders.PLACE_ORDER
V2 = replace(V1, version=2, payload=PlaceOrderV2)


def test_each_version_has_its_own_routing_key_queue_and_dead_letter_queue() -> None:
    assert (V1.routing_key, V1.queue) == ("orders.place_order.v1", "orders.place_order_v1")
    assert (V2.routing_key, V2.queue) == ("orders.place_order.v2", "orders.place_order_v2")
    assert dead_letter_queue(V2.queue) == "orders.place_order_v2.dlq"
    # Beside every contract there is today, v2 clashes with none.
    specs: tuple[CommandSpec | EventSpec, ...] = (*COMMANDS, V2, *EVENTS)
    keys = [spec.routing_key for spec in specs]
    assert len(keys) == len(set(keys))
    assert len({spec.queue for spec in (*COMMANDS, V2)}) == len(COMMANDS) + 1


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
