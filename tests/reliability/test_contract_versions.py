"""A new version of a command served beside the old one, and the old one's queue retired
(docs/operations.md, "Rolling out a new contract version"), on the real broker.

The versions are of a command of the test's own (`users.version_probe_<tag>.v1` and
`.v2`), consumed by a worker runtime in the test process, so the stack's workers are
not disturbed. tests/unit/test_contract_versions.py checks the names, the documents and
the partner scopes.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from pydantic import BaseModel, Field

from contracts.topology import DEAD_LETTER_EXCHANGE, CommandSpec, dead_letter_queue
from contracts.users import GetJwks
from harness.broker import management_api, queue_info
from harness.environment import VHOST
from harness.stack import Stack
from tests.reliability.conftest import dead_letters, publish_command, worker_runtime
from workers.runtime import broker as runtime_broker
from workers.runtime.context import HandlerContext


class ProbeV2(GetJwks):
    """v2: v1's body and one field more (v1 refuses unknown fields)."""

    gift_message: str | None = Field(default=None, max_length=200)


def _versions() -> tuple[CommandSpec, CommandSpec]:
    v1 = CommandSpec("users", f"version_probe_{uuid.uuid4().hex[:8]}", 1, GetJwks, None)
    return v1, replace(v1, version=2, payload=ProbeV2)


class _Said(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _queue_exists(name: str) -> bool:
    status = management_api("GET", f"/queues/{quote(VHOST, safe='')}/{quote(name, safe='')}")
    assert status in (200, 404), status
    return status == 200


async def _messages_in(name: str, expect: int) -> None:
    """Wait for the management API's count (it lags the broker by a few seconds)."""
    for _ in range(100):
        if queue_info(name).get("messages") == expect:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{name} holds {queue_info(name).get('messages')}, not {expect}")


async def test_one_worker_consumes_both_versions_each_from_its_own_queue(
    stack: Stack, amqp: AbstractRobustConnection
) -> None:
    v1, v2 = _versions()
    seen: list[tuple[int, str, BaseModel]] = []

    def recorder(version: int) -> Any:
        async def handle(payload: BaseModel, ctx: HandlerContext) -> None:
            seen.append((version, str(ctx.envelope.message_id), payload))

        return handle

    async with worker_runtime(stack, "users", [(v1, recorder(1)), (v2, recorder(2))]) as service:
        # Both quorum queues with the same bounded redelivery, each dead-lettering to its own .dlq.
        for spec in (v1, v2):
            info = queue_info(spec.queue)
            assert info["type"] == "quorum"
            arguments: Any = info["arguments"]
            assert arguments["x-delivery-limit"] == service.settings.delivery_limit
            assert arguments["x-dead-letter-routing-key"] == spec.queue
            assert _queue_exists(dead_letter_queue(spec.queue))

        new = await publish_command(amqp, v2.routing_key, {"gift_message": "happy birthday"})
        old = await publish_command(amqp, v1.routing_key, {})
        # v1's consumer refuses v2's body: dead-lettered once, not redelivered.
        misrouted = await publish_command(amqp, v1.routing_key, {"gift_message": "to the wrong version"})
        parked = await dead_letters(amqp, dead_letter_queue(v1.queue), expect=1, ids=[misrouted])
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # nothing more comes

    assert sorted((version, message_id) for version, message_id, _ in seen) == sorted([(2, new), (1, old)])
    by_version = {version: payload for version, _, payload in seen}
    assert isinstance(by_version[2], ProbeV2) and by_version[2].gift_message == "happy birthday"
    assert type(by_version[1]) is GetJwks
    assert list(parked) == [misrouted]
    for spec in (v1, v2):
        for name in (spec.queue, dead_letter_queue(spec.queue)):
            assert management_api("DELETE", f"/queues/{quote(VHOST, safe='')}/{quote(name, safe='')}") == 204


async def test_retiring_v1_deletes_its_queues_with_what_they_hold_and_leaves_v2(
    stack: Stack, amqp: AbstractRobustConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1, v2 = _versions()

    async def nothing(payload: BaseModel, ctx: HandlerContext) -> None:
        return None

    # The release before: both versions consumed. It stops with messages left: three
    # commands in v1 (its consumer stopped), two in v1's dead-letter queue, one in v2.
    async with worker_runtime(stack, "users", [(v1, nothing), (v2, nothing)]) as service:
        await asyncio.gather(*(subscriber.stop() for subscriber in service.broker.subscribers))
        for _ in range(3):
            await publish_command(amqp, v1.routing_key, {})
        await publish_command(amqp, v2.routing_key, {})
        channel = await amqp.channel(publisher_confirms=True)
        dead_letter_exchange = await channel.get_exchange(DEAD_LETTER_EXCHANGE, ensure=False)
        for _ in range(2):
            await dead_letter_exchange.publish(aio_pika.Message(b"{}"), routing_key=v1.queue)
        await channel.close()
        await _messages_in(v1.queue, 3)
        await _messages_in(dead_letter_queue(v1.queue), 2)
        await _messages_in(v2.queue, 1)

    # The release that retires v1: it consumes v2 only and lists v1's queue as retired.
    monkeypatch.setattr(runtime_broker, "RETIRED_QUEUES", (v1.queue,))
    # A handler of the test's own: the runtime's logging set-up replaces the root's (caplog's).
    said = _Said()
    logging.getLogger("agora.broker").addHandler(said)
    try:
        # Another service's workers leave it alone.
        async with worker_runtime(stack, "orders", []):
            assert _queue_exists(v1.queue) and _queue_exists(dead_letter_queue(v1.queue))
        # Its own service's workers delete it at start, with what it held.
        async with worker_runtime(stack, "users", [(v2, nothing)]):
            assert not _queue_exists(v1.queue) and not _queue_exists(dead_letter_queue(v1.queue))
        # A replica starting later finds nothing to lose, and says nothing.
        async with worker_runtime(stack, "users", [(v2, nothing)]):
            assert not _queue_exists(v1.queue)
    finally:
        logging.getLogger("agora.broker").removeHandler(said)

    # v2 is untouched. What was lost is said, with its count.
    assert queue_info(v2.queue)["messages"] == 1
    assert [(vars(r)["queue"], vars(r)["messages"]) for r in said.records] == [
        (v1.queue, 3),
        (dead_letter_queue(v1.queue), 2),
    ]
    for name in (v2.queue, dead_letter_queue(v2.queue)):
        assert management_api("DELETE", f"/queues/{quote(VHOST, safe='')}/{quote(name, safe='')}") == 204
