"""At-least-once delivery made safe: duplicates are no-ops, bad input is dead-lettered."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.users import GET_USER, REGISTER_USER
from harness import broker, environment
from harness.accounts import new_user, register
from tests.reliability.conftest import dead_letters, publish_command

DLQ = f"{REGISTER_USER.queue}.dlq"


async def _settled(queue: str) -> None:
    """Nothing ready and nothing delivered-but-unacknowledged: every delivery was settled.

    The management API's counters lag by a few seconds, so wait for them.
    """
    for _ in range(40):
        info = broker.queue_info(queue)
        if info.get("messages_ready") == 0 and info.get("messages_unacknowledged") == 0:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{queue}: {info.get('messages_ready')} ready, {info.get('messages_unacknowledged')} unacked")


async def _count(db: AsyncEngine, sql: str, **params: object) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


async def test_a_redelivered_command_is_a_no_op(amqp: AbstractRobustConnection, db: AsyncEngine) -> None:
    body = new_user()
    message_id = str(uuid.uuid4())
    for _ in range(3):
        await publish_command(amqp, REGISTER_USER.routing_key, body, message_id=message_id)
    sql = "SELECT count(*) FROM users.users WHERE email = :email"
    for _ in range(100):
        if await _count(db, "SELECT count(*) FROM users.inbox WHERE message_id = :m", m=message_id):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # give the two duplicates time to be (not) processed
    assert await _count(db, sql, email=body["email"]) == 1
    assert await _count(db, "SELECT count(*) FROM users.outbox WHERE body->>'email' = :e", e=body["email"]) == 1
    await _settled(REGISTER_USER.queue)  # duplicates were acked, not parked or left unacked


async def test_bad_input_goes_to_the_dead_letter_queue_and_the_worker_keeps_serving(
    amqp: AbstractRobustConnection, http: aiohttp.ClientSession
) -> None:
    garbage = await publish_command(amqp, REGISTER_USER.routing_key, b"\x00not json at all")
    forged_role = await publish_command(amqp, REGISTER_USER.routing_key, {**new_user(), "role": "admin"})
    dead = await dead_letters(amqp, DLQ, expect=2)
    assert dead.keys() == {garbage, forged_role}
    assert dead[garbage] == b"\x00not json at all"
    assert json.loads(dead[forged_role])["role"] == "admin"
    await _settled(REGISTER_USER.queue)
    await register(http)  # still serving


async def test_a_message_without_id_is_dead_lettered(amqp: AbstractRobustConnection) -> None:
    # aio-pika (aiormq) stamps a message id on everything it publishes, so publish the
    # way a bare AMQP client might: through the management API, with no properties.
    body = {
        "properties": {},
        "routing_key": REGISTER_USER.routing_key,
        "payload": json.dumps(new_user()),
        "payload_encoding": "string",
    }
    status = broker.management_api(
        "POST", f"/exchanges/{environment.VHOST}/agora.commands/publish", json.dumps(body).encode()
    )
    assert status == 200
    dead = await dead_letters(amqp, DLQ, expect=1)
    assert [json.loads(b)["email"] for b in dead.values()] == [json.loads(body["payload"])["email"]]


async def test_a_forged_actor_is_dead_lettered(amqp: AbstractRobustConnection, http: aiohttp.ClientSession) -> None:
    user = await register(http)
    forged = "Bearer eyJhbGciOiJFZERTQSIsImtpZCI6Im5vcGUifQ.eyJzdWIiOiJ4In0.c2ln"
    body = {"user_id": user["user_id"]}
    forged_id = await publish_command(amqp, GET_USER.routing_key, body, headers={"authorization": forged})
    anonymous_id = await publish_command(amqp, GET_USER.routing_key, body)  # no actor at all
    dead = await dead_letters(amqp, f"{GET_USER.queue}.dlq", expect=2, ids={forged_id, anonymous_id})
    assert dead.keys() == {forged_id, anonymous_id}


async def test_a_binary_authorization_header_is_dead_lettered_not_left_unacked(
    amqp: AbstractRobustConnection, http: aiohttp.ClientSession
) -> None:
    user = await register(http)
    binary_id = await publish_command(
        amqp, GET_USER.routing_key, {"user_id": user["user_id"]}, headers={"authorization": bytearray(b"\xff\xfe")}
    )
    dead = await dead_letters(amqp, f"{GET_USER.queue}.dlq", expect=1, ids={binary_id})
    assert dead.keys() == {binary_id}
    await _settled(GET_USER.queue)
