"""Following events on a queue of one's own: the edge's cache invalidation and every token
verifier's revocations (kernel/revocations.py) read `agora.events` this way.

The queue is exclusive and unnamed: it lives as long as the connection, every process
gets each event once, and none of them keeps a queue behind when it goes. aio-pika's
robust connection re-declares, re-binds and re-consumes it after a reconnection; what
was published while it was away is lost, which is why its users reload what they keep.

The robust connection keeps its channels in a WeakSet: a channel nobody else holds can be
collected, and then it is silently not restored after a reconnection. `Following` holds
the channel and the queue for as long as it is kept (a worker once stopped hearing token
revocations after a broker restart this way).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel, AbstractRobustConnection

from contracts.topology import EVENTS_EXCHANGE

log = logging.getLogger("agora.events")
T = TypeVar("T")


@dataclass(frozen=True)
class Following:
    """A connection following events, with the channel and queue it restores (keep it)."""

    connection: AbstractRobustConnection
    channel: AbstractRobustChannel
    queue: AbstractQueue

    async def close(self) -> None:
        await self.connection.close()


async def follow(
    url: str,
    routing_keys: Iterable[str],
    on_message: Callable[[AbstractIncomingMessage], Awaitable[Any]],
    *,
    no_ack: bool,
) -> Following:
    """Connect, bind a queue of this process's own to these events, consume it."""
    connection = await aio_pika.connect_robust(url, reconnect_interval=1)
    try:
        channel = await connection.channel()
        assert isinstance(channel, AbstractRobustChannel)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for key in routing_keys:
            await queue.bind(EVENTS_EXCHANGE, key)
        await queue.consume(on_message, no_ack=no_ack)
    except BaseException:
        await connection.close()
        raise
    return Following(connection, channel, queue)


async def until_done(label: str, start: Callable[[], Awaitable[T]]) -> T:
    """Try `start` every second until it works (the broker may come up after us)."""
    while True:
        try:
            return await start()
        except Exception:
            log.warning("%s not listening yet; retrying", label, exc_info=True)
            await asyncio.sleep(1)
