"""Inventory end to end: stock over HTTP, reservations over the broker, against the real services.

Products come from `catalog.product_created.v1` published straight to `agora.events`
(as the catalog's relay would); reservations are sent as the order saga sends them,
with a service token, and answered both by reply and by event.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.catalog import PRODUCT_DELETED, ProductDeleted
from contracts.inventory import COMMIT_STOCK, RELEASE_STOCK, RESERVE_STOCK
from contracts.topology import EVENTS_EXCHANGE
from edge.routes import ENDPOINTS
from harness.accounts import bearer, login, make_seller, register
from harness.bus import Bus, list_product, publish_event, service_token
from harness.stack import Stack
from tests.support import worker_metric

PUBLIC_FIELDS = {"product_id", "variant_id", "stock", "updated_at"}
OWNER_FIELDS = PUBLIC_FIELDS | {"reserved", "low_stock_threshold"}


# --- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture(scope="module")
async def saga(bus: Bus, stack: Stack) -> str:
    """A service token: the order saga's credentials, as any Agora worker gets them."""
    return await service_token(bus, stack.env)


@pytest.fixture(scope="module")
async def seller(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    return await make_seller(http, admin)


@pytest.fixture
async def events(amqp: AbstractRobustConnection) -> AsyncIterator[AbstractQueue]:
    """Every inventory event published from now on."""
    channel = await amqp.channel()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(EVENTS_EXCHANGE, "inventory.#")
    yield queue
    await channel.close()


async def collect(queue: AbstractQueue, routing_key: str, product_id: str, *, settle: float = 2.0) -> list[Any]:
    """Bodies of `routing_key` events about `product_id` (or order), until none came for `settle` s."""
    found: list[Any] = []
    quiet_since = asyncio.get_running_loop().time()
    while asyncio.get_running_loop().time() - quiet_since < settle:
        message = await queue.get(fail=False, no_ack=True)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        quiet_since = asyncio.get_running_loop().time()
        body = json.loads(message.body)
        about = {str(body.get("product_id")), str(body.get("order_id"))}
        if message.routing_key == routing_key and product_id in about:
            found.append(body)
    return found


async def stock_of(http: aiohttp.ClientSession, product_id: str, token: str | None = None) -> dict[str, Any]:
    async with http.get(f"/api/inventory/{product_id}", headers=bearer(token) if token else {}) as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body


async def put_stock(
    http: aiohttp.ClientSession, product_id: str, token: str | None, body: Any
) -> tuple[int, dict[str, Any]]:
    async with http.put(f"/api/inventory/{product_id}", json=body, headers=bearer(token) if token else {}) as resp:
        return resp.status, await resp.json()


def reserve(order_id: uuid.UUID, *lines: tuple[str, int], ttl: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": str(order_id),
        "lines": [{"product_id": p, "quantity": q} for p, q in lines],
    }
    if ttl is not None:
        body["ttl_seconds"] = ttl
    return body


async def ledger(db: AsyncEngine, product_id: str) -> list[Any]:
    async with db.connect() as conn:
        rows = await conn.execute(
            text("SELECT * FROM inventory.stock_movements WHERE product_id = :p ORDER BY id"), {"p": product_id}
        )
        return list(rows)


async def assert_ledger_adds_up(db: AsyncEngine, product_id: str) -> None:
    """The ledger's deltas sum to the stock row, and no movement left anything negative."""
    async with db.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT s.available, s.reserved, sum(m.delta_available) AS da, sum(m.delta_reserved) AS dr, "
                    "min(m.available_after) AS min_a, min(m.reserved_after) AS min_r "
                    "FROM inventory.stock s JOIN inventory.stock_movements m USING (product_id) "
                    "WHERE s.product_id = :p GROUP BY s.available, s.reserved"
                ),
                {"p": product_id},
            )
        ).one()
    assert (row.available, row.reserved) == (row.da, row.dr)
    assert row.min_a >= 0 and row.min_r >= 0
    # Entry by entry, each variant's levels after are the previous ones plus the change.
    levels: dict[Any, tuple[int, int]] = {}
    for entry in await ledger(db, product_id):
        available, reserved = levels.get(entry.variant_id, (0, 0))
        assert (entry.available_after, entry.reserved_after) == (
            available + entry.delta_available,
            reserved + entry.delta_reserved,
        ), entry
        levels[entry.variant_id] = (entry.available_after, entry.reserved_after)


