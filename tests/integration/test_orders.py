"""Orders and the saga end to end: HTTP edge, orders, inventory and payments workers, the sandbox provider.

Products come from `catalog.product_created.v1` published straight to `agora.events`
(as the catalog's relay would), which gives them a stock record in inventory and a
price in the orders service's product read model. The saga's deadlines are short in
tests (harness/environment.py).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.inventory import RETURN_STOCK
from contracts.orders import PLACE_ORDER
from harness import broker
from harness.accounts import bearer, login, make_seller, register
from harness.bus import Bus, list_product, service_token
from harness.processes import agora_cli
from harness.stack import Stack
from tests.orders_support import ledger
from tests.support import worker_metric

ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
FINAL = ("confirmed", "cancelled")


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def seller(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    return await make_seller(http, admin)


@pytest.fixture
async def member(http: aiohttp.ClientSession) -> dict[str, Any]:
    user = await register(http)
    return await login(http, user["email"], user["password"])


async def product(
    amqp: AbstractRobustConnection, http: aiohttp.ClientSession, db: AsyncEngine, seller: dict[str, Any], stock: int
) -> str:
    """A product with stock in inventory and a price (19.99 USD) in the orders read model."""
    product_id = await list_product(amqp, http, seller["user"]["user_id"], stock=stock)
    for _ in range(200):
        async with db.connect() as conn:
            if await conn.scalar(text("SELECT 1 FROM orders.products WHERE product_id = :p"), {"p": product_id}):
                return product_id
        await asyncio.sleep(0.05)
    raise AssertionError("the orders service never heard of the product")


async def place(
    http: aiohttp.ClientSession,
    who: dict[str, Any],
    product_id: str,
    *,
    quantity: int = 1,
    token: str = "tok_visa",
    key: str | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    body = {
        "items": [{"product_id": product_id, "quantity": quantity}],
        "shipping_address": ADDRESS,
        "payment_token": token,
    }
    headers = {**bearer(who["access_token"]), "Idempotency-Key": key or str(uuid.uuid4())}
    async with http.post("/api/orders", json=body, headers=headers) as resp:
        return resp.status, await resp.json(), dict(resp.headers)


async def get(http: aiohttp.ClientSession, who: dict[str, Any], order_id: str) -> tuple[int, dict[str, Any]]:
    async with http.get(f"/api/orders/{order_id}", headers=bearer(who["access_token"])) as resp:
        return resp.status, await resp.json()


async def settled(
    http: aiohttp.ClientSession, who: dict[str, Any], order_id: str, *, within: float = 40, until: Any = None
) -> dict[str, Any]:
    """The order once its saga is over (confirmed and captured, or cancelled and compensated)."""
    done = until or (
        lambda o: (
            (o["status"] == "confirmed" and o["payment_status"] == "captured")
            or (o["status"] == "cancelled" and o["payment_status"] in ("none", "failed", "voided", "refunded"))
        )
    )
    deadline = asyncio.get_running_loop().time() + within
    while True:
        status, order = await get(http, who, order_id)
        assert status == 200, order
        if done(order):
            return order
        assert asyncio.get_running_loop().time() < deadline, order
        await asyncio.sleep(0.2)


async def stock(http: aiohttp.ClientSession, seller: dict[str, Any], product_id: str) -> tuple[int, int]:
    async with http.get(f"/api/inventory/{product_id}", headers=bearer(seller["access_token"])) as resp:
        body = await resp.json()
        return body["stock"], body["reserved"]


async def stock_settles(
    http: aiohttp.ClientSession, seller: dict[str, Any], product_id: str, expected: tuple[int, int]
) -> tuple[int, int]:
    """The stock once the saga's last steps landed: an order shows its outcome as soon as
    it is decided, and the commit or release that follows is a moment behind."""
    for _ in range(100):
        current = await stock(http, seller, product_id)
        if current == expected:
            break
        await asyncio.sleep(0.1)
    return current


# --- the saga ---------------------------------------------------------------------------


async def test_happy_path_confirms_commits_and_captures(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, seller: dict[str, Any], member: Any
) -> None:
    product_id = await product(amqp, http, db, seller, stock=5)
    status, body, headers = await place(http, member, product_id, quantity=2)
    assert status == 202, body
    assert body["status"] == "pending" and headers["Location"] == f"/api/orders/{body['order_id']}"
    line = {"product_id": product_id, "variant_id": product_id, "sku": None, "variant": "", "quantity": 2}
    amounts = {"price": "19.99", "line_total": "39.98", "tax": "0.00", "discount": "0.00"}
    name = f"product {product_id.replace('-', '')[:8]}"  # as harness/bus.py lists it, without an image
    # Its default variant, whose id is the product's.
    assert body["items"] == [{**line, **amounts, "name": name, "image_url": None}]
    assert (body["total_amount"], body["currency"], body["shipping_address"]["city"]) == ("39.98", "USD", "Springfield")
    order = await settled(http, member, body["order_id"])
    assert order["status"] == "confirmed" and order["payment_status"] == "captured"
    assert [h["status"] for h in order["history"]] == ["pending", "confirmed"]
    assert await stock_settles(http, seller, product_id, (3, 0)) == (3, 0)
    money = await ledger(body["order_id"])
    assert (money["captured"], money["captures"], money["live_authorizations"]) == (3998, 1, 0)


async def test_out_of_stock_cancels_and_authorizes_nothing(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, seller: dict[str, Any], member: Any
) -> None:
    product_id = await product(amqp, http, db, seller, stock=1)
    _, body, _ = await place(http, member, product_id, quantity=2)
    order = await settled(http, member, body["order_id"])
    assert (order["status"], order["cancel_reason"], order["payment_status"]) == ("cancelled", "out_of_stock", "none")
    assert (await ledger(body["order_id"]))["authorizations"] == []
    assert await stock_settles(http, seller, product_id, (1, 0)) == (1, 0)


async def test_a_declined_card_cancels_and_releases_the_stock(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, seller: dict[str, Any], member: Any
) -> None:
    product_id = await product(amqp, http, db, seller, stock=3)
    _, body, _ = await place(http, member, product_id, token="tok_chargeDeclined")
    order = await settled(http, member, body["order_id"])
    assert (order["status"], order["cancel_reason"]) == ("cancelled", "payment_declined")
    assert await stock_settles(http, seller, product_id, (3, 0)) == (3, 0)


async def test_a_payment_timeout_voids_the_authorization_and_cancels(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, seller: dict[str, Any], member: Any
) -> None:
    product_id = await product(amqp, http, db, seller, stock=3)
    _, body, _ = await place(http, member, product_id, token="tok_timeout")
    order = await settled(http, member, body["order_id"], within=60)
    assert (order["status"], order["cancel_reason"]) == ("cancelled", "payment_timeout")
    assert await stock_settles(http, seller, product_id, (3, 0)) == (3, 0)
    for _ in range(100):  # the provider's late answer, and the void of whatever it authorized
        money = await ledger(body["order_id"])
        if money["live_authorizations"] == 0:
            break
        await asyncio.sleep(0.5)
    assert money["live_authorizations"] == 0 and money["captured"] == 0, money


async def test_a_flaky_provider_still_confirms(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, seller: dict[str, Any], member: Any
) -> None:
    product_id = await product(amqp, http, db, seller, stock=3)
    _, body, _ = await place(http, member, product_id, token="tok_flaky")
    order = await settled(http, member, body["order_id"])
    assert order["status"] == "confirmed" and order["payment_status"] == "captured", order


async def test_the_same_idempotency_key_places_one_order(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, seller: dict[str, Any], member: Any
) -> None:
    product_id = await product(amqp, http, db, seller, stock=5)
    key = str(uuid.uuid4())
    results = await asyncio.gather(*(place(http, member, product_id, key=key) for _ in range(5)))
    assert {status for status, _, _ in results} == {202}
    assert len({body["order_id"] for _, body, _ in results}) == 1
    status, problem, _ = await place(http, member, product_id, key=key, quantity=2)
    assert status == 422 and problem["errors"][0]["field"] == "Idempotency-Key", problem
    await settled(http, member, results[0][1]["order_id"])
    assert await stock_settles(http, seller, product_id, (4, 0)) == (4, 0)


async def test_a_hundred_orders_for_ten_units_confirm_exactly_ten(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, seller: dict[str, Any], member: Any
) -> None:
    product_id = await product(amqp, http, db, seller, stock=10)
    placed = await asyncio.gather(*(place(http, member, product_id) for _ in range(100)))
    assert all(status == 202 for status, _, _ in placed)
    orders = await asyncio.gather(*(settled(http, member, body["order_id"], within=90) for _, body, _ in placed))
    confirmed = [o for o in orders if o["status"] == "confirmed"]
    assert len(confirmed) == 10
    assert {o["cancel_reason"] for o in orders if o["status"] == "cancelled"} == {"out_of_stock"}
    assert await stock_settles(http, seller, product_id, (0, 0)) == (0, 0)


async def test_a_thousand_buyers_for_a_hundred_units_confirm_exactly_a_hundred(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, seller: dict[str, Any]
) -> None:
    """A hot product (issue 14): 1,000 orders from 50 members through HTTP, 64 in flight."""
    product_id = await product(amqp, http, db, seller, stock=100)
    buyers = []
    for _ in range(50):
        user = await register(http)
        buyers.append(await login(http, user["email"], user["password"]))
    lanes = asyncio.Semaphore(64)

    async def buy(n: int) -> int:
        async with lanes:
            status, body, _ = await place(http, buyers[n % len(buyers)], product_id)
            assert status == 202, body
            return status

    await asyncio.gather(*(buy(n) for n in range(1000)))
    query = text(
        "SELECT o.status, o.cancel_reason, count(*) FROM orders.orders o JOIN orders.order_lines l USING (order_id) "
        "WHERE l.product_id = :p GROUP BY 1, 2"
    )
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        async with db.connect() as conn:
            outcomes = {(row[0], row[1]): row[2] for row in await conn.execute(query, {"p": product_id})}
        if sum(n for (status, _), n in outcomes.items() if status in FINAL) == 1000:
            break
        assert asyncio.get_running_loop().time() < deadline, outcomes
        await asyncio.sleep(0.5)
    assert outcomes == {("confirmed", None): 100, ("cancelled", "out_of_stock"): 900}
    assert await stock_settles(http, seller, product_id, (0, 0)) == (0, 0)


# --- status changes -----------------------------------------------------------------------


async def put_status(http: aiohttp.ClientSession, who: dict[str, Any], order_id: str, status: str) -> int:
    async with http.put(
        f"/api/orders/{order_id}", json={"status": status}, headers=bearer(who["access_token"])
    ) as resp:
        return resp.status


async def returns(db: AsyncEngine, order_id: str) -> list[tuple[int, int]]:
    """The `return` movements of an order's stock: (Δavailable, Δreserved) per row."""
    async with db.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT delta_available, delta_reserved FROM inventory.stock_movements "
                "WHERE reference = :o AND kind = 'return'"
            ),
            {"o": order_id},
        )
        return [(row.delta_available, row.delta_reserved) for row in rows]


