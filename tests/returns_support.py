"""Delivered orders and their returns through the API, for the returns tests and the authorization matrix."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

from harness.accounts import bearer, login, make_seller, register
from tests.catalog_support import create_category, create_product, new_tag
from tests.orders_support import ADDRESS, confirmed_and_captured, matrix_product, place_body, place_when_priced


async def deliver(http: aiohttp.ClientSession, admin: dict[str, Any], order_id: str) -> dict[str, Any]:
    """Ship and deliver a confirmed order (as an admin: its lines may be several sellers')."""
    for status in ("shipped", "delivered"):
        async with http.put(
            f"/api/orders/{order_id}", json={"status": status}, headers=bearer(admin["access_token"])
        ) as resp:
            assert resp.status == 200, await resp.text()
            order: dict[str, Any] = await resp.json()
    return order


async def two_line_order(
    http: aiohttp.ClientSession, admin: dict[str, Any], shirts: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A member's delivered order of two lines of two sellers' products (2 shirts at 20.00,
    1 cap at 15.00, named with `tag`); `shirts`: the shirts' seller (a new one if None)."""
    category, tag = f"returns-{new_tag()}", new_tag()
    await create_category(http, admin, category)
    shirts = shirts or await make_seller(http, admin)
    caps = await make_seller(http, admin)
    shirt = await create_product(http, shirts, category, name=f"Shirt {tag}", price="20.00", stock=10)
    cap = await create_product(http, caps, category, name=f"Cap {tag}", price="15.00", stock=10)
    user = await register(http)
    member = await login(http, user["email"], user["password"])
    items = [{"product_id": shirt["product_id"], "quantity": 2}, {"product_id": cap["product_id"], "quantity": 1}]
    status, order = await place_body(
        http, member, {"items": items, "shipping_address": ADDRESS, "payment_token": "tok_visa"}
    )
    assert status == 202, order
    await confirmed_and_captured(http, member, order["order_id"])
    delivered = await deliver(http, admin, order["order_id"])
    assert delivered["status"] == "delivered"
    return {
        "order": delivered,
        "member": {**member, "email": user["email"], "user_id": user["user_id"]},
        "shirts": shirts,
        "caps": caps,
        "shirt": shirt,
        "cap": cap,
        "tag": tag,
    }


async def request_return(
    http: aiohttp.ClientSession, who: dict[str, Any], order_id: str, items: list[dict[str, Any]], key: str | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {**bearer(who["access_token"]), **({"Idempotency-Key": key} if key else {})}
    body = {"items": items, "reason": "Does not fit"}
    async with http.post(f"/api/orders/{order_id}/returns", json=body, headers=headers) as resp:
        answer: dict[str, Any] = await resp.json()
        return resp.status, answer


async def eventually(
    http: aiohttp.ClientSession, who: dict[str, Any], url: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """GET `url` as `who` until `done` says yes (fails after 30 s)."""
    for _ in range(300):
        async with http.get(url, headers=bearer(who["access_token"])) as resp:
            assert resp.status == 200, await resp.text()
            found: dict[str, Any] = await resp.json()
        if done(found):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never got there: {found}")


async def delivered_order_target(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """Authorization-matrix target: a member (the "owner") with a delivered order of one product."""
    product_id = await matrix_product(http, admin)
    user = await register(http)
    session = await login(http, user["email"], user["password"])
    order = await place_when_priced(http, session, product_id)
    await confirmed_and_captured(http, session, order["order_id"])
    await deliver(http, admin, order["order_id"])
    return {**user, **session, "product_id": product_id, "params": {"orderId": order["order_id"]}}


async def return_target(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """Authorization-matrix target: a member with a return requested of their delivered order."""
    target = await delivered_order_target(http, admin)
    items = [{"product_id": target["product_id"], "quantity": 1}]
    status, ret = await request_return(http, target, target["params"]["orderId"], items, str(uuid.uuid4()))
    assert status == 201, ret
    return {**target, "params": {**target["params"], "returnId": ret["return_id"]}}


def return_body(owner: dict[str, Any]) -> dict[str, Any]:
    return {"items": [{"product_id": owner["product_id"], "quantity": 1}], "reason": "Does not fit"}
