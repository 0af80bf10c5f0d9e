"""A worker keeps its database connections between units of work (`Connections`, issue 14);
one whose unit failed because of the connection is dropped, and one that died while kept
costs at most one failed attempt (retried as a transient failure), not a stuck worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from harness.stack import Stack
from tests.reliability.conftest import worker_runtime
from workers.runtime.failures import classify
from workers.runtime.service import WorkerService


@pytest.fixture
async def runtime(stack: Stack) -> AsyncIterator[WorkerService]:
    async with worker_runtime(stack, "users", []) as service:
        yield service


async def _backend(service: WorkerService) -> int:
    async with service.unit_of_work() as ctx:
        return int(await ctx.db.fetchval("SELECT pg_backend_pid()"))


async def test_a_connection_is_kept_for_the_next_unit_and_a_dead_one_is_dropped(
    runtime: WorkerService, db: AsyncEngine
) -> None:
    first = await _backend(runtime)
    assert await _backend(runtime) == first  # the same connection, not a new checkout

    # A unit whose connection failed drops it (a retry must not meet it again); one that
    # failed otherwise (a refusal, a bug) keeps it.
    with pytest.raises(ZeroDivisionError):
        async with runtime.unit_of_work() as ctx:
            await ctx.db.execute("SELECT 1")
            raise ZeroDivisionError
    assert await _backend(runtime) == first
    with pytest.raises(asyncpg.InterfaceError):
        async with runtime.unit_of_work() as ctx:
            await ctx.db.execute("SELECT 1")
            raise asyncpg.InterfaceError("the connection is not what it was")
    second = await _backend(runtime)
    assert second != first
    assert await _backend(runtime) == second  # and the new one is kept

    # The server ends the kept connection (a restart, an administrator): the next unit
    # either sees it closed and takes another, or fails once as a transient failure (a
    # delivery would be retried); either way the connection after is a new one.
    async with db.connect() as admin:
        ended = await admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": second})
        assert ended.scalar_one()
    try:
        third = await _backend(runtime)
    except Exception as exc:
        assert classify(exc).kind == "transient", repr(exc)
        third = await _backend(runtime)
    assert third not in (first, second)
