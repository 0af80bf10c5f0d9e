"""The dead-letter tools (edge/dead_letters.py) through the admin API and `agora dlq`,
on messages the workers really dead-lettered."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from typing import Any

import aiohttp
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.users import GET_USER, REGISTER_USER
from harness.accounts import bearer, register
from harness.environment import ROOT
from harness.processes import agora_cli
from harness.stack import Stack
from tests.reliability.conftest import park_a_registration, publish_command

DLQ = f"{GET_USER.queue}.dlq"
FORGED = "Bearer eyJhbGciOiJFZERTQSIsImtpZCI6Im5vcGUifQ.eyJzdWIiOiJ4In0.c2ln"


async def _listed(
    http: aiohttp.ClientSession, admin: dict[str, Any], queue: str, ids: set[str]
) -> list[dict[str, Any]]:
    """The queue's messages once all of `ids` are in it (dead-lettering is asynchronous)."""
    for _ in range(100):
        async with http.get(
            f"/api/admin/dead-letters/{queue}?limit=500", headers=bearer(admin["access_token"])
        ) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        assert body["queue"] == queue
        if ids <= {m["id"] for m in body["messages"]}:
            messages: list[dict[str, Any]] = body["messages"]
            return messages
        await asyncio.sleep(0.1)
    raise AssertionError(f"{ids} never reached {queue}")


