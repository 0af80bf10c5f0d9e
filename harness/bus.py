"""Talking to workers straight over RabbitMQ, as another service or a partner would: an
RPC client (`Bus`), a service token got the way a worker gets one, publishing events, and
listing a product the way the catalog announces one.

`Bus` is not the edge's `edge.bus.RpcClient`, on purpose: the tests send what the edge
never would (bodies as raw dicts, a message id of their choosing to act out a redelivery,
a command without a reply queue) and read the reply as the JSON a worker sent, on a
connection of their own with RabbitMQ's direct reply-to, as a partner does. The edge's
client takes only a contract under its spec, always makes its own message id, owns its
connection and declares the edge's kind of reply queue; bending it to the tests would
change the product's code.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiohttp
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from contracts.base import Contract
from contracts.catalog import PRODUCT_CREATED, ProductCreated
from contracts.envelope import CAUSATION_ID, Envelope
from contracts.partners import ISSUE_CLIENT_TOKEN, IssueClientToken
from contracts.topology import COMMANDS_EXCHANGE, DIRECT_REPLY_TO, EVENTS_EXCHANGE, EventSpec, broker_user
from kernel.settings import Settings
from workers.runtime.identity import service_client_id, service_client_secret, service_scope


class Bus:
    """Publish commands with a reply queue and await each reply (matched on `causation_id`,
    which workers set to the command's message id)."""

    def __init__(self, connection: AbstractRobustConnection) -> None:
        self._connection = connection
        self._channel: AbstractChannel | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._reply_queue = ""
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def __aenter__(self) -> Bus:
        self._channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await self._channel.get_exchange(COMMANDS_EXCHANGE, ensure=False)
        # Direct reply-to, as partners use: a worker answers no other queue but an edge's.
        queue = await self._channel.get_queue(DIRECT_REPLY_TO, ensure=False)
        self._reply_queue = DIRECT_REPLY_TO
        await queue.consume(self._on_reply, no_ack=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        cause = str((message.headers or {}).get(CAUSATION_ID, ""))
        future = self._waiting.pop(cause, None)
        if future is not None and not future.done():
            future.set_result(json.loads(message.body))

    async def send(
        self,
        routing_key: str,
        body: Contract | dict[str, Any],
        *,
        token: str | None = None,
        message_id: str | None = None,
        reply: bool = True,
    ) -> str:
        """Publish a command (with our reply queue unless `reply=False`); returns its message id."""
        assert self._exchange is not None
        envelope = Envelope.new(authorization=f"Bearer {token}" if token else None)
        message_id = message_id or str(envelope.message_id)
        headers: dict[str, Any] = {**envelope.to_headers(), "message_id": message_id}
        raw = body.model_dump_json() if isinstance(body, Contract) else json.dumps(body)
        await self._exchange.publish(
            aio_pika.Message(
                raw.encode(),
                message_id=message_id,
                correlation_id=envelope.correlation_id,
                reply_to=self._reply_queue if reply else None,
                headers=headers,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=routing_key,
            mandatory=True,
        )
        return message_id

    async def call(
        self,
        routing_key: str,
        body: Contract | dict[str, Any],
        *,
        token: str | None = None,
        message_id: str | None = None,
        within: float = 15,
    ) -> dict[str, Any]:
        """Send a command and return its reply (`{"ok", "data", "error"}`)."""
        message_id = message_id or str(uuid.uuid4())
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        try:
            await self.send(routing_key, body, token=token, message_id=message_id)
            return await asyncio.wait_for(future, within)
        finally:
            self._waiting.pop(message_id, None)


async def service_token(bus: Bus, env: dict[str, str], name: str = "catalog") -> str:
    """A service token of worker `name`, asked of the users service as that worker would."""
    settings = Settings(_env_file=None, service_secret=env["AGORA_SERVICE_SECRET"], **_settings_overrides(env))
    command = IssueClientToken(
        client_id=str(service_client_id(name)),
        client_secret=service_client_secret(settings.service_secret, name),
        scope=service_scope(name),
    )
    reply = await bus.call(ISSUE_CLIENT_TOKEN.routing_key, command)
    assert reply["ok"], reply
    return str(reply["data"]["access_token"])


def _settings_overrides(env: dict[str, str]) -> dict[str, Any]:
    return {"amqp_url": env["AGORA_AMQP_URL"], "database_url": env["AGORA_DATABASE_URL"]}


async def publish_event(
    connection: AbstractRobustConnection, spec: EventSpec, payload: Contract, *, message_id: str | None = None
) -> str:
    """Publish an event to `agora.events` as its service's outbox relay would (with its
    broker user as `user_id`: the tests' administrator may impersonate); the same
    `message_id` twice is what a redelivery looks like to a consumer."""
    envelope = Envelope.new()
    if message_id is not None:
        envelope = envelope.model_copy(update={"message_id": uuid.UUID(message_id)})
    channel = await connection.channel(publisher_confirms=True)
    try:
        exchange = await channel.get_exchange(EVENTS_EXCHANGE, ensure=False)
        await exchange.publish(
            aio_pika.Message(
                payload.model_dump_json().encode(),
                message_id=str(envelope.message_id),
                correlation_id=envelope.correlation_id,
                headers={**envelope.to_headers()},
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                user_id=broker_user(spec.service),
            ),
            routing_key=spec.routing_key,
        )
    finally:
        await channel.close()
    return str(envelope.message_id)


async def list_product(
    connection: AbstractRobustConnection,
    http: aiohttp.ClientSession,
    seller_id: str | uuid.UUID,
    *,
    stock: int = 0,
    within: float = 15,
) -> str:
    """A product of `seller_id` with a stock record: `catalog.product_created.v1`, as the
    catalog would emit it, then wait until the inventory service answers for it."""
    product_id = uuid.uuid4()
    event = ProductCreated(
        product_id=product_id,
        seller_id=uuid.UUID(str(seller_id)),
        name=f"product {product_id.hex[:8]}",
        category="test",
        price_minor=1999,
        currency="USD",
        initial_stock=stock,
        created_at=datetime.now(UTC),
    )
    await publish_event(connection, PRODUCT_CREATED, event)
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        async with http.get(f"/api/inventory/{product_id}") as resp:
            if resp.status == 200:
                return str(product_id)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no stock record for {product_id} after {within} s")