def assert_sold_out(replies: list[dict[str, Any]], product: str, *, reserved: int) -> None:
    """Of one-unit reservations of `product`, exactly `reserved` succeeded, and every other
    one failed because its one line was out of stock."""
    assert all(reply["ok"] for reply in replies), [r for r in replies if not r["ok"]][:3]
    statuses = [reply["data"]["status"] for reply in replies]
    assert statuses.count("reserved") == reserved and statuses.count("failed") == len(replies) - reserved
    for reply in replies:
        if reply["data"]["status"] == "failed":
            assert reply["data"]["failed"] == [
                {"product_id": product, "variant_id": product, "requested": 1, "available": 0, "reason": "out_of_stock"}
            ]


# --- stock over HTTP ----------------------------------------------------------------------


async def test_a_listed_product_gets_stock_that_everyone_sees_and_its_seller_sees_more(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, admin: dict[str, Any], seller: dict[str, Any]
) -> None:
    product = await list_product(amqp, http, seller["user"]["user_id"], stock=7)
    guest = await stock_of(http, product)
    assert guest.keys() == PUBLIC_FIELDS and guest["stock"] == 7 and guest["product_id"] == product

    owner = await stock_of(http, product, seller["access_token"])
    assert owner.keys() == OWNER_FIELDS
    assert (owner["stock"], owner["reserved"], owner["low_stock_threshold"]) == (7, 0, 0)
    assert (await stock_of(http, product, admin["access_token"])).keys() == OWNER_FIELDS

    member = await register(http)
    member_session = await login(http, member["email"], member["password"])
    another_seller = await make_seller(http, admin)
    for caller in (member_session, another_seller):
        assert (await stock_of(http, product, caller["access_token"])).keys() == PUBLIC_FIELDS

    async with http.get(f"/api/inventory/{product}", headers=bearer("not-a-token")) as resp:
        assert resp.status == 401  # a credential that is sent must be valid
    for missing in (uuid.uuid4(), "not-a-uuid"):
        async with http.get(f"/api/inventory/{missing}") as resp:
            assert resp.status == 404


async def test_the_seller_sets_and_adjusts_stock_and_every_change_is_in_the_ledger(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, seller: dict[str, Any], db: AsyncEngine
) -> None:
    product = await list_product(amqp, http, seller["user"]["user_id"], stock=3)
    token = seller["access_token"]
    status, body = await put_stock(http, product, token, {"stock": 10})
    assert status == 200 and body["stock"] == 10 and body["reserved"] == 0
    status, body = await put_stock(http, product, token, {"delta": -4, "reason": "damaged in transit"})
    assert status == 200 and body["stock"] == 6
    status, body = await put_stock(http, product, token, {"delta": 5, "reason": "restock", "low_stock_threshold": 2})
    assert status == 200 and (body["stock"], body["low_stock_threshold"]) == (11, 2)
    status, body = await put_stock(http, product, token, {"low_stock_threshold": 4})
    assert status == 200 and (body["stock"], body["low_stock_threshold"]) == (11, 4)

    rows = await ledger(db, product)
    assert [(r.kind, r.delta_available, r.available_after) for r in rows] == [
        ("created", 3, 3),
        ("set", 7, 10),
        ("adjust", -4, 6),
        ("adjust", 5, 11),
    ]
    assert rows[2].reason == "damaged in transit"
    assert {str(r.actor_id) for r in rows[1:]} == {seller["user"]["user_id"]}
    assert {r.actor_role for r in rows[1:]} == {"seller"}
    await assert_ledger_adds_up(db, product)

    # Taking more than there is conflicts with the stock; bad bodies are 422.
    status, body = await put_stock(http, product, token, {"delta": -12, "reason": "too many"})
    assert status == 409, body
    for bad in (
        {"stock": -1},
        {"stock": 1, "delta": 1},
        {},
        {"delta": 0},
        {"reason": "nothing else"},
        {"stock": 1, "product_id": str(uuid.uuid4())},
        {"stock": "lots"},
        {"stock": 10**12},
    ):
        status, body = await put_stock(http, product, token, bad)
        assert status == 422, (bad, body)
    assert (await stock_of(http, product))["stock"] == 11


