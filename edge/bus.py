"""RPC over RabbitMQ: one reply queue per edge process and a future per call.

FastStream's `broker.request()` serializes concurrent requests behind one lock and
waits forever without a timeout (architecture §4), so the edge runs its own client.
A reply is matched by its `causation_id` header, which workers set to the command's
message id: the request id cannot be the key, because one HTTP request may make
several calls.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import uuid4

import aio_pika
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
    HeadersType,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, DeliveryError
from aiohttp import web
from pydantic import ValidationError

from contracts.base import Contract
from contracts.envelope import CAUSATION_ID, Envelope
from contracts.errors import ErrorReply, Reply
from contracts.topology import COMMANDS_EXCHANGE, EDGE_REPLY_QUEUE_PREFIX, CommandSpec

log = logging.getLogger("agora.edge.bus")


class RpcError(Exception):
    """A command got no reply from a service."""


class RpcTimeout(RpcError):
    """No reply in time. The command may still run: the outcome is unknown."""


class ServiceUnavailable(RpcError):
    """The command could not be handed to a worker: broker down, or no queue bound."""


class RpcClient:
    def __init__(self, amqp_url: str, *, reconnect_interval: float = 1.0, max_reconnect_interval: float = 15.0) -> None:
        self._url = amqp_url
        self._reconnect_interval = reconnect_interval
        self._max_reconnect_interval = max_reconnect_interval
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._replies: AbstractRobustQueue | None = None
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._connector: asyncio.Task[None] | None = None

    @property
    def is_connected(self) -> bool:
        return (
            self._connection is not None
            and self._connection.connected.is_set()
            and self._channel is not None
            and not self._channel.is_closed
        )

    @property
    def reply_queue(self) -> str | None:
        return self._replies.name if self._replies is not None else None

    def start(self) -> None:
        """Connect in the background, so the edge serves /healthz while the broker is down."""
        if self._connector is None:
            self._connector = asyncio.create_task(self._connect_until_done(), name="edge-bus-connect")

    async def close(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
            await asyncio.gather(self._connector, return_exceptions=True)
            self._connector = None
        self._fail_pending("the edge is shutting down")
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._channel = self._exchange = self._replies = None

    async def call(
        self,
        spec: CommandSpec,
        payload: Contract,
        *,
        correlation_id: str,
        authorization: str | None,
        # Required, not left to callers to wrap: an unbounded call is the bug §4 exists to avoid.
        timeout: float,  # noqa: ASYNC109
    ) -> Reply:
        exchange, replies = self._exchange, self._replies
        if exchange is None or replies is None or not self.is_connected:
            raise ServiceUnavailable("not connected to the message broker")
        envelope = Envelope.new(correlation_id=correlation_id, authorization=authorization)
        key = str(envelope.message_id)
        headers: HeadersType = {**envelope.to_headers()}
        message = aio_pika.Message(
            # exclude_unset: a partial update must reach the worker with exactly the
            # fields the client sent, or every absent field would read as "clear it".
            payload.model_dump_json(exclude_unset=True).encode(),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=key,
            correlation_id=correlation_id,
            reply_to=replies.name,
            headers=headers,
            content_type="application/json",
            app_id="agora-edge",
        )
        # Registered before publishing: a fast worker can answer before the confirm.
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        published = False
        try:
            async with asyncio.timeout(timeout):
                await self._publish(exchange, message, spec, confirm_within=timeout)
                published = True
                return await future
        except TimeoutError:
            raise RpcTimeout(f"no reply to {spec.routing_key} within {timeout:g}s") from None
        except ServiceUnavailable:
            if published:
                # The broker had the command: it may have run. "Outcome unknown" (504),
                # not "try again" (503), so a client does not blindly repeat it.
                raise RpcTimeout(f"lost the broker connection after sending {spec.routing_key}") from None
            raise
        finally:
            self._pending.pop(key, None)

    async def _publish(
        self, exchange: AbstractExchange, message: aio_pika.Message, spec: CommandSpec, *, confirm_within: float
    ) -> None:
        try:
            await exchange.publish(message, routing_key=spec.routing_key, mandatory=True, timeout=confirm_within)
        except TimeoutError:
            raise
        except DeliveryError as exc:
            # Returned (no queue bound: that service is not deployed) or nacked
            # (its queue is full and rejects publishes).
            log.warning("command refused by the broker", extra={"routing_key": spec.routing_key, "reason": repr(exc)})
            raise ServiceUnavailable(f"no service accepted {spec.routing_key}") from exc
        except CONNECTION_EXCEPTIONS as exc:
            raise ServiceUnavailable("lost the connection to the message broker") from exc

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        key = _header_str(message.headers.get(CAUSATION_ID))
        future = self._pending.pop(key, None) if key else None
        if future is None or future.done():
            log.debug("dropped a reply nobody waits for", extra={"causation_id": key})
            return
        try:
            future.set_result(Reply.model_validate_json(message.body))
        except ValidationError:
            log.error("malformed reply", extra={"causation_id": key})
            error = ErrorReply(code="internal", detail="the service sent a malformed reply")
            future.set_result(Reply(ok=False, error=error))

    async def _connect_until_done(self) -> None:
        delay = self._reconnect_interval
        while True:
            try:
                await self._connect()
            except CONNECTION_EXCEPTIONS as exc:
                log.warning("message broker unreachable; retrying", extra={"retry_in_s": delay, "reason": repr(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_reconnect_interval)
            else:
                log.info("connected to the message broker", extra={"reply_queue": self.reply_queue})
                return

    async def _connect(self) -> None:
        # After this first connection the robust connection reconnects by itself and
        # restores the channel, exchange, reply queue and its consumer.
        connection = await aio_pika.connect_robust(
            self._url,
            reconnect_interval=self._reconnect_interval,
            client_properties={"connection_name": "agora-edge"},
        )
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            # Not declared: the workers declare the topology, and the edge's broker user
            # may not configure exchanges (ops/broker_users.py). Until a worker has, a
            # command is unroutable: 503.
            exchange = await channel.get_exchange(COMMANDS_EXCHANGE, ensure=False)
            # A unique name rather than a server-assigned one: the robust channel
            # re-declares it under the same name after a reconnect.
            replies = await channel.declare_queue(
                f"{EDGE_REPLY_QUEUE_PREFIX}{uuid4().hex}", exclusive=True, auto_delete=True
            )
            await replies.consume(self._on_reply, no_ack=True)
        except BaseException:
            await connection.close()
            raise
        connection.close_callbacks.add(self._on_connection_lost)
        self._connection, self._channel, self._exchange, self._replies = connection, channel, exchange, replies

    def _on_connection_lost(self, _sender: Any, exc: BaseException | None = None) -> None:
        # The exclusive reply queue died with the connection: no waiting call can
        # get its answer any more, so fail them now instead of at their timeout.
        self._fail_pending("lost the connection to the message broker")

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ServiceUnavailable(reason))


def _header_str(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else None


BUS_KEY = web.AppKey("bus", RpcClient)
