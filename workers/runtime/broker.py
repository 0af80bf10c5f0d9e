"""Broker factory and queue topology (architecture §3).

Every handler gets its own durable quorum queue with bounded redelivery and a
dead-letter queue `<queue>.dlq`; every publish is persistent, confirmed and mandatory,
and a returned (unroutable) message raises instead of vanishing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import HeadersType
from faststream.rabbit import Channel, ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.schemas.queue import QuorumQueueArgs
from prometheus_client import CollectorRegistry

from contracts.base import Contract
from contracts.envelope import Envelope
from contracts.errors import Reply
from contracts.topology import (
    COMMANDS_EXCHANGE,
    DEAD_LETTER_EXCHANGE,
    DELAY_EXCHANGE,
    DELAY_HEADER,
    DELAY_TIERS,
    EVENTS_EXCHANGE,
    RETIRED_QUEUES,
    RETRY_EXCHANGE,
    UNROUTED_EXCHANGE,
    UNROUTED_QUEUE,
    CommandSpec,
    dead_letter_queue,
    delay_queue,
)
from kernel.logging import correlation_id_var
from kernel.settings import Settings

log = logging.getLogger("agora.broker")

commands_exchange = RabbitExchange(COMMANDS_EXCHANGE, type=ExchangeType.TOPIC, durable=True)
events_exchange = RabbitExchange(
    EVENTS_EXCHANGE,
    type=ExchangeType.TOPIC,
    durable=True,
    arguments={"alternate-exchange": UNROUTED_EXCHANGE},
)
dead_letter_exchange = RabbitExchange(DEAD_LETTER_EXCHANGE, type=ExchangeType.DIRECT, durable=True)
unrouted_exchange = RabbitExchange(UNROUTED_EXCHANGE, type=ExchangeType.FANOUT, durable=True)
delay_exchange = RabbitExchange(DELAY_EXCHANGE, type=ExchangeType.HEADERS, durable=True)
retry_exchange = RabbitExchange(RETRY_EXCHANGE, type=ExchangeType.DIRECT, durable=True)


def make_broker(settings: Settings, *, app_id: str, registry: CollectorRegistry | None = None) -> RabbitBroker:
    from faststream.rabbit.prometheus import RabbitPrometheusMiddleware

    middlewares = (RabbitPrometheusMiddleware(registry=registry, app_name=app_id),) if registry else ()
    return RabbitBroker(
        settings.amqp_url,
        app_id=app_id,
        graceful_timeout=settings.graceful_timeout_seconds,
        reconnect_interval=1.0,
        # Concurrency is the prefetch: without it delivery is unbounded.
        default_channel=Channel(prefetch_count=settings.prefetch, publisher_confirms=True, on_return_raises=True),
        middlewares=middlewares,
        # Our logger, so FastStream's own lines are JSON with the message ids too. Its two
        # lines per delivery ("Received", "Processed") at DEBUG: counters say as much.
        logger=logging.getLogger("faststream"),
        log_level=logging.DEBUG,
    )


def work_queue(name: str, settings: Settings, *, routing_key: str = "") -> RabbitQueue:
    arguments: QuorumQueueArgs = {
        "x-delivery-limit": settings.delivery_limit,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": name,
        # at-least-once dead-lettering needs reject-publish overflow; together they
        # make a dead letter survive a broker crash mid-transfer.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    return RabbitQueue(
        name,
        queue_type=QueueType.QUORUM,
        durable=True,
        arguments=arguments,
        routing_key=routing_key,
    )


async def delete_retired_queues(broker: RabbitBroker, service: str, settings: Settings) -> None:
    """Delete this service's RETIRED_QUEUES and their dead-letter queues, messages and all.

    Each is declared first as it was (a no-op if it exists, a new empty queue if not),
    because RabbitMQ deletes a queue only through a declared handle here. Retire a queue
    only once it and its `.dlq` are empty (docs/operations.md): what one still held is
    gone, and logged with its count."""
    for name in RETIRED_QUEUES:
        if name.startswith(f"{service}."):
            dead = RabbitQueue(dead_letter_queue(name), queue_type=QueueType.QUORUM, durable=True)
            for queue in (work_queue(name, settings), dead):
                declared = await broker.declare_queue(queue)
                held = declared.declaration_result.message_count or 0
                await declared.delete(if_unused=False, if_empty=False)
                if held:
                    log.warning(
                        "retired queue deleted with messages in it", extra={"queue": queue.name, "messages": held}
                    )


async def declare_topology(broker: RabbitBroker, queues: list[RabbitQueue]) -> None:
    """Exchanges every process relies on, the work queues, and a `.dlq` for each.

    Declarations are idempotent, so every replica of every worker runs this at start.
    A work queue declared earlier with other arguments (say another delivery limit)
    fails here, loudly, before the worker reports itself started.
    """
    for exchange in (
        dead_letter_exchange,
        unrouted_exchange,
        commands_exchange,
        events_exchange,
        delay_exchange,
        retry_exchange,
    ):
        await broker.declare_exchange(exchange)
    await _declare_delay_queues(broker)
    unrouted = await broker.declare_queue(
        RabbitQueue(
            UNROUTED_QUEUE,
            queue_type=QueueType.QUORUM,
            durable=True,
            arguments={"x-max-length": 100_000, "x-overflow": "drop-head"},
        )
    )
    await unrouted.bind(UNROUTED_EXCHANGE)
    for queue in queues:
        dlq = await broker.declare_queue(
            RabbitQueue(dead_letter_queue(queue.name), queue_type=QueueType.QUORUM, durable=True)
        )
        await dlq.bind(DEAD_LETTER_EXCHANGE, routing_key=queue.name)
        work = await broker.declare_queue(queue)
        # Where its delayed retries come back (see contracts/topology.py).
        await work.bind(RETRY_EXCHANGE, routing_key=queue.name)


async def _declare_delay_queues(broker: RabbitBroker) -> None:
    """One queue per delay tier, shared by every work queue: a message waits out the
    tier's TTL, then goes back to its work queue. A fixed TTL per queue, because
    messages expire only at a queue's head: mixed delays in one queue would wait for
    the longest ahead of them."""
    for seconds in DELAY_TIERS:
        queue = await broker.declare_queue(
            RabbitQueue(
                delay_queue(seconds),
                queue_type=QueueType.QUORUM,
                durable=True,
                arguments={
                    "x-message-ttl": seconds * 1000,
                    "x-dead-letter-exchange": RETRY_EXCHANGE,
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                },
            )
        )
        await queue.bind(DELAY_EXCHANGE, arguments={"x-match": "all", DELAY_HEADER: str(seconds)})


async def request(
    broker: RabbitBroker,
    spec: CommandSpec,
    payload: Contract,
    *,
    within: float,
    authorization: str | None = None,
) -> Reply:
    """Ask another service and wait for its reply, at most `within` seconds.

    For rare calls only (keys, tokens): FastStream serialises requests on one lock per
    broker (architecture §11). Commands between services go through the outbox instead.
    """
    envelope = Envelope.new(correlation_id=correlation_id_var.get() or None, authorization=authorization)
    headers: HeadersType = {**envelope.to_headers()}
    message = await broker.request(
        payload.model_dump_json().encode(),
        exchange=commands_exchange,
        routing_key=spec.routing_key,
        message_id=str(envelope.message_id),
        correlation_id=envelope.correlation_id,
        headers=headers,
        content_type="application/json",
        timeout=within,
    )
    return Reply.model_validate_json(message.body)


async def publish_direct(
    broker: RabbitBroker,
    exchange: RabbitExchange,
    routing_key: str,
    body: bytes,
    *,
    persist: bool,
    mandatory: bool,
    confirm_seconds: float,
    message_id: str | None = None,
    correlation_id: str | None = None,
    headers: HeadersType | None = None,
    user_id: str | None = None,
) -> None:
    """Publish with aio-pika on the broker's own confirming channel, past FastStream's
    publish path: its middlewares and message building were about 40 % of the CPU a
    publish costs (issue 14). The message carries what FastStream's would (JSON, the
    app id, a timestamp); the confirm is awaited, and a returned message raises.
    """
    target = await broker.declare_exchange(exchange)  # declared at start: a cached lookup
    message = aio_pika.Message(
        body,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT if persist else None,
        message_id=message_id,
        correlation_id=correlation_id,
        headers=headers,
        user_id=user_id,
        app_id=broker.config.app_id,
        timestamp=datetime.now(UTC),
    )
    await target.publish(message, routing_key=routing_key, mandatory=mandatory, timeout=confirm_seconds)


DEFAULT_EXCHANGE = RabbitExchange("")
