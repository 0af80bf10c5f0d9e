"""A failure is retried only if a retry can help (workers/runtime/failures.py, issue 13).

Before: every exception a handler raised was redelivered up to the delivery limit, about
20 times over minutes, holding a consumer slot all along; a PostgreSQL error caused by
the message itself ("tsquery stack too small", a numeric overflow) failed every time.
The classification is checked on real PostgreSQL errors, and the runtime's handling on
real deliveries through a worker runtime run in the test process.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from contracts.topology import DEAD_LETTER_REASON_HEADER, CommandSpec, dead_letter_queue
from contracts.users import GetJwks
from harness.stack import Stack
from tests.reliability.conftest import drain, publish_command, worker_runtime
from workers.runtime.context import HandlerContext
from workers.runtime.failures import classify
from workers.runtime.service import WorkerService


async def _raised(db: AsyncEngine, *statements: str) -> BaseException:
    try:
        async with db.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    except Exception as exc:
        return exc
    raise AssertionError("no error")


async def test_postgresql_errors_caused_by_the_input_are_permanent(db: AsyncEngine) -> None:
    cases = {
        "SELECT 1 / 0": "database_22012",
        "SELECT 'x'::int": "database_22P02",
        "SELECT * FROM no_such_table": "database_42P01",
    }
    for statement, reason in cases.items():
        failure = classify(await _raised(db, statement))
        assert (failure.kind, failure.reason) == ("permanent", reason), statement
    duplicate = await _raised(
        db, "CREATE TEMP TABLE t (k int PRIMARY KEY)", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)"
    )
    assert classify(duplicate).reply.code == "conflict"


async def test_waiting_on_a_lock_or_a_lost_connection_is_transient(db: AsyncEngine) -> None:
    async with db.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS public.failures_lock (k int)"))
    try:
        async with db.connect() as holder, holder.begin():
            await holder.execute(text("LOCK TABLE public.failures_lock IN ACCESS EXCLUSIVE MODE"))
            waited = await _raised(db, "SET LOCAL lock_timeout = '50ms'", "SELECT * FROM public.failures_lock")
    finally:
        async with db.begin() as conn:
            await conn.execute(text("DROP TABLE public.failures_lock"))
    assert classify(waited).kind == "transient"
    nowhere = create_async_engine("postgresql+asyncpg://agora:agora@127.0.0.1:1/none")
    try:
        assert classify(await _raised(nowhere, "SELECT 1")).kind == "transient"
    finally:
        await nowhere.dispose()
    # No address takes the session asked for (during a failover: only a standby answers,
    # and it is not promoted yet). Here the one server is a primary and a standby is asked for.
    wrong_kind = create_async_engine(db.url.update_query_dict({"target_session_attrs": "standby"}))
    try:
        assert classify(await _raised(wrong_kind, "SELECT 1")).kind == "transient"
    finally:
        await wrong_kind.dispose()


def test_a_validation_error_is_permanent_and_a_bug_is_unexpected_with_a_stable_cause() -> None:
    try:
        GetJwks.model_validate({"unknown": 1})
    except ValidationError as exc:
        assert classify(exc).kind == "permanent"
    first, again = classify(KeyError("price")), classify(KeyError("price"))
    assert first.kind == "unexpected" and first.fingerprint == again.fingerprint
    assert classify(KeyError("name")).fingerprint != first.fingerprint


@pytest.fixture
async def runtime(stack: Stack) -> AsyncIterator[tuple[WorkerService, dict[str, list[str]]]]:
    """A worker runtime with two commands of its own: one whose handler always hits a bug,
    one whose handler always makes PostgreSQL fail on its input."""
    calls: dict[str, list[str]] = {"bug": [], "data": []}

    async def bug(command: Any, ctx: HandlerContext) -> None:
        calls["bug"].append(str(ctx.envelope.message_id))
        raise RuntimeError("a bug: the same every time")

    async def data(command: Any, ctx: HandlerContext) -> None:
        calls["data"].append(str(ctx.envelope.message_id))
        await ctx.session.execute(text("SELECT 1 / 0"))

    async with worker_runtime(stack, "users", [(BUG, bug), (DATA, data)]) as service:
        yield service, calls


BUG = CommandSpec("users", f"failure_test_bug_{uuid.uuid4().hex[:6]}", 1, GetJwks, None)
DATA = CommandSpec("users", f"failure_test_data_{uuid.uuid4().hex[:6]}", 1, GetJwks, None)


async def _dead_letter(amqp: AbstractRobustConnection, spec: CommandSpec) -> aio_pika.abc.AbstractIncomingMessage:
    channel = await amqp.channel()
    queue = await channel.declare_queue(dead_letter_queue(spec.queue), passive=True)
    [message] = await drain(queue, expect=1, within=20)
    await channel.close()
    return message


async def test_a_bug_is_tried_twice_and_an_input_the_database_refuses_once(
    runtime: tuple[WorkerService, dict[str, list[str]]], amqp: AbstractRobustConnection
) -> None:
    _, calls = runtime
    bug_id = await publish_command(amqp, BUG.routing_key, {})
    data_id = await publish_command(amqp, DATA.routing_key, {})
    bugged, refused = await asyncio.gather(_dead_letter(amqp, BUG), _dead_letter(amqp, DATA))
    assert (bugged.message_id, refused.message_id) == (bug_id, data_id)
    await asyncio.sleep(2)  # a third try would have come by now
    assert calls["bug"] == [bug_id, bug_id]  # once more, a second later, then given up
    assert calls["data"] == [data_id]  # never retried
    assert bugged.headers.get(DEAD_LETTER_REASON_HEADER) in (None, "repeated_failure")
