"""The dashboard's order search (issue 19): by a customer's email (exact, through its blind
index), part of their name, or an order id (whole or its short reference), against orders
placed through the API."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from db.tables.orders import customers
from harness.accounts import bearer, login, register
from harness.stack import Stack
from kernel.crypto import FieldCipher
from tests.orders_support import matrix_product, place_when_priced
from workers.orders.customers.repository import CustomerRepository


async def _search(http: aiohttp.ClientSession, admin: dict[str, Any], q: str) -> set[str]:
    async with http.get("/api/admin/orders", params={"q": q, "limit": 100}, headers=bearer(admin["access_token"])) as r:
        assert r.status == 200, await r.text()
        return {o["order_id"] for o in (await r.json())["items"]}


async def _found(http: aiohttp.ClientSession, admin: dict[str, Any], q: str, order_id: str) -> set[str]:
    """The search's answer once it finds `order_id` (the customers read model follows the
    registration event)."""
    for _ in range(100):
        found = await _search(http, admin, q)
        if order_id in found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{q!r} never found order {order_id}")


async def test_an_admin_finds_orders_by_email_name_and_id(
    http: aiohttp.ClientSession, admin: dict[str, Any], stack: Stack, db: AsyncEngine
) -> None:
    tag = uuid.uuid4().hex[:8]
    product_id = await matrix_product(http, admin)
    alice = await register(http, email=f"alice.{tag}@example.com", username=f"alice_{tag}_shop")
    bob = await register(http, username=f"bob_{tag}")
    orders = {}
    for who in (alice, bob):
        session = await login(http, who["email"], who["password"])
        orders[who["user_id"]] = (await place_when_priced(http, session, product_id))["order_id"]
    alice_order, bob_order = orders[alice["user_id"]], orders[bob["user_id"]]

    # Email: whole, in any case, spaces around it; a part of it finds nothing (it is sealed).
    assert await _found(http, admin, f" Alice.{tag}@EXAMPLE.com ", alice_order) == {alice_order}
    assert await _search(http, admin, f"lice.{tag}@example.com") == set()
    # Name: any part of it, any case.
    assert await _found(http, admin, f"ICE_{tag}_S", alice_order) == {alice_order}
    # The tag is part of both names (and could be an order's short reference): both.
    assert {alice_order, bob_order} <= await _search(http, admin, tag)
    # Order id: whole, or its short reference (the first 8 hex digits).
    assert await _search(http, admin, bob_order) == {bob_order}
    assert bob_order in await _search(http, admin, bob_order[:8])
    assert bob_order in await _search(http, admin, bob_order[:8].upper())
    # LIKE's wildcards are taken literally.
    assert await _search(http, admin, f"bob%{tag}") == set()
    assert await _search(http, admin, f"alice_{tag}_shop") == {alice_order}
    assert await _search(http, admin, f"alice_{tag}__hop") == set()

    member = await login(http, bob["email"], bob["password"])
    async with http.get("/api/admin/orders", params={"q": tag}, headers=bearer(member["access_token"])) as resp:
        assert resp.status == 403
    async with http.get("/api/admin/orders", params={"q": "x" * 321}, headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 422

    # A row sealed before the index existed (or under a rotated key) is indexed by the
    # worker's batch, and found by email again.
    async with db.begin() as conn:
        await conn.execute(
            update(customers).where(customers.c.user_id == uuid.UUID(alice["user_id"])).values(email_index=None)
        )
    assert await _search(http, admin, alice["email"]) == set()
    cipher = FieldCipher.from_config(stack.env["AGORA_DATA_KEYS"], stack.env["AGORA_DATA_KEY_ID"])
    async with AsyncSession(db) as orm, orm.begin():
        assert await CustomerRepository(orm, cipher).index_emails(100_000) >= 1
    async with db.connect() as conn:
        row = (await conn.execute(select(customers).where(customers.c.user_id == uuid.UUID(alice["user_id"])))).one()
    assert row.email_index is not None and row.email_index_key_id == cipher.current_key_id
    assert await _search(http, admin, alice["email"].upper()) == {alice_order}
