"""Crashes and outages lose nothing: the outbox outlives workers and broker restarts."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid

import aiohttp
import pytest
from aio_pika.abc import AbstractQueue
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from harness import backing_services, processes
from harness.accounts import new_user, register
from harness.stack import Stack
from tests.reliability.conftest import drain

pytestmark = pytest.mark.slow


async def _event_user_ids(queue: AbstractQueue, expect: int, within: float = 60) -> set[str]:
    """The users of the events that arrive, until `expect` different ones did or the time
    is up. Delivery is at least once: around a broker restart an event may come twice (a
    publish whose confirm was lost is sent again), and a second copy must not stand in
    for an event still on its way."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    seen: set[str] = set()
    while len(seen) < expect and loop.time() < deadline:
        for message in await drain(queue, expect=expect - len(seen), within=deadline - loop.time()):
            seen.add(json.loads(message.body)["user_id"])
    return seen


async def test_worker_killed_between_commit_and_publish_still_publishes(
    stack: Stack, http: aiohttp.ClientSession, db: AsyncEngine, registered_events: AbstractQueue
) -> None:
    # A worker without its relay commits and replies but never publishes: killing it
    # then is exactly "crashed after the commit, before the publish".
    stack.users.stop()
    no_relay = processes.worker("users", stack.env).start(extra_env={"AGORA_OUTBOX_RELAY": "false"})
    try:
        user = await register(http)
        async with db.connect() as conn:
            sent_at = (
                await conn.execute(
                    text("SELECT sent_at FROM users.outbox WHERE body->>'user_id' = :id"), {"id": user["user_id"]}
                )
            ).scalar_one()
        assert sent_at is None
        no_relay.kill()
        assert await _event_user_ids(registered_events, expect=1, within=2) == set()  # nothing went out
    finally:
        no_relay.kill()
        stack.users.start()
    assert user["user_id"] in await _event_user_ids(registered_events, expect=1)


async def test_the_relay_is_woken_by_notify_not_only_by_polling(
    stack: Stack, http: aiohttp.ClientSession, registered_events: AbstractQueue
) -> None:
    stack.users.stop()
    slow_poll = processes.worker("users", stack.env).start(extra_env={"AGORA_OUTBOX_POLL_SECONDS": "60"})
    try:
        await asyncio.sleep(1)  # past the relay's first (start-up) batch
        started = time.monotonic()
        user = await register(http)
        assert user["user_id"] in await _event_user_ids(registered_events, expect=1, within=5)
        assert time.monotonic() - started < 5  # a poll would have taken a minute
    finally:
        slow_poll.stop()
        stack.users.start()


async def test_a_row_the_broker_refuses_does_not_block_the_rows_behind_it(
    http: aiohttp.ClientSession, db: AsyncEngine, registered_events: AbstractQueue
) -> None:
    # A command nobody consumes is returned by the broker (mandatory publish): the
    # relay must set it aside and keep publishing what comes after it.
    poison = uuid.uuid4()
    async with db.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO users.outbox (message_id, exchange, routing_key, headers, body) "
                "VALUES (:id, 'agora.commands', 'nobody.listens_here.v1', :headers, '{}')"
            ),
            {"id": poison, "headers": json.dumps({"message_id": str(poison), "correlation_id": "poison"})},
        )
    user = await register(http)
    assert user["user_id"] in await _event_user_ids(registered_events, expect=1, within=10)
    # The relay sweeps rows left unpublished by polling (no NOTIFY since issue 14): give
    # it the time of a sweep to try the poison row.
    for _ in range(50):
        async with db.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT attempts, sent_at, next_attempt_at > now() AS waiting"
                        " FROM users.outbox WHERE message_id = :id"
                    ),
                    {"id": poison},
                )
            ).one()
        if row.attempts:
            break
        await asyncio.sleep(0.1)
    assert row.attempts >= 1 and row.sent_at is None and row.waiting


