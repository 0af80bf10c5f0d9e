"""The sales report, the admin order list and the overview, from real orders placed
through the API and carried through the saga."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import aiohttp

from harness import environment
from harness.accounts import bearer, login, make_seller, register
from harness.bus import list_product
from tests.orders_support import ADDRESS


async def _place(http: aiohttp.ClientSession, who: dict[str, Any], items: list[tuple[str, int]], token: str) -> str:
    body = {
        "items": [{"product_id": p, "quantity": q} for p, q in items],
        "shipping_address": ADDRESS,
        "payment_token": token,
    }
    for _ in range(100):
        headers = {**bearer(who["access_token"]), "Idempotency-Key": str(uuid.uuid4())}
        async with http.post("/api/orders", json=body, headers=headers) as resp:
            reply: dict[str, Any] = await resp.json()
            if resp.status == 202:
                return str(reply["order_id"])
            assert resp.status == 422, reply  # the orders service has not heard of the product yet
        await asyncio.sleep(0.1)
    raise AssertionError("the orders service never priced the products")


async def _status(http: aiohttp.ClientSession, who: dict[str, Any], order_id: str, status: str) -> None:
    for _ in range(200):
        async with http.get(f"/api/orders/{order_id}", headers=bearer(who["access_token"])) as resp:
            if (await resp.json())["status"] == status:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"order {order_id} never became {status}")


async def _report(
    http: aiohttp.ClientSession, who: dict[str, Any], seller_id: str, query: str
) -> aiohttp.ClientResponse:
    return await http.get(f"/api/sellers/{seller_id}/reports/sales?{query}", headers=bearer(who["access_token"]))


async def test_sales_report_orders_list_and_overview(http: aiohttp.ClientSession, admin: dict[str, Any]) -> None:
    seller = await make_seller(http, admin)
    seller_id = seller["user"]["user_id"]
    connection = await aio_pika.connect_robust(environment.test_env()["AGORA_AMQP_URL"])
    try:
        first = await list_product(connection, http, seller_id, stock=50)
        second = await list_product(connection, http, seller_id, stock=50)
    finally:
        await connection.close()
    user = await register(http)
    member = await login(http, user["email"], user["password"])

    one = await _place(http, member, [(first, 1)], "tok_visa")
    two = await _place(http, member, [(first, 2), (second, 1)], "tok_visa")
    cancelled = await _place(http, member, [(second, 5)], "tok_visa")
    declined = await _place(http, member, [(first, 1)], "tok_chargeDeclined")
    for order_id in (one, two, cancelled):
        await _status(http, member, order_id, "confirmed")
    await _status(http, member, declined, "cancelled")
    async with http.put(
        f"/api/orders/{cancelled}", json={"status": "cancelled"}, headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 200, await resp.text()

    today = datetime.now(UTC).date()
    query = f"from={today - timedelta(days=2)}&to={today}&granularity=day"
    for _ in range(100):  # the projection follows the order events
        resp = await _report(http, seller, seller_id, query)
        assert resp.status == 200, await resp.text()
        report = await resp.json()
        if report["totals"] == {"orders": 2, "units": 4, "revenue": "79.96", "tax": "0.00"}:
            break
        await asyncio.sleep(0.1)
    assert report["totals"] == {"orders": 2, "units": 4, "revenue": "79.96", "tax": "0.00"}, report
    assert report["seller_id"] == seller_id and report["currency"] == "USD" and report["granularity"] == "day"
    assert (report["from"], report["to"]) == (str(today - timedelta(days=2)), str(today))
    assert report["periods"] == [
        {"start": str(today - timedelta(days=2)), "orders": 0, "units": 0, "revenue": "0.00", "tax": "0.00"},
        {"start": str(today - timedelta(days=1)), "orders": 0, "units": 0, "revenue": "0.00", "tax": "0.00"},
        {"start": str(today), "orders": 2, "units": 4, "revenue": "79.96", "tax": "0.00"},
    ]
    assert [(p["product_id"], p["units"], p["revenue"]) for p in report["top_products"]] == [
        (first, 3, "59.97"),
        (second, 1, "19.99"),
    ]
    assert report["top_products"][0]["name"].startswith("product ")

    monthly = await (await _report(http, admin, seller_id, f"from={today}&to={today}&granularity=month")).json()
    assert monthly["periods"] == [
        {"start": str(today.replace(day=1)), "orders": 2, "units": 4, "revenue": "79.96", "tax": "0.00"}
    ]

    resp = await _report(http, seller, seller_id, f"{query}&format=csv")
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    filename = f"sales-{today - timedelta(days=2)}-{today}.csv"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{filename}"'
    rows = list(csv.reader(io.StringIO(await resp.text())))
    assert rows[0] == ["period_start", "orders", "units", "revenue", "tax", "currency"]
    assert rows[-1] == [str(today), "2", "4", "79.96", "0.00", "USD"]
    async with http.get(
        f"/api/sellers/{seller_id}/reports/sales?{query}",
        headers={**bearer(seller["access_token"]), "Accept": "text/csv"},
    ) as resp:
        assert resp.content_type == "text/csv"

    assert (await _report(http, member, seller_id, query)).status == 404
    bad = await _report(http, seller, seller_id, f"from={today}&to={today - timedelta(days=1)}")
    assert bad.status == 422

    # The admin order list: newest first, filtered, in pages.
    async with http.get(
        f"/api/admin/orders?status=cancelled&from={today}&limit=1", headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 200, await resp.text()
        page = await resp.json()
    assert len(page["items"]) == 1 and page["items"][0]["status"] == "cancelled"
    assert page["items"][0]["order_id"] == declined  # newest first
    async with http.get(
        f"/api/admin/orders?status=cancelled&from={today}&limit=1&cursor={page['next_cursor']}",
        headers=bearer(admin["access_token"]),
    ) as resp:
        assert (await resp.json())["items"][0]["order_id"] == cancelled
    async with http.get("/api/admin/orders", headers=bearer(member["access_token"])) as resp:
        assert resp.status == 403

    async with http.get("/api/admin/overview?days=3", headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 200, await resp.text()
        overview = await resp.json()
    assert overview["currency"] == "USD"
    assert [d["date"] for d in overview["days"]] == [str(today - timedelta(days=n)) for n in (2, 1, 0)]
    assert overview["days"][-1]["orders"] >= 2
    shown = {q["queue"] for q in overview["queues"]}
    assert {"orders.place_order_v1", "orders.place_order_v1.dlq"} <= shown
    # Only Agora's work and dead-letter queues: no edge reply queue, no amq.*, no delay tier.
    assert all(q.endswith(".dlq") or f"{q}.dlq" in shown for q in shown), shown
    assert not [q for q in shown if q.startswith("amq.") or "reply" in q], shown
    assert set(overview["queues"][0]) == {"queue", "messages", "consumers", "publish_rate", "deliver_rate"}


async def test_low_stock_lists(http: aiohttp.ClientSession, admin: dict[str, Any]) -> None:
    seller = await make_seller(http, admin)
    seller_id = seller["user"]["user_id"]
    connection = await aio_pika.connect_robust(environment.test_env()["AGORA_AMQP_URL"])
    try:
        low = await list_product(connection, http, seller_id, stock=3)
        plenty = await list_product(connection, http, seller_id, stock=100)
    finally:
        await connection.close()
    for product_id in (low, plenty):
        async with http.put(
            f"/api/inventory/{product_id}", json={"low_stock_threshold": 5}, headers=bearer(seller["access_token"])
        ) as resp:
            assert resp.status == 200, await resp.text()
    expected = {"product_id": low, "variant_id": low, "seller_id": seller_id, "stock": 3, "low_stock_threshold": 5}
    async with http.get("/api/inventory/low-stock", headers=bearer(seller["access_token"])) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["items"] == [expected]
    async with http.get("/api/admin/inventory/low-stock?limit=500", headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 200, await resp.text()
        items = (await resp.json())["items"]
    assert expected in items and plenty not in {i["product_id"] for i in items}
    async with http.get("/api/admin/inventory/low-stock", headers=bearer(seller["access_token"])) as resp:
        assert resp.status == 403
