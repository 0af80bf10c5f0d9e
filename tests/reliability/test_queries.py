"""A query that reads no table takes no connection (`WorkerService.command(..., database=False)`,
issue 14): the payments worker's token check asks the provider only, and the BEGIN and
COMMIT around it were its only round trips. A query that reads reads one snapshot.
Checked on real deliveries through a worker runtime run in the test process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.base import Contract
from contracts.topology import CommandSpec
from contracts.users import GetJwks
from harness.stack import Stack
from tests.reliability.conftest import worker_runtime
from workers.runtime.broker import request
from workers.runtime.context import HandlerContext
from workers.runtime.errors import DomainError
from workers.runtime.service import WorkerService


class Echo(Contract):
    seen_transaction: bool


ASK = CommandSpec("users", f"query_test_{uuid.uuid4().hex[:6]}", 1, GetJwks, Echo, kind="query")
REFUSE = CommandSpec("users", f"query_test_refuse_{uuid.uuid4().hex[:6]}", 1, GetJwks, Echo, kind="query")


def _round_trips() -> float:
    return sum(REGISTRY.get_sample_value("agora_db_round_trips_total", {"kind": k}) or 0 for k in ("begin", "end"))


@pytest.fixture
async def queries(stack: Stack) -> AsyncIterator[WorkerService]:
    async def ask(query: GetJwks, ctx: HandlerContext) -> Echo:
        return Echo(seen_transaction=ctx.transaction is not None)

    async def refuse(query: GetJwks, ctx: HandlerContext) -> Echo:
        raise DomainError("not_found", "nothing here")

    async with worker_runtime(stack, "users", [(ASK, ask), (REFUSE, refuse)], database=False) as service:
        yield service


async def test_a_query_without_the_database_is_answered_without_a_round_trip(queries: WorkerService) -> None:
    before = _round_trips()
    reply = await request(queries.broker, ASK, GetJwks(), within=10)
    assert reply.ok and reply.data == {"seen_transaction": False}
    refused = await request(queries.broker, REFUSE, GetJwks(), within=10)
    assert not refused.ok and refused.error is not None and refused.error.code == "not_found"
    assert _round_trips() == before


async def test_only_a_query_can_do_without_the_database(queries: WorkerService) -> None:
    async def handler(command: GetJwks, ctx: HandlerContext) -> None:
        return None

    command = CommandSpec("users", "query_test_command", 1, GetJwks, None)  # it would need the inbox
    with pytest.raises(ValueError, match="only a query"):
        queries.command(command, handler, database=False)


class Counts(Contract):
    first: int
    second: int


SNAPSHOT = CommandSpec("users", f"query_test_snapshot_{uuid.uuid4().hex[:6]}", 1, GetJwks, Counts, kind="query")


async def test_a_query_reads_one_snapshot(stack: Stack, db: AsyncEngine) -> None:
    """A query's statements all see the database as its first did: a commit that lands
    between two of them is not half seen (an order's view read its returns, then its
    refunds, and could show a refund refunded with its return, changed in the same
    commit, not yet)."""
    table = f"users.snapshot_probe_{uuid.uuid4().hex[:6]}"
    async with db.begin() as conn:
        await conn.execute(text(f"CREATE TABLE {table} (n int)"))
    first_read, committed = asyncio.Event(), asyncio.Event()

    async def count_twice(query: GetJwks, ctx: HandlerContext) -> Counts:
        first = await ctx.db.fetchval(f"SELECT count(*) FROM {table}")
        first_read.set()
        await committed.wait()
        return Counts(first=first, second=await ctx.db.fetchval(f"SELECT count(*) FROM {table}"))

    try:
        async with worker_runtime(stack, "users", [(SNAPSHOT, count_twice)]) as service:
            answer = asyncio.create_task(request(service.broker, SNAPSHOT, GetJwks(), within=10))
            await asyncio.wait_for(first_read.wait(), 10)
            async with db.begin() as conn:  # another transaction commits between the two reads
                await conn.execute(text(f"INSERT INTO {table} VALUES (1)"))
            committed.set()
            reply = await answer
        assert reply.ok and reply.data == {"first": 0, "second": 0}
        async with db.connect() as conn:
            assert await conn.scalar(text(f"SELECT count(*) FROM {table}")) == 1  # it did commit
    finally:
        async with db.begin() as conn:
            await conn.execute(text(f"DROP TABLE {table}"))