async def test_cancel_after_capture_refunds_and_returns_the_stock(
    http: aiohttp.ClientSession,
    amqp: AbstractRobustConnection,
    db: AsyncEngine,
    bus: Bus,
    stack: Stack,
    seller: dict[str, Any],
    member: Any,
) -> None:
    product_id = await product(amqp, http, db, seller, stock=3)
    _, body, _ = await place(http, member, product_id, quantity=2)
    order_id = body["order_id"]
    await settled(http, member, order_id)
    assert await stock_settles(http, seller, product_id, (1, 0)) == (1, 0)  # committed: sold
    assert await put_status(http, member, order_id, "cancelled") == 200
    order = await settled(http, member, order_id, until=lambda o: o["payment_status"] == "refunded")
    assert (order["status"], order["cancel_reason"]) == ("cancelled", "customer_request")
    money = await ledger(order_id)
    assert money["net_captured"] == 0 and money["refunded"] == 3998, money
    assert await stock_settles(http, seller, product_id, (3, 0)) == (3, 0)  # back on sale
    assert await returns(db, order_id) == [(2, 0)]
    assert await put_status(http, member, order_id, "cancelled") == 409
    # A repeated return (a redelivery, a resend by the saga) moves nothing.
    saga = await service_token(bus, stack.env)
    reply = await bus.call(RETURN_STOCK.routing_key, {"order_id": order_id}, token=saga)
    assert reply["ok"] and reply["data"]["status"] == "returned", reply
    assert await stock(http, seller, product_id) == (3, 0) and await returns(db, order_id) == [(2, 0)]