async def test_broker_restart_during_a_burst_loses_no_outbox_message(
    stack: Stack, http: aiohttp.ClientSession, db: AsyncEngine, registered_events: AbstractQueue
) -> None:
    marker = uuid.uuid4().hex[:8]

    async def one(i: int) -> int:
        body = new_user(email=f"burst-{marker}-{i}@example.com")
        try:
            async with http.post("/api/users/register", json=body, timeout=aiohttp.ClientTimeout(total=30)) as resp:
                return resp.status
        except (aiohttp.ClientError, TimeoutError):
            return 0

    async def burst() -> list[int]:
        results = []
        for wave in range(6):
            results += await asyncio.gather(*(one(wave * 10 + i) for i in range(10)))
            await asyncio.sleep(0.3)
        return results

    async def restart_broker() -> None:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(backing_services.rabbitmqctl, "stop_app")
        await asyncio.sleep(2)
        await asyncio.to_thread(backing_services.rabbitmqctl, "start_app")
        await asyncio.to_thread(backing_services.rabbitmqctl, "await_startup")

    statuses, _ = await asyncio.gather(burst(), restart_broker())
    assert statuses.count(201) > 0  # some got through before or after the outage
    # Edge and worker reconnected by themselves: a registration works again.
    for _ in range(60):
        if await one(999) == 201:
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError("no registration succeeded after the broker came back")
    # Every registration that committed must reach the events exchange exactly as
    # recorded: the outbox row is marked sent and a consumer sees the event.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        async with db.connect() as conn:
            committed = {
                str(r[0])
                for r in await conn.execute(
                    text("SELECT user_id FROM users.users WHERE email LIKE :p"), {"p": f"burst-{marker}-%"}
                )
            }
            unsent = (
                await conn.execute(
                    text("SELECT count(*) FROM users.outbox WHERE sent_at IS NULL AND body->>'email' LIKE :p"),
                    {"p": f"burst-{marker}-%"},
                )
            ).scalar_one()
        if unsent == 0:
            break
        await asyncio.sleep(0.5)
    assert unsent == 0
    assert len(committed) >= statuses.count(201)
    seen = await _event_user_ids(registered_events, expect=len(committed), within=60)
    assert committed <= seen


async def test_sigterm_shuts_a_worker_down_cleanly(stack: Stack, http: aiohttp.ClientSession) -> None:
    # Stop it while it is busy: in-flight handlers finish, the rest go back to the queue.
    log_size = stack.users.log_path.stat().st_size
    pending = [asyncio.create_task(register(http)) for _ in range(40)]
    await asyncio.sleep(0.2)
    started = time.monotonic()
    code = stack.users.stop()
    # uvicorn re-raises the signal after its graceful shutdown, so -SIGTERM is clean too.
    assert code in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 20
    assert "shut down gracefully" in stack.users.log_path.read_text()[log_size:]
    stack.users.start()
    # Nothing was lost: what was in flight finished before the exit, what was still
    # queued (or prefetched and handed back) is served by the restarted worker.
    users = await asyncio.wait_for(asyncio.gather(*pending), timeout=30)
    assert len({u["user_id"] for u in users}) == 40


async def test_a_database_outage_delays_commands_but_loses_none(
    stack: Stack, http: aiohttp.ClientSession, registered_events: AbstractQueue
) -> None:
    await asyncio.to_thread(backing_services.run, "_agora_stop_postgres")
    bodies = [new_user() for _ in range(5)]
    try:
        sent = [
            asyncio.create_task(http.post("/api/users/register", json=b, timeout=aiohttp.ClientTimeout(total=30)))
            for b in bodies
        ]
        await asyncio.sleep(3)  # the worker takes them, fails, and requeues them with backoff
    finally:
        await asyncio.to_thread(backing_services.run, "agora_start_postgres")
    for task in sent:
        (await task).release()  # 201 if it finished in time, 504 if not: the outcome was unknown
    # Every command completes once the database is back, and its event goes out.
    for body in bodies:
        for _ in range(60):
            async with http.post("/api/users/login", json={"email": body["email"], "password": body["password"]}) as r:
                if r.status == 200:
                    break
            await asyncio.sleep(0.5)
        assert r.status == 200, body["email"]
    assert len(await _event_user_ids(registered_events, expect=5, within=30)) == 5
