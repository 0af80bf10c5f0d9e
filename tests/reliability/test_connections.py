"""A worker keeps its database connections between units of work (`Connections`, issue 14);
one whose unit failed is dropped, and one that died while kept costs one failed attempt
(retried as a transient failure), not a stuck worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

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

    # A unit that fails is rolled back and its connection dropped, in case the failure
    # was the connection's own: the next unit has another.
    with pytest.raises(ZeroDivisionError):
        async with runtime.unit_of_work() as ctx:
            await ctx.db.execute("CREATE TEMP TABLE kept_check (k int)")
            raise ZeroDivisionError
    async with runtime.unit_of_work() as ctx:
        second = int(await ctx.db.fetchval("SELECT pg_backend_pid()"))
        assert await ctx.db.fetchval("SELECT to_regclass('pg_temp.kept_check')") is None
    assert second != first
    assert await _backend(runtime) == second  # and that one is kept

    # The server ends the kept connection (a restart, an administrator): the next unit
    # fails as a transient failure (a delivery would be retried), the one after gets a new one.
    async with db.connect() as admin:
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": second})
    with pytest.raises(Exception) as failed:
        await _backend(runtime)
    assert classify(failed.value).kind == "transient", repr(failed.value)
    assert await _backend(runtime) not in (first, second)