async def test_a_cancelled_shipped_order_is_refunded_but_not_restocked(
    http: aiohttp.ClientSession,
    amqp: AbstractRobustConnection,
    db: AsyncEngine,
    seller: dict[str, Any],
    admin: dict[str, Any],
    member: Any,
) -> None:
    product_id = await product(amqp, http, db, seller, stock=3)
    _, body, _ = await place(http, member, product_id)
    order_id = body["order_id"]
    await settled(http, member, order_id)
    assert await put_status(http, seller, order_id, "shipped") == 200
    assert await put_status(http, admin, order_id, "cancelled") == 200
    order = await settled(http, member, order_id, until=lambda o: o["payment_status"] == "refunded")
    assert order["cancel_reason"] == "admin"
    assert await stock_settles(http, seller, product_id, (2, 0)) == (2, 0)  # the goods are on their way
    assert await returns(db, order_id) == []


async def test_the_seller_ships_and_delivers_and_the_customer_may_not(
    http: aiohttp.ClientSession,
    amqp: AbstractRobustConnection,
    db: AsyncEngine,
    seller: dict[str, Any],
    admin: dict[str, Any],
    member: Any,
) -> None:
    product_id = await product(amqp, http, db, seller, stock=3)
    _, body, _ = await place(http, member, product_id)
    order_id = body["order_id"]
    await settled(http, member, order_id)
    assert (await get(http, seller, order_id))[0] == 200  # a seller with a line sees it
    other_seller = await make_seller(http, admin)
    assert (await get(http, other_seller, order_id))[0] == 404
    assert await put_status(http, member, order_id, "shipped") == 403
    assert await put_status(http, seller, order_id, "delivered") == 409
    assert await put_status(http, seller, order_id, "shipped") == 200
    assert await put_status(http, member, order_id, "cancelled") == 409  # shipped: too late for the customer
    assert await put_status(http, seller, order_id, "delivered") == 200
    assert await put_status(http, admin, order_id, "cancelled") == 409
    _, order = await get(http, member, order_id)
    assert [h["status"] for h in order["history"]] == ["pending", "confirmed", "shipped", "delivered"]