async def test_inspect_replay_and_discard_real_dead_letters(
    amqp: AbstractRobustConnection, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    user = await register(http)
    forged = await publish_command(
        amqp, GET_USER.routing_key, {"user_id": user["user_id"]}, headers={"authorization": FORGED}
    )
    anonymous = await publish_command(amqp, GET_USER.routing_key, {"user_id": user["user_id"]})
    messages = await _listed(http, admin, DLQ, {forged, anonymous})
    by_id = {m["id"]: m for m in messages}
    dead = by_id[forged]
    assert dead["exchange"] == "agora.commands"
    assert dead["routing_key"] == GET_USER.routing_key
    # It held a token: the runtime dead-lettered a redacted copy, with its own reason.
    assert dead["reason"] == "bad_actor (redacted)"
    assert by_id[anonymous]["reason"] == "rejected"  # nothing to redact: the broker's own
    assert dead["dead_lettered_at"] is not None
    assert dead["headers"]["authorization"] == "[redacted]"
    assert FORGED not in json.dumps(messages)
    assert json.loads(dead["body"]) == {"user_id": user["user_id"]}

    # Looking twice shows the same messages in the same order: nothing lost or moved.
    again = await _listed(http, admin, DLQ, {forged, anonymous})
    assert [m["id"] for m in again] == [m["id"] for m in messages]

    # Replayed, the forged command reaches its work queue again, is refused again, and
    # comes back marked as replayed.
    async with http.post(
        f"/api/admin/dead-letters/{DLQ}/replay", json={"ids": [forged]}, headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {"replayed": 1}
    for _ in range(100):
        back = {m["id"]: m for m in await _listed(http, admin, DLQ, {anonymous})}
        if forged in back:
            break
        await asyncio.sleep(0.1)
    assert back[forged]["headers"]["agora-replays"] == 1
    # Its token was already redacted: nothing left to hide, so the broker dead-letters it as it is.
    assert back[forged]["reason"] == "rejected"
    assert back[forged]["headers"]["authorization"] == "[redacted]"

    async with http.post(
        f"/api/admin/dead-letters/{DLQ}/discard", json={"ids": [anonymous]}, headers=bearer(admin["access_token"])
    ) as resp:
        assert await resp.json() == {"discarded": 1}
    left = {m["id"] for m in await _listed(http, admin, DLQ, {forged})}
    assert anonymous not in left

    # The list shows the queue with its count (the management API lags a little).
    for _ in range(60):
        async with http.get("/api/admin/dead-letters", headers=bearer(admin["access_token"])) as resp:
            queues = {q["queue"]: q for q in (await resp.json())["queues"]}
        if queues.get(DLQ, {}).get("messages") == len(left):
            break
        await asyncio.sleep(0.5)
    assert queues[DLQ] == {"queue": DLQ, "source": GET_USER.queue, "messages": len(left)}

    async with http.post(f"/api/admin/dead-letters/{DLQ}/discard", headers=bearer(admin["access_token"])) as resp:
        assert (await resp.json())["discarded"] == len(left)
    async with http.get(f"/api/admin/dead-letters/{DLQ}", headers=bearer(admin["access_token"])) as resp:
        assert (await resp.json())["messages"] == []


async def test_a_replayed_message_is_handled(
    amqp: AbstractRobustConnection, http: aiohttp.ClientSession, admin: dict[str, Any], db: AsyncEngine
) -> None:
    # A valid command parked in the dead-letter queue, as a handler bug that kept
    # failing would leave it: after the fix, a replay gets it handled.
    body, message_id = await park_a_registration(amqp)
    queue = f"{REGISTER_USER.queue}.dlq"
    await _listed(http, admin, queue, {message_id})
    async with http.post(
        f"/api/admin/dead-letters/{queue}/replay", json={"ids": [message_id]}, headers=bearer(admin["access_token"])
    ) as resp:
        assert await resp.json() == {"replayed": 1}
    for _ in range(100):
        async with db.connect() as conn:
            found = await conn.execute(text("SELECT count(*) FROM users.users WHERE email = :e"), {"e": body["email"]})
            if found.scalar_one():
                break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the replayed registration was never handled")


async def test_only_dead_letter_queues_are_touched(http: aiohttp.ClientSession, admin: dict[str, Any]) -> None:
    for queue in (GET_USER.queue, "nope.dlq", "agora.unrouted"):
        async with http.get(f"/api/admin/dead-letters/{queue}", headers=bearer(admin["access_token"])) as resp:
            assert resp.status == 404, queue
        async with http.post(f"/api/admin/dead-letters/{queue}/discard", headers=bearer(admin["access_token"])) as resp:
            assert resp.status == 404, queue


async def test_the_dlq_command_line(stack: Stack, amqp: AbstractRobustConnection) -> None:
    first = await publish_command(amqp, GET_USER.routing_key, {"user_id": str(uuid.uuid4())})
    second = await publish_command(amqp, GET_USER.routing_key, {"user_id": str(uuid.uuid4())})
    for _ in range(100):
        shown = agora_cli(stack.env, "dlq", "show", DLQ, "--limit", "500")
        assert shown.returncode == 0, shown.stderr
        ids = [json.loads(line)["id"] for line in shown.stdout.splitlines()]
        if {first, second} <= set(ids):
            break
        await asyncio.sleep(0.2)
    assert ids.index(first) < ids.index(second)
    replayed = agora_cli(stack.env, "dlq", "replay", DLQ, "--id", first)
    assert replayed.returncode == 0 and replayed.stdout.startswith("1 replayed"), replayed.stdout + replayed.stderr
    listed = agora_cli(stack.env, "dlq", "list", "--json")
    assert DLQ in {q["queue"] for q in json.loads(listed.stdout)}
    table = agora_cli(stack.env, "dlq", "list").stdout.splitlines()
    assert table[0] == "MESSAGES\tQUEUE" and any(row.endswith(f"\t{DLQ}") for row in table[1:]), table
    # --non-empty: only queues holding dead letters (the broker's counts lag a few seconds).
    for _ in range(100):
        rows = [row.split("\t") for row in agora_cli(stack.env, "dlq", "list", "--non-empty").stdout.splitlines()[1:]]
        if DLQ in {queue for _, queue in rows}:
            break
        await asyncio.sleep(0.2)
    assert DLQ in {queue for _, queue in rows} and all(int(count) > 0 for count, _ in rows), rows
    assert len(rows) < len(table) - 1  # most of Agora's dead-letter queues are empty, and left out
    await asyncio.sleep(1.0)  # the replayed one is refused again and returns
    purged = agora_cli(stack.env, "dlq", "purge", DLQ)
    assert purged.returncode == 0 and "discarded" in purged.stdout, purged.stdout
    shown = agora_cli(stack.env, "dlq", "show", DLQ)
    assert shown.stdout == ""
    for _ in range(100):
        if DLQ not in agora_cli(stack.env, "dlq", "list", "--non-empty").stdout:
            break
        await asyncio.sleep(0.2)
    assert DLQ not in agora_cli(stack.env, "dlq", "list", "--non-empty").stdout
    refused = agora_cli(stack.env, "dlq", "purge", GET_USER.queue)
    assert refused.returncode == 2
    # A reader that stops early (`| head`; here one that reads nothing and exits at once, so
    # the listing's write always meets a closed pipe) ends it quietly, without a traceback.
    piped = await asyncio.to_thread(
        subprocess.run,
        f"{ROOT / '.venv/bin/agora'} dlq list | true",
        shell=True,
        env=stack.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr, piped.stderr
