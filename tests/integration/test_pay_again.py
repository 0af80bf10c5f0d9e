"""A failed payment is recoverable (issue 18, point 2), end to end through HTTP.

A declined (or unanswered) authorization leaves the order pending with its payment
`failed` and its stock held until `payment_due_by`; `POST /api/orders/{id}/payment` pays
it again through the same saga; the window passing cancels it as a failed payment always
was. The cart is emptied of the ordered lines only once the order is confirmed, and an
unknown token is refused at the edge before anything is reserved. The window is 10 s in
tests (harness/environment.py).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from harness.accounts import bearer, login, make_seller, register
from tests.integration.test_orders import ADDRESS, place, product, settled, stock, stock_settles
from tests.orders_support import ledger

WINDOW = timedelta(seconds=10)  # AGORA_SAGA_PAY_AGAIN_SECONDS in harness/environment.py


@pytest.fixture(scope="module")
async def seller(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """The seller of every product here (and of every order's lines)."""
    return await make_seller(http, admin)


@pytest.fixture
async def member(http: aiohttp.ClientSession) -> dict[str, Any]:
    """A new member for each test: their cart and orders are theirs alone."""
    user = await register(http)
    return await login(http, user["email"], user["password"])


async def pay(
    http: aiohttp.ClientSession, who: dict[str, Any], order_id: str, token: str = "tok_visa"
) -> tuple[int, dict[str, Any]]:
    url = f"/api/orders/{order_id}/payment"
    async with http.post(url, json={"payment_token": token}, headers=bearer(who["access_token"])) as resp:
        return resp.status, await resp.json()


async def payment_failed(http: aiohttp.ClientSession, who: dict[str, Any], order_id: str) -> dict[str, Any]:
    """The order once its payment has failed (still pending, to be paid again)."""
    return await settled(http, who, order_id, within=30, until=lambda o: o["payment_status"] == "failed")


async def add_to_cart(http: aiohttp.ClientSession, who: dict[str, Any], product_id: str, quantity: int) -> None:
    body = {"product_id": product_id, "quantity": quantity}
    async with http.post("/api/cart/items", json=body, headers=bearer(who["access_token"])) as resp:
        assert resp.status == 200, await resp.text()


async def cart_lines(http: aiohttp.ClientSession, who: dict[str, Any]) -> dict[str, int]:
    async with http.get("/api/cart", headers=bearer(who["access_token"])) as resp:
        assert resp.status == 200
        return {item["product_id"]: item["quantity"] for item in (await resp.json())["items"]}


async def reservation(db: AsyncEngine, order_id: str) -> str | None:
    async with db.connect() as conn:
        status = await conn.scalar(
            text("SELECT status FROM inventory.reservations WHERE order_id = :o"), {"o": uuid.UUID(order_id)}
        )
    return str(status) if status is not None else None


def due_by(order: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(order["payment_due_by"])


async def test_a_declined_order_from_the_cart_is_paid_again_and_confirmed_with_its_stock_held(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, seller: dict[str, Any], member: Any
) -> None:
    lamp, mug, pen = [await product(amqp, http, db, seller, stock=5) for _ in range(3)]
    await add_to_cart(http, member, lamp, 2)
    await add_to_cart(http, member, mug, 1)
    body = {"shipping_address": ADDRESS, "payment_token": "tok_chargeDeclined"}
    headers = {**bearer(member["access_token"]), "Idempotency-Key": str(uuid.uuid4())}
    async with http.post("/api/orders", json=body, headers=headers) as resp:
        assert resp.status == 202, await resp.text()
        order_id = (await resp.json())["order_id"]

    # Declined: pending, its payment failed, its stock still held, the cart still full.
    order = await payment_failed(http, member, order_id)
    assert (order["status"], order["cancel_reason"]) == ("pending", None), order
    assert datetime.now(UTC) < due_by(order) <= datetime.now(UTC) + WINDOW
    assert [(h["status"], h["payment_status"]) for h in order["history"]] == [
        ("pending", "none"),
        ("pending", "failed"),
    ]
    assert await reservation(db, order_id) == "reserved"
    assert (await stock(http, seller, lamp), await stock(http, seller, mug)) == ((3, 2), (4, 1))
    assert await cart_lines(http, member) == {lamp: 2, mug: 1}
    # Added after placing: stays in the cart whatever becomes of the order.
    await add_to_cart(http, member, lamp, 1)
    await add_to_cart(http, member, pen, 1)

    # Paid again with another card (the same request twice at once: one authorization).
    answers = await asyncio.gather(pay(http, member, order_id), pay(http, member, order_id))
    statuses = sorted(status for status, _ in answers)
    assert statuses in ([202, 202], [202, 409]), answers  # a 409 only if it came after the confirmation
    paying = next(body for status, body in answers if status == 202)
    assert (paying["status"], paying["payment_due_by"]) == ("pending", None), paying
    order = await settled(http, member, order_id)
    assert (order["status"], order["payment_status"], order["cancel_reason"]) == ("confirmed", "captured", None)
    assert [(h["status"], h["payment_status"]) for h in order["history"]] == [
        ("pending", "none"),
        ("pending", "failed"),
        ("pending", "none"),
        ("confirmed", "authorized"),
    ]
    assert await stock_settles(http, seller, lamp, (3, 0)) == (3, 0)
    assert await stock_settles(http, seller, mug, (4, 0)) == (4, 0)
    assert await reservation(db, order_id) == "committed"
    money = await ledger(order_id)
    assert [a["status"] for a in money["authorizations"]] == ["declined", "captured"], money
    assert (money["captured"], money["captures"], money["live_authorizations"]) == (5997, 1, 0)
    # The ordered lines left the cart with the confirmation; what was added since stayed.
    assert await cart_lines(http, member) == {lamp: 1, pen: 1}

    # Paid already: 409. Someone else's order: 404, as reading it is; its seller may see it, not pay it.
    status, problem = await pay(http, member, order_id)
    assert (status, problem["code"]) == (409, "conflict"), problem
    stranger = await register(http)
    other = await login(http, stranger["email"], stranger["password"])
    assert (await pay(http, other, order_id))[0] == 404
    assert (await pay(http, seller, order_id))[0] == 403


async def test_the_window_passing_cancels_as_a_decline_and_releases_the_stock(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, seller: dict[str, Any], member: Any
) -> None:
    product_id = await product(amqp, http, db, seller, stock=3)
    _, body, _ = await place(http, member, product_id, token="tok_chargeDeclined")
    order_id = body["order_id"]
    failed = await payment_failed(http, member, order_id)
    assert await stock(http, seller, product_id) == (2, 1)
    async with http.get(f"/api/orders/{order_id}/events", headers=bearer(member["access_token"])) as resp:
        assert resp.status == 200
        stream = await asyncio.wait_for(resp.text(), 40)  # it ends once the order is cancelled
    events = [json.loads(line[len("data: ") :]) for line in stream.splitlines() if line.startswith("data: ")]
    assert [(e["status"], e["payment_status"], e["cancel_reason"]) for e in events] == [
        ("pending", "none", None),
        ("pending", "failed", None),
        ("cancelled", "failed", "payment_declined"),
    ], stream
    assert events[1]["payment_due_by"] == failed["payment_due_by"] and events[2]["payment_due_by"] is None
    assert datetime.fromisoformat(events[2]["at"]) >= due_by(failed)
    order = await settled(http, member, order_id)
    assert (order["status"], order["cancel_reason"], order["payment_due_by"]) == ("cancelled", "payment_declined", None)
    assert await stock_settles(http, seller, product_id, (3, 0)) == (3, 0)
    assert await reservation(db, order_id) == "released"
    status, problem = await pay(http, member, order_id)
    assert (status, problem["code"]) == (409, "conflict"), problem


async def test_an_unanswered_payment_is_voided_then_paid_again(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, seller: dict[str, Any], member: Any
) -> None:
    """tok_timeout authorizes at the provider but answers too late: the saga voids whatever
    it may have authorized before it takes another payment, and captures only the new one."""
    product_id = await product(amqp, http, db, seller, stock=3)
    _, body, _ = await place(http, member, product_id, token="tok_timeout")
    order_id = body["order_id"]
    await payment_failed(http, member, order_id)
    for _ in range(50):  # until the failed attempt's void is answered: 409 "still being voided" meanwhile
        status, paying = await pay(http, member, order_id, "tok_mastercard")
        if status == 202:
            break
        assert status == 409 and "voided" in paying["detail"], paying
        await asyncio.sleep(0.1)
    assert status == 202, paying
    order = await settled(http, member, order_id)
    assert (order["status"], order["payment_status"]) == ("confirmed", "captured"), order
    assert await stock_settles(http, seller, product_id, (2, 0)) == (2, 0)
    money = await ledger(order_id)
    assert [a["token"] for a in money["authorizations"]] == ["tok_timeout", "tok_mastercard"], money
    assert [a["status"] for a in money["authorizations"]] == ["voided", "captured"], money
    assert (money["captured"], money["captures"], money["live_authorizations"]) == (1999, 1, 0)


async def test_an_unknown_token_is_422_before_anything_is_reserved(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, seller: dict[str, Any], member: Any
) -> None:
    product_id = await product(amqp, http, db, seller, stock=3)
    status, problem, _ = await place(http, member, product_id, token="tok_unknown")
    assert status == 422 and problem["errors"] == [{"field": "payment_token", "message": "unknown payment token"}]
    async with http.get(
        f"/api/orders/user/{member['user']['user_id']}", headers=bearer(member["access_token"])
    ) as resp:
        assert (await resp.json())["items"] == []
    assert await stock(http, seller, product_id) == (3, 0)
    # Paying again with one is refused the same way, before the order is even looked up.
    status, problem = await pay(http, member, str(uuid.uuid4()), "tok_unknown")
    assert status == 422 and problem["errors"][0]["field"] == "payment_token", problem
    status, _ = await pay(http, member, str(uuid.uuid4()))
    assert status == 404