async def test_only_the_products_seller_or_an_admin_changes_stock(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, admin: dict[str, Any], seller: dict[str, Any]
) -> None:
    product = await list_product(amqp, http, seller["user"]["user_id"], stock=5)
    member = await register(http)
    member_session = await login(http, member["email"], member["password"])
    other_seller = await make_seller(http, admin)
    assert (await put_stock(http, product, None, {"stock": 1}))[0] == 401
    # Everyone may see the stock, so refusing to change it reveals nothing: 403, not 404.
    assert (await put_stock(http, product, member_session["access_token"], {"stock": 1}))[0] == 403
    assert (await put_stock(http, product, other_seller["access_token"], {"stock": 1}))[0] == 403
    assert (await put_stock(http, product, admin["access_token"], {"stock": 9}))[0] == 200
    assert (await put_stock(http, str(uuid.uuid4()), seller["access_token"], {"stock": 1}))[0] == 404
    assert (await stock_of(http, product))["stock"] == 9


async def test_low_stock_is_announced_once_per_crossing(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, seller: dict[str, Any], events: AbstractQueue
) -> None:
    product = await list_product(amqp, http, seller["user"]["user_id"], stock=10)
    token = seller["access_token"]
    steps: list[dict[str, Any]] = [
        {"low_stock_threshold": 5},
        {"delta": -3},  # 7: above
        {"delta": -2},  # 5: crosses
        {"delta": -1},  # 4: still low, nothing new
        {"stock": 10},  # back above
        {"delta": -6},  # 4: crosses again
        {"low_stock_threshold": 2},  # 4 > 2: above again
        {"low_stock_threshold": 4},  # 4 <= 4: the threshold crosses
    ]
    for step in steps:
        assert (await put_stock(http, product, token, step))[0] == 200
    low = await collect(events, "inventory.low_stock.v1", product)
    assert [(e["available"], e["threshold"]) for e in low] == [(5, 5), (4, 5), (4, 4)]
    assert {e["seller_id"] for e in low} == {seller["user"]["user_id"]}


async def test_stock_never_goes_negative_under_concurrent_adjustments(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, seller: dict[str, Any], db: AsyncEngine
) -> None:
    product = await list_product(amqp, http, seller["user"]["user_id"], stock=20)
    results = await asyncio.gather(
        *(put_stock(http, product, seller["access_token"], {"delta": -1, "reason": "sold offline"}) for _ in range(50))
    )
    statuses = sorted(status for status, _ in results)
    assert statuses.count(200) == 20 and statuses.count(409) == 30, statuses
    assert (await stock_of(http, product))["stock"] == 0
    await assert_ledger_adds_up(db, product)
    # And the database itself refuses, whoever writes.
    with pytest.raises(IntegrityError):
        async with db.begin() as conn:
            await conn.execute(
                text("UPDATE inventory.stock SET available = available - 1 WHERE product_id = :p"), {"p": product}
            )


async def test_a_deleted_product_is_no_longer_sold(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, seller: dict[str, Any], bus: Bus, saga: str
) -> None:
    product = await list_product(amqp, http, seller["user"]["user_id"], stock=5)
    held = uuid.uuid4()
    assert (await bus.call(RESERVE_STOCK.routing_key, reserve(held, (product, 2)), token=saga))["ok"]
    deleted = ProductDeleted(
        product_id=uuid.UUID(product), seller_id=uuid.UUID(seller["user"]["user_id"]), deleted_at=datetime.now(UTC)
    )
    await publish_event(amqp, PRODUCT_DELETED, deleted)
    for _ in range(100):
        async with http.get(f"/api/inventory/{product}") as resp:
            if resp.status == 404:
                break
        await asyncio.sleep(0.05)
    assert resp.status == 404
    assert (await put_stock(http, product, seller["access_token"], {"stock": 3}))[0] == 404
    late = await bus.call(RESERVE_STOCK.routing_key, reserve(uuid.uuid4(), (product, 1)), token=saga)
    assert late["data"]["status"] == "failed"
    assert late["data"]["failed"][0]["reason"] == "unavailable"
    # An order already holding stock still completes.
    assert (await bus.call(COMMIT_STOCK.routing_key, {"order_id": str(held)}, token=saga))["data"]["status"] == (
        "committed"
    )


