"""Orders made through the API, for the orders tests and the authorization matrix."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aio_pika
import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from harness import environment
from harness.accounts import bearer, login, make_seller, register
from harness.bus import list_product
from tests.support import until

ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


async def matrix_product(http: aiohttp.ClientSession, admin: dict[str, Any]) -> str:
    """A product of a new seller with stock, listed the way the catalog's events list it."""
    seller = await make_seller(http, admin)
    connection = await aio_pika.connect_robust(environment.test_env()["AGORA_AMQP_URL"])
    try:
        return await list_product(connection, http, seller["user"]["user_id"], stock=100)
    finally:
        await connection.close()


async def known_to_orders(db: AsyncEngine, user_id: str, *, within: float = 20) -> None:
    """Wait until the orders service's customers read model has the account (its
    `users.user_registered` arrives on a queue of its own, so an order placed right after
    registering may overtake it and keep no customer snapshot)."""

    async def known() -> Any:
        async with db.connect() as conn:
            return await conn.scalar(text("SELECT 1 FROM orders.customers WHERE user_id = :u"), {"u": user_id})

    await until("the orders service knows the customer", known, within=within)


def order_body(product_id: str, token: str = "tok_visa") -> dict[str, Any]:
    return {
        "items": [{"product_id": product_id, "quantity": 1}],
        "shipping_address": ADDRESS,
        "payment_token": token,
    }


async def place_when_priced(
    http: aiohttp.ClientSession, who: dict[str, Any], product_id: str, token: str = "tok_visa"
) -> dict[str, Any]:
    """Place an order, retrying while the orders service has not yet heard of the product (422)."""
    for _ in range(100):
        headers = {**bearer(who["access_token"]), "Idempotency-Key": str(uuid.uuid4())}
        async with http.post("/api/orders", json=order_body(product_id, token), headers=headers) as resp:
            body: dict[str, Any] = await resp.json()
            if resp.status == 202:
                return body
            assert resp.status == 422, body
        await asyncio.sleep(0.1)
    raise AssertionError("the orders service never priced the product")


async def _member_with_order(http: aiohttp.ClientSession, admin: dict[str, Any], token: str) -> dict[str, Any]:
    product_id = await matrix_product(http, admin)
    user = await register(http)
    session = await login(http, user["email"], user["password"])
    order = await place_when_priced(http, session, product_id, token)
    return {
        **user,
        **session,
        "product_id": product_id,
        "params": {"orderId": order["order_id"], "userId": user["user_id"]},
    }


async def order_target(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """Authorization-matrix target: a member (the "owner") with an order in progress."""
    return await _member_with_order(http, admin, "tok_visa")


async def finished_order_target(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """A member with an order that has ended (declined, so cancelled): its event stream ends at once."""
    target = await _member_with_order(http, admin, "tok_chargeDeclined")
    for _ in range(200):
        async with http.get(
            f"/api/orders/{target['params']['orderId']}", headers=bearer(target["access_token"])
        ) as resp:
            if (await resp.json())["status"] == "cancelled":
                return target
        await asyncio.sleep(0.1)
    raise AssertionError("the declined order was never cancelled")


async def ledger(order_id: str) -> dict[str, Any]:
    """An order as the payment sandbox's ledger sees it: what was captured, refunded, still live."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{environment.PAYMENT_SANDBOX_PORT}/v1/ledger/orders/{order_id}") as resp,
    ):
        result: dict[str, Any] = await resp.json()
        return result


async def place_body(
    http: aiohttp.ClientSession, who: dict[str, Any], body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Place an order with this body (status, answer), retrying while the orders service has
    not yet heard of its products."""
    for _ in range(100):
        headers = {**bearer(who["access_token"]), "Idempotency-Key": str(uuid.uuid4())}
        async with http.post("/api/orders", json=body, headers=headers) as resp:
            answer: dict[str, Any] = await resp.json()
        fields = {e["field"] for e in answer.get("errors", ())}
        if resp.status != 422 or not any(f.startswith("items") for f in fields):
            return resp.status, answer
        await asyncio.sleep(0.1)
    raise AssertionError("the orders service never priced the product")


async def confirmed_and_captured(http: aiohttp.ClientSession, who: dict[str, Any], order_id: str) -> dict[str, Any]:
    """The order once confirmed with its payment captured (read as `who`); fails if it is cancelled."""
    for _ in range(300):
        async with http.get(f"/api/orders/{order_id}", headers=bearer(who["access_token"])) as resp:
            order: dict[str, Any] = await resp.json()
        if order["status"] == "confirmed" and order["payment_status"] == "captured":
            return order
        assert order["status"] != "cancelled", order
        await asyncio.sleep(0.1)
    raise AssertionError(f"order {order_id} was never confirmed and captured")


def voucher_body() -> dict[str, Any]:
    """A voucher no order uses (a code of its own, inactive)."""
    return {"code": f"matrix-{uuid.uuid4().hex[:12]}", "percent": "5", "active": False}


async def voucher_target(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """Authorization-matrix target: a voucher (admins' alone) and a member."""
    async with http.post("/api/vouchers", json=voucher_body(), headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 201, await resp.text()
        voucher = await resp.json()
    user = await register(http)
    session = await login(http, user["email"], user["password"])
    return {**user, **session, "params": {"voucherId": voucher["voucher_id"]}}
