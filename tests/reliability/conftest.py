from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Collection, Iterable
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from contracts.topology import COMMANDS_EXCHANGE, DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE, CommandSpec
from contracts.users import REGISTER_USER
from harness.accounts import new_user
from harness.stack import Stack
from kernel.settings import Settings
from workers.runtime.service import Handler, WorkerService


@asynccontextmanager
async def worker_runtime(
    stack: Stack, service_name: str, commands: Iterable[tuple[CommandSpec, Handler]], *, database: bool = True
) -> AsyncIterator[WorkerService]:
    """A worker runtime in the test process, with the stack's settings, consuming only
    the given commands (of the test's own): its queues declared, its consumers started,
    no outbox relay (it would publish the stack's outbox). `database=False`: the commands
    are queries that read no table."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in stack.env.items():
            env.setenv(key, value)
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
    service = WorkerService(service_name, settings=settings)
    for spec, handler in commands:
        service.command(spec, handler, database=database)
    await service._on_startup()
    await service.broker.start()
    try:
        yield service
    finally:
        await asyncio.gather(*(subscriber.stop() for subscriber in service.broker.subscribers))
        await service._revocation_feed.stop()
        await service.broker.stop()
        await service.close_database()


async def publish_command(
    amqp: AbstractRobustConnection,
    routing_key: str,
    body: bytes | dict[str, Any],
    *,
    message_id: str | None = None,
    headers: dict[str, Any] | None = None,
) -> str:
    """Publish straight to the commands exchange, as a partner system would."""
    message_id = message_id or str(uuid.uuid4())
    channel = await amqp.channel()
    exchange = await channel.get_exchange(COMMANDS_EXCHANGE, ensure=False)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    await exchange.publish(
        aio_pika.Message(
            raw,
            message_id=message_id,
            headers=headers or {},
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        ),
        routing_key=routing_key,
        mandatory=True,
    )
    await channel.close()
    return message_id


async def park_a_registration(amqp: AbstractRobustConnection) -> tuple[dict[str, Any], str]:
    """A valid `users.register_user.v1` put straight into its dead-letter queue, as a
    handler bug that kept failing would leave it; its body and message id."""
    body = new_user()
    message_id = str(uuid.uuid4())
    channel = await amqp.channel(publisher_confirms=True)
    dlx = await channel.get_exchange(DEAD_LETTER_EXCHANGE, ensure=False)
    await dlx.publish(
        aio_pika.Message(
            json.dumps(body).encode(),
            message_id=message_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        ),
        routing_key=REGISTER_USER.queue,
    )
    await channel.close()
    return body, message_id


async def drain(queue: AbstractQueue, *, expect: int, within: float = 15) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Collect messages from a queue until `expect` arrived or the time is up."""
    got: list[aio_pika.abc.AbstractIncomingMessage] = []
    deadline = asyncio.get_running_loop().time() + within
    while len(got) < expect and asyncio.get_running_loop().time() < deadline:
        try:
            msg = await queue.get(fail=False, no_ack=True)
        except CONNECTION_EXCEPTIONS:  # our own connection is reconnecting after a broker restart
            msg = None
        if msg is None:
            await asyncio.sleep(0.1)
        else:
            got.append(msg)
    return got


async def dead_letters(
    amqp: AbstractRobustConnection, name: str, *, expect: int, ids: Collection[str | None] | None = None
) -> dict[str | None, bytes]:
    """Dead letters by message id (the id a bare AMQP client left out is None). With `ids`,
    those only: another test may have left one there (a command whose token was revoked
    between the edge's check and the worker's is dead-lettered, rightly)."""
    channel = await amqp.channel()
    queue = await channel.declare_queue(name, passive=True)
    found: dict[str | None, bytes] = {}
    deadline = asyncio.get_running_loop().time() + 15
    while len(found) < expect and asyncio.get_running_loop().time() < deadline:
        for message in await drain(queue, expect=1, within=1):
            if ids is None or message.message_id in ids:
                found[message.message_id] = message.body
    await channel.close()
    return found


@pytest.fixture
async def registered_events(amqp: AbstractRobustConnection) -> AsyncIterator[AbstractQueue]:
    """A durable queue that sees every users.user_registered.v1 event from now on."""
    channel = await amqp.channel()
    queue = await channel.declare_queue(
        f"test.user_registered.{uuid.uuid4().hex[:8]}", durable=True, arguments={"x-queue-type": "quorum"}
    )
    await queue.bind(EVENTS_EXCHANGE, "users.user_registered.v1")
    yield queue
    await queue.delete(if_unused=False, if_empty=False)
    await channel.close()