# --- reservations over the broker ---------------------------------------------------------


async def test_200_concurrent_reservations_for_50_units_exactly_50_succeed(
    http: aiohttp.ClientSession,
    amqp: AbstractRobustConnection,
    seller: dict[str, Any],
    bus: Bus,
    saga: str,
    db: AsyncEngine,
) -> None:
    product = await list_product(amqp, http, seller["user"]["user_id"], stock=50)
    orders = [uuid.uuid4() for _ in range(200)]
    replies = await asyncio.gather(
        *(bus.call(RESERVE_STOCK.routing_key, reserve(order, (product, 1)), token=saga, within=60) for order in orders)
    )
    assert_sold_out(replies, product, reserved=50)
    stock = await stock_of(http, product, seller["access_token"])
    assert (stock["stock"], stock["reserved"]) == (0, 50)
    rows = await ledger(db, product)
    assert sum(1 for r in rows if r.kind == "reserve") == 50
    await assert_ledger_adds_up(db, product)

    # The saga confirms them all: the reserved units are sold.
    won = [order for order, reply in zip(orders, replies, strict=True) if reply["data"]["status"] == "reserved"]
    commits = await asyncio.gather(
        *(bus.call(COMMIT_STOCK.routing_key, {"order_id": str(order)}, token=saga, within=60) for order in won)
    )
    assert {c["data"]["status"] for c in commits} == {"committed"}
    stock = await stock_of(http, product, seller["access_token"])
    assert (stock["stock"], stock["reserved"]) == (0, 0)
    await assert_ledger_adds_up(db, product)


def batched(stack: Stack, outcome: str) -> tuple[float, float]:
    """The inventory worker's batches of reservations and the deliveries in them, so far."""
    port, labels = stack.workers["inventory"].port, {"queue": RESERVE_STOCK.queue, "outcome": outcome}
    return worker_metric(port, "agora_batches_total", **labels), worker_metric(
        port, "agora_batched_deliveries_total", **labels
    )


