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

from db.tables.base import SCHEMAS
from kernel.settings import SERVICES
from tests import support


@dataclass
class Stack:
    env: dict[str, str]
    edge: support.Process
    workers: dict[str, support.Process]
    payment_sandbox: support.Process | None = None
    sms_sandbox: support.Process | None = None

    @property
    def users(self) -> support.Process:
        return self.workers["users"]

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
def sms_sandbox() -> Iterator[support.Process]:
    """The suite's Twilio stand-in, on its own for tests that need nothing else."""
    sandbox = support.sms_sandbox(support.test_env())
    try:
        yield sandbox.start()
    finally:
        sandbox.stop()


@pytest.fixture(scope="session")
def stack(sms_sandbox: support.Process) -> Iterator[Stack]:
    env = support.test_env()
    _reset_database(env)
    support.reset_vhost()
    workers = {name: support.worker(name, env) for name in SERVICES}
    edge = support.edge(env)
    sandbox = support.payment_sandbox(env)
    try:
        sandbox.start()
        for worker in workers.values():
            worker.start(wait=False)
        for worker in workers.values():
            worker.wait_ready()
        edge.start()
        yield Stack(env=env, edge=edge, workers=workers, payment_sandbox=sandbox, sms_sandbox=sms_sandbox)
    finally:
        edge.stop()
        for worker in workers.values():
            worker.stop()
        sandbox.stop()


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


def agora_cli(
    env: dict[str, str], *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `agora` command line as an operator would."""
    return subprocess.run(
        [str(support.ROOT / ".venv/bin/agora"), *args],
        env={**env, **(extra_env or {})},
        cwd=support.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_admin(env: dict[str, str]) -> dict[str, Any]:
    """A new admin made the way an operator makes one: `agora users create-admin`."""
    body = new_user()
    result = agora_cli(
        env, "users", "create-admin", "--email", body["email"], extra_env={"AGORA_ADMIN_PASSWORD": body["password"]}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return body


@pytest.fixture(scope="session")
async def admin(stack: Stack, http: aiohttp.ClientSession) -> dict[str, Any]:
    body = create_admin(stack.env)
    return await login(http, body["email"], body["password"])


async def make_seller(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """A new account that an admin made a seller; logged in after the change."""
    user = await register(http)
    async with http.put(
        f"/api/users/{user['user_id']}", json={"role": "seller"}, headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 200, await resp.text()
    return await login(http, user["email"], user["password"])
