"""The message document (AsyncAPI 3.0), generated from the contracts.

Workers consume raw deliveries (they validate bodies themselves, to dead-letter bad
input), so FastStream cannot see payload types; the contracts registry can, and is
the single source for this document.
"""

from __future__ import annotations

from typing import Any

from contracts.base import Contract
from contracts.envelope import AUTHORIZATION, CAUSATION_ID, CORRELATION_ID, MESSAGE_ID, OCCURRED_AT
from contracts.errors import Reply
from contracts.registry import COMMANDS, EVENTS
from contracts.topology import COMMANDS_EXCHANGE, DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE, CommandSpec, EventSpec

_REF = "#/components/schemas/{model}"


def _schema(model: type[Contract], schemas: dict[str, Any]) -> dict[str, str]:
    """A reference to `model`'s schema, added (with the models it uses) to `schemas`.

    Schemas are named by class name alone. Two different models of one name (a new
    version's `PlaceOrder` in another module beside the old one) would share one entry,
    and the document would describe one of the versions with the other's schema: refused.
    """
    doc = model.model_json_schema(ref_template=_REF)
    for name, schema in (*doc.pop("$defs", {}).items(), (model.__name__, doc)):
        if schemas.setdefault(name, schema) != schema:
            raise ValueError(f"two different contract models are named {name!r}: give one of them another name")
    return {"$ref": _REF.format(model=model.__name__)}


def asyncapi_document() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    headers = {
        "type": "object",
        "required": [MESSAGE_ID],
        "properties": {
            MESSAGE_ID: {
                "type": "string",
                "format": "uuid",
                "description": "Deduplication key (or the AMQP message_id property).",
            },
            CORRELATION_ID: {"type": "string", "description": "The originating request id, carried through the chain."},
            CAUSATION_ID: {"type": "string", "description": "message_id of the message that caused this one."},
            OCCURRED_AT: {"type": "string", "format": "date-time"},
            AUTHORIZATION: {"type": "string", "description": "`Bearer <access token>` of the actor (commands)."},
        },
    }

    def message(spec: CommandSpec | EventSpec) -> None:
        messages[spec.routing_key] = {
            "name": spec.routing_key,
            "title": spec.payload.__name__,
            "summary": spec.summary,
            "contentType": "application/json",
            "headers": headers,
            "payload": _schema(spec.payload, schemas),
        }

    def channel(spec: CommandSpec | EventSpec, exchange: str, description: str) -> None:
        name = spec.routing_key
        channels[name] = {
            "address": name,
            "description": description,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {
                "amqp": {"is": "routingKey", "exchange": {"name": exchange, "type": "topic", "durable": True}}
            },
        }

    for spec in COMMANDS:
        name = spec.routing_key
        message(spec)
        channel(
            spec,
            COMMANDS_EXCHANGE,
            f"{spec.kind.capitalize()} on exchange `{COMMANDS_EXCHANGE}`, consumed from quorum queue "
            f"`{spec.queue}` (dead letters: `{spec.queue}.dlq` via `{DEAD_LETTER_EXCHANGE}`)."
            + (" Requires an actor token in `authorization`." if spec.requires_actor else ""),
        )
        operation: dict[str, Any] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": spec.summary,
        }
        if spec.reply is not None:
            reply_name = f"{name}.reply"
            messages[reply_name] = {
                "name": reply_name,
                "title": f"Reply[{spec.reply.__name__}]",
                "contentType": "application/json",
                "payload": {
                    "allOf": [_schema(Reply, schemas)],
                    "description": f"`data` is a {spec.reply.__name__} when `ok` is true.",
                },
            }
            _schema(spec.reply, schemas)
            operation["reply"] = {
                "address": {"location": "$message.header#/reply_to"},
                "messages": [{"$ref": f"#/components/messages/{reply_name}"}],
            }
        operations[f"handle.{name}"] = operation
    for event in EVENTS:
        message(event)
        channel(event, EVENTS_EXCHANGE, f"Event on exchange `{EVENTS_EXCHANGE}` (topic).")
        operations[f"publish.{event.routing_key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{event.routing_key}"},
            "summary": event.summary,
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Agora messages",
            "version": "1",
            "description": "Commands, replies and events on RabbitMQ (queues and dead letters: docs/operations.md).",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