async def test_reservations_that_arrive_together_are_decided_together_as_one_after_another(
    http: aiohttp.ClientSession,
    amqp: AbstractRobustConnection,
    seller: dict[str, Any],
    bus: Bus,
    saga: str,
    db: AsyncEngine,
    stack: Stack,
    events: AbstractQueue,
) -> None:
    """Issue 14's batch consumption: reservations that pile up are handled in one
    transaction, with the same outcome as one at a time, down to a duplicate delivery and
    a second command for an order in the same batch."""
    scarce = await list_product(amqp, http, seller["user"]["user_id"], stock=3)
    plenty = await list_product(amqp, http, seller["user"]["user_id"], stock=100)
    orders = [uuid.uuid4() for _ in range(40)]
    bodies = [reserve(order, (scarce, 1), (plenty, 2)) for order in orders]
    first_id = str(uuid.uuid4())
    batches_before, deliveries_before = batched(stack, "together")
    _, alone_before = batched(stack, "alone")
    replies, _, again = await asyncio.gather(
        asyncio.gather(
            *(
                bus.call(RESERVE_STOCK.routing_key, body, token=saga, message_id=first_id if i == 0 else None)
                for i, body in enumerate(bodies)
            )
        ),
        bus.send(RESERVE_STOCK.routing_key, bodies[0], token=saga, message_id=first_id),  # the same delivery again
        bus.call(RESERVE_STOCK.routing_key, bodies[1], token=saga),  # the same order, a new command
    )
    batches_after, deliveries_after = batched(stack, "together")
    # They did go together: many of the 42 deliveries, in fewer batches than deliveries, and
    # none fell back to one at a time (which would give the same answers). How many pile up
    # depends on how fast the worker is against the publisher: one that finds no batch
    # running and nothing beside it goes the single way (19 of 42 went together in the
    # quickest run seen, all of them in a busy one).
    assert deliveries_after - deliveries_before >= 10
    assert batches_after - batches_before < deliveries_after - deliveries_before
    assert batched(stack, "alone")[1] == alone_before

    assert_sold_out(replies, scarce, reserved=3)
    assert again["data"] == replies[1]["data"]
    assert (await stock_of(http, scarce, seller["access_token"]))["stock"] == 0
    assert (await stock_of(http, plenty, seller["access_token"]))["reserved"] == 6
    for product in (scarce, plenty):
        assert sum(1 for r in await ledger(db, product) if r.kind == "reserve") == 3
        await assert_ledger_adds_up(db, product)
    # The row reached its threshold once, and said so once.
    assert len(await collect(events, "inventory.low_stock.v1", scarce)) == 1

    # A refusal in a batch (a seller may not reserve; sent amid a burst, so it lands in a
    # batch with others) sends the batch back one at a time: the refused command is
    # refused, the others are reserved as ever.
    tokens = [saga] * 10 + [seller["access_token"]] + [saga] * 10
    mixed = await asyncio.gather(
        *(bus.call(RESERVE_STOCK.routing_key, reserve(uuid.uuid4(), (plenty, 1)), token=token) for token in tokens)
    )
    assert mixed[10]["error"]["code"] == "forbidden"
    assert [reply["data"]["status"] for reply in mixed[:10] + mixed[11:]] == ["reserved"] * 20
    assert batched(stack, "alone")[1] > alone_before
    assert (await stock_of(http, plenty, seller["access_token"]))["reserved"] == 26


async def test_a_reservation_takes_every_line_or_none_and_says_which_failed(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, seller: dict[str, Any], bus: Bus, saga: str
) -> None:
    plenty = await list_product(amqp, http, seller["user"]["user_id"], stock=5)
    scarce = await list_product(amqp, http, seller["user"]["user_id"], stock=1)
    unknown = str(uuid.uuid4())
    reply = await bus.call(
        RESERVE_STOCK.routing_key, reserve(uuid.uuid4(), (plenty, 3), (scarce, 2), (unknown, 1)), token=saga
    )
    assert reply["ok"] and reply["data"]["status"] == "failed"
    failed = {line["product_id"]: line for line in reply["data"]["failed"]}
    assert failed.keys() == {scarce, unknown}
    assert failed[scarce] == {
        "product_id": scarce,
        "variant_id": scarce,  # its default variant
        "requested": 2,
        "available": 1,
        "reason": "out_of_stock",
    }
    assert failed[unknown]["reason"] == "unavailable"
    assert (await stock_of(http, plenty))["stock"] == 5 and (await stock_of(http, scarce))["stock"] == 1

    # Lines for one product add up; given in any order, they are reserved together.
    reply = await bus.call(
        RESERVE_STOCK.routing_key, reserve(uuid.uuid4(), (scarce, 1), (plenty, 2), (plenty, 2)), token=saga
    )
    assert reply["data"]["status"] == "reserved"
    assert sorted((line["product_id"], line["quantity"]) for line in reply["data"]["lines"]) == sorted(
        [(plenty, 4), (scarce, 1)]
    )
    assert (await stock_of(http, plenty))["stock"] == 1 and (await stock_of(http, scarce))["stock"] == 0


