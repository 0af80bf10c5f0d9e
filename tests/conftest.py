"""Fixtures for tests that need the real stack (started by harness/). Unit tests use none of these."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from harness import processes
from harness.accounts import create_admin, login
from harness.bus import Bus
from harness.environment import test_env
from harness.stack import Stack, started_stack


@pytest.fixture(scope="session")
def sms_sandbox() -> Iterator[processes.Process]:
    """The suite's Twilio stand-in, on its own for tests that need nothing else."""
    sandbox = processes.sms_sandbox(test_env())
    with processes.running([sandbox]):
        yield sandbox


@pytest.fixture(scope="session")
def stack(sms_sandbox: processes.Process) -> Iterator[Stack]:
    with started_stack(sms_sandbox) as started:
        yield started


@pytest.fixture(scope="session")
async def http(stack: Stack) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(stack.base_url) as session:
        yield session


@pytest.fixture(scope="session")
async def amqp(stack: Stack) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(stack.env["AGORA_AMQP_URL"], reconnect_interval=1)
    yield connection
    await connection.close()


@pytest.fixture(scope="session")
async def db(stack: Stack) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(stack.env["AGORA_DATABASE_URL"], pool_pre_ping=True)  # outlives a DB restart
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def admin(stack: Stack, http: aiohttp.ClientSession) -> dict[str, Any]:
    body = create_admin(stack.env)
    return await login(http, body["email"], body["password"])


@pytest.fixture(scope="module")
async def bus(amqp: aio_pika.abc.AbstractRobustConnection) -> AsyncIterator[Bus]:
    """An RPC client straight to the workers (harness/bus.py), one per test module."""
    async with Bus(amqp) as client:
        yield client
