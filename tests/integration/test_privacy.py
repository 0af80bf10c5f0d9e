"""Personal data: export, erasure, data-key rotation, and nothing personal in the logs."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import Callable
from typing import Any

import aio_pika
import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.topology import EVENTS_EXCHANGE
from db.sealed import USER_ADDRESS, USER_PHONE
from harness.accounts import bearer, login, register
from harness.processes import agora_cli
from harness.stack import Stack
from kernel.crypto import FieldCipher, Sealed
from tests.orders_support import ADDRESS as ORDER_ADDRESS
from tests.orders_support import matrix_product, place_when_priced

ADDRESS = {"line1": "12 Privacy Lane", "city": "Utrecht", "postal_code": "3511 AB", "country": "NL"}


async def _profile_owner(http: aiohttp.ClientSession) -> dict[str, Any]:
    tag = uuid.uuid4().int % 10**7
    user = await register(http, phone=f"+3161{tag:07d}", address={**ADDRESS, "line1": f"{tag} Privacy Lane"})
    return {**user, **await login(http, user["email"], user["password"])}


async def test_the_owner_exports_everything_the_platform_holds(
    http: aiohttp.ClientSession, admin: dict[str, Any], db: AsyncEngine
) -> None:
    user = await _profile_owner(http)
    url = f"/api/users/{user['user_id']}/export"
    async with http.get(url, headers=bearer(user["access_token"])) as resp:
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-store"
        assert "attachment" in resp.headers["Content-Disposition"]
        export = await resp.json()
    assert export["user_id"] == user["user_id"]
    users = export["services"]["users"]
    assert users["profile"]["email"] == user["email"]
    assert users["profile"]["phone"] == user["phone"]  # decrypted for its owner
    assert users["profile"]["address"]["line1"] == user["address"]["line1"]
    assert len(users["sessions"]) == 1 and users["sessions"][0]["revoked_at"] is None
    assert users["identities"] == []
    # An admin may export too, and that is audited; another member may not (404, as if absent).
    async with http.get(url, headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 200
    async with db.connect() as conn:
        actions = (
            await conn.execute(text("SELECT action FROM users.audit_log WHERE target_id = :t"), {"t": user["user_id"]})
        ).scalars()
        assert list(actions) == ["user.export"]
    other = await _profile_owner(http)
    async with http.get(url, headers=bearer(other["access_token"])) as resp:
        assert resp.status == 404
    async with http.get(url) as resp:
        assert resp.status == 401


async def test_erasure_anonymises_revokes_and_announces(
    http: aiohttp.ClientSession, amqp: aio_pika.abc.AbstractRobustConnection, db: AsyncEngine, admin: dict[str, Any]
) -> None:
    channel = await amqp.channel()
    events = await channel.declare_queue(exclusive=True)
    await events.bind(EVENTS_EXCHANGE, "users.user_erased.v1")
    user = await _profile_owner(http)
    await _registration_published(db, user["user_id"])
    async with http.delete(f"/api/users/{user['user_id']}", headers=bearer(user["access_token"])) as resp:
        assert resp.status == 204, await resp.text()
    async with db.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM users.users WHERE user_id = :u"), {"u": user["user_id"]})).one()
    assert user["email"] not in row.email and user["username"] not in row.username
    assert row.phone_enc is None and row.address_enc is None and row.password_hash is None
    assert row.erased_at is not None
    async with db.connect() as conn:
        kept = await conn.scalar(
            text("SELECT count(*) FROM users.outbox WHERE body::text LIKE :e OR body::text LIKE :u"),
            {"e": f"%{user['email']}%", "u": f"%{user['username']}%"},
        )
    assert kept == 0  # the published user_registered event no longer holds the email
    # Gone for everyone, sessions over, the email free for a new account.
    async with http.get(f"/api/users/{user['user_id']}", headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 404
    async with http.post("/api/auth/refresh", json={"refresh_token": user["refresh_token"]}) as resp:
        assert resp.status == 401
    async with http.post("/api/users/login", json={"email": user["email"], "password": user["password"]}) as resp:
        assert resp.status == 401
    again = await register(http, email=user["email"], username=user["username"])
    assert again["user_id"] != user["user_id"]
    message = await _next_message(events)
    assert json.loads(message.body)["user_id"] == user["user_id"]
    await channel.close()


async def test_who_may_erase(http: aiohttp.ClientSession, admin: dict[str, Any]) -> None:
    victim = await _profile_owner(http)
    other = await _profile_owner(http)
    url = f"/api/users/{victim['user_id']}"
    async with http.delete(url, headers=bearer(other["access_token"])) as resp:
        assert resp.status == 404
    async with http.delete(url) as resp:
        assert resp.status == 401
    async with http.delete(f"/api/users/{admin['user']['user_id']}", headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 409  # an admin cannot erase themself
    async with http.delete(url, headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 204
    async with http.delete(url, headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 404  # already gone


async def _until(
    http: aiohttp.ClientSession, url: str, token: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    for _ in range(200):
        async with http.get(url, headers=bearer(token)) as resp:
            body: dict[str, Any] = await resp.json()
        if resp.status == 200 and done(body):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never got there: {body}")


async def test_the_orders_service_exports_a_members_orders_and_cart_and_forgets_them_at_erasure(
    http: aiohttp.ClientSession, admin: dict[str, Any], db: AsyncEngine
) -> None:
    product_id = await matrix_product(http, admin)
    user = await _profile_owner(http)
    placed = await place_when_priced(http, user, product_id)
    order_url = f"/api/orders/{placed['order_id']}"
    await _until(http, order_url, user["access_token"], lambda o: o["payment_status"] == "captured")
    async with http.post(
        "/api/cart/items", json={"product_id": product_id, "quantity": 2}, headers=bearer(user["access_token"])
    ) as resp:
        assert resp.status == 200, await resp.text()

    async with http.get(f"/api/users/{user['user_id']}/export", headers=bearer(user["access_token"])) as resp:
        assert resp.status == 200, await resp.text()
        orders = (await resp.json())["services"]["orders"]
    [order] = orders["orders"]
    assert order["order_id"] == placed["order_id"]
    assert order["shipping_address"] == {"line2": None, "region": None, **ORDER_ADDRESS}  # decrypted
    assert [(i["product_id"], i["quantity"]) for i in orders["cart"]["items"]] == [(product_id, 2)]
    async with http.get(f"/api/inventory/{product_id}", headers=bearer(admin["access_token"])) as resp:
        assert (await resp.json())["stock"] == 99

    async with http.delete(f"/api/users/{user['user_id']}", headers=bearer(user["access_token"])) as resp:
        assert resp.status == 204
    # The order stays, for accounting, without its address; not yet shipped, it is
    # cancelled as by the customer: refunded, and its stock back on sale.
    order = await _until(
        http,
        order_url,
        admin["access_token"],
        lambda o: o["shipping_address"] is None and o["payment_status"] == "refunded",
    )
    assert (order["status"], order["cancel_reason"], order["total_amount"]) == (
        "cancelled",
        "customer_request",
        "19.99",
    )
    await _until(http, f"/api/inventory/{product_id}", admin["access_token"], lambda s: s["stock"] == 100)
    async with db.connect() as conn:
        sealed = await conn.scalar(
            text("SELECT count(*) FROM orders.orders WHERE user_id = :u AND shipping_address_enc IS NOT NULL"),
            {"u": user["user_id"]},
        )
        carts = await conn.scalar(text("SELECT count(*) FROM orders.carts WHERE user_id = :u"), {"u": user["user_id"]})
    assert (sealed, carts) == (0, 0)


async def test_rotate_data_re_encrypts_under_the_new_key(
    stack: Stack, http: aiohttp.ClientSession, db: AsyncEngine
) -> None:
    user = await _profile_owner(http)
    old_keys, old_id = _data_keys(stack.env)
    new_id = f"k{uuid.uuid4().hex[:6]}"
    new_key = base64.b64encode(os.urandom(32)).decode()
    rotated = {"AGORA_DATA_KEYS": f"{old_keys},{new_id}:{new_key}", "AGORA_DATA_KEY_ID": new_id}
    try:
        result = agora_cli(stack.env, "keys", "rotate-data", extra_env=rotated)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 left" in result.stdout
        async with db.connect() as conn:
            row = (
                await conn.execute(text("SELECT * FROM users.users WHERE user_id = :u"), {"u": user["user_id"]})
            ).one()
            stale = await conn.scalar(
                text("SELECT count(*) FROM users.users WHERE phone_enc IS NOT NULL AND phone_key_id <> :k"),
                {"k": new_id},
            )
            stale_keys = await conn.scalar(
                text("SELECT count(*) FROM users.signing_keys WHERE private_key_key_id <> :k"), {"k": new_id}
            )
        assert stale == 0 and stale_keys == 0
        only_new = FieldCipher.from_config(f"{new_id}:{new_key}", new_id)
        assert only_new.open(Sealed(row.phone_enc, row.phone_key_id), USER_PHONE.context(row.user_id)) == user["phone"]
        address = only_new.open(Sealed(row.address_enc, row.address_key_id), USER_ADDRESS.context(row.user_id))
        assert json.loads(address)["line1"] == user["address"]["line1"]
    finally:
        # Back under the key the running stack has, for the tests that follow.
        back = {"AGORA_DATA_KEYS": f"{old_keys},{new_id}:{new_key}", "AGORA_DATA_KEY_ID": old_id}
        assert agora_cli(stack.env, "keys", "rotate-data", extra_env=back).returncode == 0
    async with http.get("/api/users/me", headers=bearer(user["access_token"])) as resp:
        assert (await resp.json())["phone"] == user["phone"]


async def test_personal_data_never_reaches_the_logs(stack: Stack, http: aiohttp.ClientSession) -> None:
    user = await _profile_owner(http)
    auth = bearer(user["access_token"])
    async with http.post("/api/users/login", json={"email": user["email"], "password": "wrong password!"}):
        pass
    async with http.put(f"/api/users/{user['user_id']}", json={"phone": "+3169" + user["phone"][-7:]}, headers=auth):
        pass
    async with http.post("/api/users/register", json={"email": user["email"], "username": "x", "password": "p"}):
        pass  # refused, with the email in the body
    async with http.get(f"/api/users/{user['user_id']}/export", headers=auth):
        pass
    await asyncio.sleep(0.5)  # let the processes flush their log lines
    logs = stack.edge.log_path.read_text() + stack.users.log_path.read_text()
    secrets = [user["email"], user["phone"], user["address"]["line1"], user["password"], user["access_token"]]
    secrets += [user["refresh_token"], user["phone"][-7:]]
    leaked = [s for s in secrets if s in logs]
    assert not leaked


async def _registration_published(db: AsyncEngine, user_id: str) -> None:
    for _ in range(100):
        async with db.connect() as conn:
            sent = await conn.scalar(
                text(
                    "SELECT sent_at FROM users.outbox WHERE body->>'user_id' = :u AND routing_key LIKE '%registered%'"
                ),
                {"u": user_id},
            )
        if sent is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("user_registered was not published")


def _data_keys(env: dict[str, str]) -> tuple[str, str]:
    return env["AGORA_DATA_KEYS"], env["AGORA_DATA_KEY_ID"]


async def _next_message(queue: aio_pika.abc.AbstractQueue, within: float = 10) -> aio_pika.abc.AbstractIncomingMessage:
    for _ in range(int(within * 10)):
        message = await queue.get(no_ack=True, fail=False)
        if message is not None:
            return message
        await asyncio.sleep(0.1)
    raise AssertionError("no event arrived")