async def test_reserve_release_and_commit_are_idempotent_under_redelivery(
    http: aiohttp.ClientSession,
    amqp: AbstractRobustConnection,
    seller: dict[str, Any],
    bus: Bus,
    saga: str,
    events: AbstractQueue,
) -> None:
    product = await list_product(amqp, http, seller["user"]["user_id"], stock=10)
    order = uuid.uuid4()
    body = reserve(order, (product, 3))

    # The same message twice: the second is a duplicate (no reply, no effect).
    message_id = str(uuid.uuid4())
    first = await bus.call(RESERVE_STOCK.routing_key, body, token=saga, message_id=message_id)
    await bus.send(RESERVE_STOCK.routing_key, body, token=saga, message_id=message_id)
    # A new message for the same order: the same outcome, nothing taken twice.
    again = await bus.call(RESERVE_STOCK.routing_key, body, token=saga)
    assert first["data"]["status"] == "reserved" and again["data"] == first["data"]
    assert (await stock_of(http, product, seller["access_token"]))["reserved"] == 3

    release = {"order_id": str(order), "reason": "payment declined"}
    released = await bus.call(RELEASE_STOCK.routing_key, release, token=saga)
    assert released["data"]["status"] == "released"
    release_id = str(uuid.uuid4())
    for _ in range(2):
        await bus.send(RELEASE_STOCK.routing_key, {"order_id": str(order)}, token=saga, message_id=release_id)
    again = await bus.call(RELEASE_STOCK.routing_key, {"order_id": str(order)}, token=saga)
    assert again["data"]["status"] == "released"
    # A reserve that comes after the release does not take the stock again.
    late = await bus.call(RESERVE_STOCK.routing_key, body, token=saga)
    assert late["data"]["status"] == "released"
    stock = await stock_of(http, product, seller["access_token"])
    assert (stock["stock"], stock["reserved"]) == (10, 0)
    # Nothing to commit once released.
    refused = await bus.call(COMMIT_STOCK.routing_key, {"order_id": str(order)}, token=saga)
    assert not refused["ok"] and refused["error"]["code"] == "conflict"

    # Commit, twice by redelivery and once more by a new message: sold once.
    sold = uuid.uuid4()
    assert (await bus.call(RESERVE_STOCK.routing_key, reserve(sold, (product, 4)), token=saga))["ok"]
    commit_id = str(uuid.uuid4())
    committed = await bus.call(COMMIT_STOCK.routing_key, {"order_id": str(sold)}, token=saga, message_id=commit_id)
    await bus.send(COMMIT_STOCK.routing_key, {"order_id": str(sold)}, token=saga, message_id=commit_id)
    again = await bus.call(COMMIT_STOCK.routing_key, {"order_id": str(sold)}, token=saga)
    assert committed["data"]["status"] == again["data"]["status"] == "committed"
    # A release after the commit changes nothing: the goods are sold (returns are an adjustment).
    after = await bus.call(RELEASE_STOCK.routing_key, {"order_id": str(sold)}, token=saga)
    assert after["data"]["status"] == "committed"
    stock = await stock_of(http, product, seller["access_token"])
    assert (stock["stock"], stock["reserved"]) == (6, 0)

    # Every command was answered by an event too (for a saga that sends through its outbox).
    reserved_events = await collect(events, "inventory.stock_reserved.v1", str(sold), settle=1.0)
    assert [e["status"] for e in reserved_events] == ["reserved"]


async def test_a_release_before_the_reserve_bars_the_order(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, seller: dict[str, Any], bus: Bus, saga: str
) -> None:
    product = await list_product(amqp, http, seller["user"]["user_id"], stock=2)
    order = uuid.uuid4()
    released = await bus.call(RELEASE_STOCK.routing_key, {"order_id": str(order)}, token=saga)
    assert released["data"] == {**released["data"], "status": "released", "lines": []}
    late = await bus.call(RESERVE_STOCK.routing_key, reserve(order, (product, 1)), token=saga)
    assert late["data"]["status"] == "released"
    assert (await stock_of(http, product))["stock"] == 2
    missing = await bus.call(COMMIT_STOCK.routing_key, {"order_id": str(uuid.uuid4())}, token=saga)
    assert not missing["ok"] and missing["error"]["code"] == "not_found"