async def test_list_user_orders_pages_newest_first(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, seller: dict[str, Any], member: Any
) -> None:
    product_id = await product(amqp, http, db, seller, stock=10)
    ids = [(await place(http, member, product_id))[1]["order_id"] for _ in range(3)]
    url = f"/api/orders/user/{member['user']['user_id']}"
    async with http.get(url, params={"limit": "2"}, headers=bearer(member["access_token"])) as resp:
        first = await resp.json()
    assert [o["order_id"] for o in first["items"]] == ids[::-1][:2] and first["next_cursor"]
    params = {"limit": "2", "cursor": first["next_cursor"]}
    async with http.get(url, params=params, headers=bearer(member["access_token"])) as resp:
        second = await resp.json()
    assert [o["order_id"] for o in second["items"]] == ids[:1] and second["next_cursor"] is None
    # "My orders": the same list without naming oneself; someone else's is their own (empty).
    async with http.get("/api/orders", params={"limit": "2"}, headers=bearer(member["access_token"])) as resp:
        mine = await resp.json()
    assert [o["order_id"] for o in mine["items"]] == ids[::-1][:2] and mine["next_cursor"]
    params = {"limit": "2", "cursor": mine["next_cursor"]}
    async with http.get("/api/orders", params=params, headers=bearer(member["access_token"])) as resp:
        assert [o["order_id"] for o in (await resp.json())["items"]] == ids[:1]
    stranger = await register(http)
    session = await login(http, stranger["email"], stranger["password"])
    async with http.get("/api/orders", headers=bearer(session["access_token"])) as resp:
        assert resp.status == 200 and (await resp.json())["items"] == []
    async with http.get("/api/orders") as resp:
        assert resp.status == 401


