"""Fixtures for tests that need the real stack. Unit tests use none of these."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.tables import SCHEMAS
from tests import support


@dataclass
class Stack:
    env: dict[str, str]
    edge: support.Process
    users: support.Process

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{support.HTTP_PORT}"


def _reset_database(env: dict[str, str]) -> None:
    import asyncio

    async def drop() -> None:
        if support.SLOT:
            await _create_database(env["AGORA_DATABASE_URL"])
        engine = create_async_engine(env["AGORA_DATABASE_URL"])
        async with engine.begin() as conn:
            for schema in SCHEMAS:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await conn.execute(text("DROP TABLE IF EXISTS public.alembic_version"))
        await engine.dispose()

    asyncio.run(drop())
    subprocess.run([str(support.ROOT / ".venv/bin/agora"), "db", "upgrade"], env=env, check=True, cwd=support.ROOT)


async def _create_database(url: str) -> None:
    """A slot's own database (scripts/test creates only agora_test)."""
    base, name = url.rsplit("/", 1)
    engine = create_async_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        if not await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    env = support.test_env()
    _reset_database(env)
    support.reset_vhost()
    users = support.worker("users", env).start()
    edge = support.edge(env).start()
    yield Stack(env=env, edge=edge, users=users)
    edge.stop()
    users.stop()


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


def new_user(**overrides: Any) -> dict[str, Any]:
    """A registration body with a unique email and username."""
    tag = uuid.uuid4().hex[:10]
    return {
        "email": f"user-{tag}@example.com",
        "username": f"user_{tag}",
        "password": "correct horse battery",
        **overrides,
    }


async def register(http: aiohttp.ClientSession, **overrides: Any) -> dict[str, Any]:
    body = new_user(**overrides)
    async with http.post("/api/users/register", json=body) as resp:
        assert resp.status == 201, await resp.text()
        return {**(await resp.json()), "password": body["password"]}


async def login(http: aiohttp.ClientSession, email: str, password: str) -> dict[str, Any]:
    async with http.post("/api/users/login", json={"email": email, "password": password}) as resp:
        assert resp.status == 200, await resp.text()
        result: dict[str, Any] = await resp.json()
        return result