async def test_the_sweeper_returns_expired_reservations(
    http: aiohttp.ClientSession,
    amqp: AbstractRobustConnection,
    seller: dict[str, Any],
    bus: Bus,
    saga: str,
    db: AsyncEngine,
    events: AbstractQueue,
) -> None:
    product = await list_product(amqp, http, seller["user"]["user_id"], stock=6)
    lapsing, retaken = uuid.uuid4(), uuid.uuid4()
    for order in (lapsing, retaken):
        reply = await bus.call(RESERVE_STOCK.routing_key, reserve(order, (product, 2), ttl=1), token=saga)
        assert reply["data"]["status"] == "reserved"
    assert (await stock_of(http, product))["stock"] == 2
    for _ in range(100):
        stock = await stock_of(http, product, seller["access_token"])
        if stock["reserved"] == 0:
            break
        await asyncio.sleep(0.1)
    assert (stock["stock"], stock["reserved"]) == (6, 0)
    expired = await collect(events, "inventory.stock_released.v1", str(lapsing), settle=1.5)
    assert [e["status"] for e in expired] == ["expired"]
    rows = await ledger(db, product)
    assert sum(1 for r in rows if r.kind == "expire") == 2

    # Expiry is final and idempotent: a release is a no-op, a reserve takes nothing.
    assert (await bus.call(RELEASE_STOCK.routing_key, {"order_id": str(lapsing)}, token=saga))["data"]["status"] == (
        "expired"
    )
    assert (await bus.call(RESERVE_STOCK.routing_key, reserve(lapsing, (product, 2)), token=saga))["data"][
        "status"
    ] == "expired"
    # A commit that comes too late still succeeds while the stock is there (sold from available).
    committed = await bus.call(COMMIT_STOCK.routing_key, {"order_id": str(retaken)}, token=saga)
    assert committed["data"]["status"] == "committed"
    stock = await stock_of(http, product, seller["access_token"])
    assert (stock["stock"], stock["reserved"]) == (4, 0)
    await assert_ledger_adds_up(db, product)


async def test_reservations_are_for_services_and_admins_only(
    http: aiohttp.ClientSession,
    amqp: AbstractRobustConnection,
    admin: dict[str, Any],
    seller: dict[str, Any],
    bus: Bus,
) -> None:
    product = await list_product(amqp, http, seller["user"]["user_id"], stock=3)
    body = reserve(uuid.uuid4(), (product, 1))
    refused = await bus.call(RESERVE_STOCK.routing_key, body, token=seller["access_token"])
    assert not refused["ok"] and refused["error"]["code"] == "forbidden"
    anonymous = await bus.call(RESERVE_STOCK.routing_key, body)  # dead-lettered, with an answer
    assert not anonymous["ok"] and anonymous["error"]["code"] == "unauthorized"
    by_admin = await bus.call(RESERVE_STOCK.routing_key, body, token=admin["access_token"])
    assert by_admin["data"]["status"] == "reserved"
    assert (await stock_of(http, product))["stock"] == 2


# --- end to end with the catalog ----------------------------------------------------------


@pytest.mark.skipif(
    not any(e.method == "POST" and e.path == "/api/products" for e in ENDPOINTS), reason="no catalog routes yet"
)
async def test_a_product_listed_over_http_gets_its_stock_and_loses_it_when_deleted(
    http: aiohttp.ClientSession, admin: dict[str, Any], seller: dict[str, Any]
) -> None:
    slug = f"stock-{uuid.uuid4().hex[:8]}"
    async with http.post(
        "/api/categories", json={"slug": slug, "name": "Stock tests"}, headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 201, await resp.text()
    body = {"name": "Walnut desk", "price": "249.00", "currency": "USD", "category": slug, "stock": 7}
    async with http.post("/api/products", json=body, headers=bearer(seller["access_token"])) as resp:
        assert resp.status == 201, await resp.text()
        product = (await resp.json())["product_id"]
    for _ in range(100):
        async with http.get(f"/api/inventory/{product}") as resp:
            if resp.status == 200:
                break
        await asyncio.sleep(0.05)
    assert (await stock_of(http, product, seller["access_token"]))["stock"] == 7
    assert (await put_stock(http, product, seller["access_token"], {"delta": -2, "reason": "display model"}))[0] == 200
    async with http.delete(f"/api/products/{product}", headers=bearer(seller["access_token"])) as resp:
        assert resp.status == 204, await resp.text()
    for _ in range(100):
        async with http.get(f"/api/inventory/{product}") as resp:
            if resp.status == 404:
                break
        await asyncio.sleep(0.05)
    assert resp.status == 404