async def test_the_owner_follows_status_changes_as_server_sent_events(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, seller: dict[str, Any], member: Any
) -> None:
    product_id = await product(amqp, http, db, seller, stock=3)
    _, body, _ = await place(http, member, product_id, token="tok_chargeDeclined")
    async with http.get(f"/api/orders/{body['order_id']}/events", headers=bearer(member["access_token"])) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        stream = await asyncio.wait_for(resp.text(), 40)  # the stream ends once the order is cancelled
    # Placed, its payment failed (to pay again until the window's end), then cancelled once it passed.
    assert stream.count("event: status") == 3 and '"payment_status": "failed"' in stream, stream
    assert '"status": "cancelled"' in stream and '"cancel_reason": "payment_declined"' in stream, stream


# --- partners on the broker ---------------------------------------------------------------


@pytest.fixture(scope="module")
async def partner_token(stack: Stack, http: aiohttp.ClientSession) -> AsyncIterator[str]:
    """A partner allowed to place orders for members, and its client-credentials token."""
    name = f"shop-{uuid.uuid4().hex[:8]}"
    done = agora_cli(
        stack.env, *("partners", "create", name, "--scopes", "orders:write,orders:read,orders:members", "--json")
    )
    assert done.returncode == 0, done.stderr
    partner = json.loads(done.stdout)
    form = {"grant_type": "client_credentials", "client_id": partner["client_id"]}
    form["client_secret"] = partner["client_secret"]
    async with http.post("/api/oauth/token", data=form) as resp:
        assert resp.status == 200, await resp.text()
        token = (await resp.json())["access_token"]
    yield str(token)
    broker.management_api("DELETE", f"/users/partner-{name}")


def dead_lettered(stack: Stack, queue: str, reason: str) -> float:
    return worker_metric(stack.workers["orders"].port, "agora_dead_lettered_total", queue=queue, reason=reason)


async def test_a_partner_places_an_order_for_a_member_and_a_forged_token_is_dead_lettered(
    http: aiohttp.ClientSession,
    amqp: AbstractRobustConnection,
    db: AsyncEngine,
    bus: Bus,
    stack: Stack,
    seller: dict[str, Any],
    member: Any,
    partner_token: str,
) -> None:
    product_id = await product(amqp, http, db, seller, stock=3)
    order_id = str(uuid.uuid4())
    command = {
        "order_id": order_id,
        "items": [{"product_id": product_id, "quantity": 1}],
        "shipping_address": ADDRESS,
        "payment_token": "tok_visa",
        "on_behalf_of": member["user"]["user_id"],
    }
    reply = await bus.call(PLACE_ORDER.routing_key, command, token=partner_token)
    assert reply["ok"] and reply["data"]["order_id"] == order_id, reply
    assert reply["data"]["user_id"] == member["user"]["user_id"]
    again = await bus.call(PLACE_ORDER.routing_key, command, token=partner_token)
    assert again["ok"] and again["data"]["order_id"] == order_id  # the partner's order_id is its idempotency key
    order = await settled(http, member, order_id)  # the member sees it
    assert order["status"] == "confirmed"

    # Agora's own services may not place orders; a forged token is dead-lettered, no order.
    saga = await service_token(bus, stack.env)
    refused = await bus.call(PLACE_ORDER.routing_key, {**command, "order_id": str(uuid.uuid4())}, token=saga)
    assert not refused["ok"] and refused["error"]["code"] == "forbidden"
    before = dead_lettered(stack, PLACE_ORDER.queue, "bad_actor")
    forged_id = str(uuid.uuid4())
    forged = partner_token[:-6] + ("AAAAAA" if not partner_token.endswith("AAAAAA") else "BBBBBB")
    bad = await bus.call(PLACE_ORDER.routing_key, {**command, "order_id": forged_id}, token=forged)
    assert not bad["ok"] and bad["error"]["code"] == "unauthorized"
    assert dead_lettered(stack, PLACE_ORDER.queue, "bad_actor") == before + 1
    async with db.connect() as conn:
        found = await conn.scalar(text("SELECT count(*) FROM orders.orders WHERE order_id = :o"), {"o": forged_id})
    assert found == 0
