"""`agora seed --orders N` (what scripts/up runs): demo orders placed through the public
API and the saga, then moved along as a shop's people move them (issue 19)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from harness.accounts import bearer, create_admin, login
from harness.processes import agora_cli
from harness.stack import Stack
from ops.demo_catalog import DEMO_SELLERS
from ops.demo_orders import SHOPPERS, fate
from ops.seed import DEMO_PASSWORD, DEMO_SHIPPING, DEMO_TAX_RATES, DEMO_VOUCHER

ORDERS = 14


async def _orders_of(http: aiohttp.ClientSession, email: str) -> list[dict[str, Any]]:
    token = (await login(http, email, DEMO_PASSWORD))["access_token"]
    async with http.get("/api/orders", params={"limit": "100"}, headers=bearer(token)) as resp:
        assert resp.status == 200, await resp.text()
        items: list[dict[str, Any]] = (await resp.json())["items"]
        return items


def _outcome(order: dict[str, Any]) -> str:
    if order["payment_status"] == "failed":
        return "declined"  # waiting to be paid again, or cancelled once that window closed
    if order["status"] == "cancelled":
        # The customer's cancel comes before shipping, the admin's after: both refund in full.
        shipped = any(h["status"] == "shipped" for h in order["history"])
        assert order["payment_status"] == "refunded", order
        return "refunded" if shipped else "cancelled"
    return str(order["status"])


@pytest.fixture
async def shop_set_up_put_back(http: aiohttp.ClientSession, admin: dict[str, Any]) -> AsyncIterator[None]:
    """After the test, the demo shop's shipping methods and tax are taken away again: the
    suite's later tests share the database and price their orders without them."""
    yield
    auth = bearer(admin["access_token"])
    async with http.get("/api/shipping-methods", headers=auth) as resp:
        methods = (await resp.json())["items"]
    async with http.get("/api/tax-rates", headers=auth) as resp:
        rates = (await resp.json())["items"]
    demo_rates = {(r["country"], r.get("region", "")) for r in DEMO_TAX_RATES}
    for path in [
        *(
            f"/api/shipping-methods/{m['method_id']}"
            for m in methods
            if m["name"] in {d["name"] for d in DEMO_SHIPPING}
        ),
        *(f"/api/tax-rates/{r['rate_id']}" for r in rates if (r["country"], r["region"] or "") in demo_rates),
    ]:
        async with http.delete(path, headers=auth) as resp:
            assert resp.status in (200, 204), await resp.text()
    async with http.put("/api/tax-settings/EUR", json={"prices_include_tax": False}, headers=auth) as resp:
        assert resp.status == 200, await resp.text()


@pytest.mark.usefixtures("shop_set_up_put_back")
async def test_demo_orders_are_placed_through_the_api_and_moved_along(
    stack: Stack, http: aiohttp.ClientSession, db: AsyncEngine
) -> None:
    operator = create_admin(stack.env)
    as_admin = {"AGORA_ADMIN_EMAIL": operator["email"], "AGORA_ADMIN_PASSWORD": operator["password"]}
    seeded = await asyncio.to_thread(agora_cli, stack.env, "seed", "--orders", str(ORDERS), extra_env=as_admin)
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    assert f"seed: {ORDERS} demo orders (" in seeded.stdout, seeded.stdout

    orders = [o for email in SHOPPERS for o in await _orders_of(http, email)]
    assert len(orders) == ORDERS
    # Every fate the seed aims at, as many times as it aims at each.
    assert Counter(_outcome(o) for o in orders) == Counter(fate(i) for i in range(ORDERS))
    assert all(o["tracking"] and o["tracking"]["number"] for o in orders if o["status"] in ("shipped", "delivered"))
    captured = [o for o in orders if o["status"] in ("confirmed", "shipped", "delivered")]
    assert captured and all(o["payment_status"] == "captured" for o in captured)
    # Both demo members shop.
    shoppers = [(await login(http, email, DEMO_PASSWORD))["user"]["user_id"] for email in SHOPPERS]
    assert {o["user_id"] for o in orders} == set(shoppers)

    # The seller portal's report shows the sales.
    sold = 0
    for email in DEMO_SELLERS:
        seller = await login(http, email, DEMO_PASSWORD)
        for currency in ("USD", "EUR"):
            async with http.get(
                f"/api/sellers/{seller['user']['user_id']}/reports/sales",
                params={"currency": currency},
                headers=bearer(seller["access_token"]),
            ) as resp:
                assert resp.status == 200, await resp.text()
                sold += sum(p["orders"] for p in (await resp.json())["periods"])
    assert sold >= len(captured)  # an order with both sellers' products counts for each

    # A second run answers the same orders: none is added, none moves again.
    async with db.connect() as conn:
        before = await conn.scalar(text("SELECT count(*) FROM orders.orders"))
    again = await asyncio.to_thread(agora_cli, stack.env, "seed", "--orders", str(ORDERS), extra_env=as_admin)
    assert again.returncode == 0, again.stdout + again.stderr
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM orders.orders")) == before
        # The demo shop's set-up, made once: a discount code, shipping methods and tax.
        vouchers = await conn.execute(
            text("SELECT percent, per_customer_limit FROM orders.vouchers WHERE code = :c"), {"c": DEMO_VOUCHER["code"]}
        )
        assert [(int(p), limit) for p, limit in vouchers] == [(10, 1)]
        methods = await conn.scalars(text("SELECT name FROM orders.shipping_methods"))
        assert {m["name"] for m in DEMO_SHIPPING} <= set(methods)
        rates = await conn.execute(text("SELECT country, region FROM orders.tax_rates"))
        assert {(r["country"], r.get("region", "")) for r in DEMO_TAX_RATES} <= {tuple(r) for r in rates}
    after = {o["order_id"]: o for email in SHOPPERS for o in await _orders_of(http, email)}
    assert after.keys() == {o["order_id"] for o in orders}
    # (A declined order may have been cancelled meanwhile: its pay-again window closed.)
    assert all(after[o["order_id"]]["status"] == o["status"] for o in orders if _outcome(o) != "declined")
