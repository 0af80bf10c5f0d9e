"""The catalog through the HTTP API: products, ownership, prices, categories, search, pages, events."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from yarl import URL

from contracts.catalog import AVAILABILITY_CHANGED
from contracts.inventory import STOCK_CHANGED, StockChanged
from contracts.topology import EVENTS_EXCHANGE
from harness.accounts import bearer, create_admin, login, make_seller, register
from harness.bus import publish_event
from harness.processes import agora_cli
from harness.stack import Stack
from ops.seed import DEMO_PASSWORD
from tests.catalog_support import cache_settled, create_category, create_product, new_tag

_tag = new_tag
_category = create_category
_product = create_product


async def _search(http: aiohttp.ClientSession, **params: Any) -> dict[str, Any]:
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
    async with http.get("/api/products", params=query) as resp:
        assert resp.status == 200, await resp.text()
        result: dict[str, Any] = await resp.json()
        return result


async def _all_pages(http: aiohttp.ClientSession, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        page = await _search(http, **params, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


@pytest.fixture(scope="module")
async def seller(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    return await make_seller(http, admin)


@pytest.fixture(scope="module")
async def category(http: aiohttp.ClientSession, admin: dict[str, Any]) -> str:
    slug = f"things-{_tag()}"
    await _category(http, admin, slug)
    return slug


# --- products ---------------------------------------------------------------------------


async def test_product_lifecycle(
    http: aiohttp.ClientSession, db: AsyncEngine, seller: dict[str, Any], category: str
) -> None:
    auth = bearer(seller["access_token"])
    body = {
        "name": "Walnut Desk Lamp",
        "description": "Warm light, solid walnut.",
        "price": "19.99",
        "currency": "USD",
        "category": category,
        "image_url": "https://img.example/lamp.jpg",
        "stock": 7,
    }
    async with http.post("/api/products", json=body, headers=auth) as resp:
        assert resp.status == 201, await resp.text()
        created = await resp.json()
        assert resp.headers["Location"] == f"/api/products/{created['product_id']}"
    assert set(created) == {
        "product_id",
        "seller_id",
        "name",
        "description",
        "price",
        "currency",
        "category",
        "image_url",
        "created_at",
        "updated_at",
        "images",
        "options",
        "variants",
        "availability",
        "tax_class",
    }
    assert created["seller_id"] == seller["user"]["user_id"]
    assert (created["price"], created["currency"], created["category"]) == ("19.99", "USD", category)
    url = f"/api/products/{created['product_id']}"
    async with http.get(url) as resp:  # a guest reads it
        assert resp.status == 200
        assert await resp.json() == created
    async with db.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT price_minor, currency, available FROM catalog.products WHERE product_id = :p"),
                {"p": created["product_id"]},
            )
        ).one()
    assert tuple(stored) == (1999, "USD", 7)

    async with http.put(url, json={"price": "24.5", "image_url": None}, headers=auth) as resp:
        assert resp.status == 200, await resp.text()
        updated = await resp.json()
    assert updated["price"] == "24.50" and updated["image_url"] is None
    assert updated["name"] == body["name"] and updated["description"] == body["description"]
    assert updated["updated_at"] > created["updated_at"]

    async with http.delete(url, headers=auth) as resp:
        assert resp.status == 204
    for method in ("GET", "PUT", "DELETE"):
        async with http.request(method, url, json={"name": "x"}, headers=auth) as resp:
            assert resp.status == 404, method
    async with db.connect() as conn:
        deleted_at = await conn.scalar(
            text("SELECT deleted_at FROM catalog.products WHERE product_id = :p"), {"p": created["product_id"]}
        )
    assert deleted_at is not None  # withdrawn, not gone: orders keep referring to it
    page = await _search(http, category=category, limit=100)
    assert created["product_id"] not in {p["product_id"] for p in page["items"]}


async def test_events_are_published_through_the_outbox(
    http: aiohttp.ClientSession,
    db: AsyncEngine,
    amqp: aio_pika.abc.AbstractRobustConnection,
    seller: dict[str, Any],
    category: str,
) -> None:
    channel = await amqp.channel()
    queue = await channel.declare_queue(exclusive=True)
    for name in ("product_created", "product_updated", "product_deleted"):
        await queue.bind(EVENTS_EXCHANGE, f"catalog.{name}.v1")
    product = await _product(http, seller, category, stock=3, price="5.00")
    url = f"/api/products/{product['product_id']}"
    auth = bearer(seller["access_token"])
    async with http.put(url, json={"name": "Renamed"}, headers=auth) as resp:
        assert resp.status == 200
    async with http.delete(url, headers=auth) as resp:
        assert resp.status == 204
    received: dict[str, dict[str, Any]] = {}
    async with asyncio.timeout(15):
        async with queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    body = json.loads(message.body)
                    if body["product_id"] == product["product_id"]:
                        received[message.routing_key or ""] = body
                if len(received) == 3:
                    break
    created = received["catalog.product_created.v1"]
    assert created["initial_stock"] == 3 and created["price_minor"] == 500 and created["currency"] == "USD"
    assert created["seller_id"] == seller["user"]["user_id"]
    assert received["catalog.product_updated.v1"]["changed"] == ["name"]
    assert received["catalog.product_deleted.v1"]["seller_id"] == seller["user"]["user_id"]
    for _ in range(50):  # the relay marks a row sent once the broker confirmed it
        async with db.connect() as conn:
            unsent = await conn.scalar(
                text("SELECT count(*) FROM catalog.outbox WHERE body->>'product_id' = :p AND sent_at IS NULL"),
                {"p": product["product_id"]},
            )
        if unsent == 0:
            break
        await asyncio.sleep(0.1)
    assert unsent == 0
    await channel.close()


@pytest.mark.parametrize(
    ("price", "currency", "expected"),
    [
        ("19.99", "USD", "19.99"),
        ("20", "USD", "20.00"),
        ("0.01", "EUR", "0.01"),
        ("1500", "JPY", "1500"),
        ("1.234", "KWD", "1.234"),
        ("1000000", "USD", "1000000.00"),
    ],
)
async def test_accepted_prices(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str, price: str, currency: str, expected: str
) -> None:
    product = await _product(http, seller, category, price=price, currency=currency)
    assert (product["price"], product["currency"]) == (expected, currency)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"price": "19.999"}, "price"),  # more decimals than USD has
        ({"price": "1500.5", "currency": "JPY"}, "price"),
        ({"price": "-1.00"}, "price"),
        ({"price": "0"}, "price"),
        ({"price": "1000000.01"}, "price"),  # absurd
        ({"price": "99999999999999999999"}, "price"),
        ({"price": "1e3"}, "price"),
        ({"price": " 1.00"}, "price"),
        ({"price": 19.99}, "price"),  # a float is never money
        ({"price": 20}, "price"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "usd"}, "currency"),
        ({"category": "no-such-category"}, "category"),
        ({"category": "Not A Slug"}, "category"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "nul\x00byte"}, "name"),
        ({"image_url": "javascript:alert(1)"}, "image_url"),
        ({"stock": -1}, "stock"),
        ({"seller_id": str(uuid.uuid4())}, "seller_id"),  # the seller is the caller, never the body
    ],
)
async def test_refused_products(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str, fields: dict[str, Any], field: str
) -> None:
    body = {"name": "Thing", "price": "1.00", "currency": "USD", "category": category, **fields}
    async with http.post("/api/products", json=body, headers=bearer(seller["access_token"])) as resp:
        assert resp.status == 422, await resp.text()
        problem = await resp.json()
    assert field in {e["field"] for e in problem["errors"]}, problem


async def test_update_rules(http: aiohttp.ClientSession, seller: dict[str, Any], category: str) -> None:
    product = await _product(http, seller, category, price="10.00")
    url = f"/api/products/{product['product_id']}"
    auth = bearer(seller["access_token"])
    for body, field in (
        ({"currency": "EUR"}, "currency"),  # the amount would silently mean something else
        ({"price": "10.001"}, "price"),
        ({"name": None}, "name"),
        ({"product_id": str(uuid.uuid4())}, "product_id"),
        ({"category": "no-such-category"}, "category"),
    ):
        async with http.put(url, json=body, headers=auth) as resp:
            assert resp.status == 422, (body, await resp.text())
            assert field in {e["field"] for e in (await resp.json())["errors"]}
    async with http.put(url, json={"currency": "JPY", "price": "1200"}, headers=auth) as resp:
        assert resp.status == 200
        assert ((await resp.json())["price"], (await resp.json())["currency"]) == ("1200", "JPY")


async def test_who_may_manage_a_product(
    http: aiohttp.ClientSession, admin: dict[str, Any], seller: dict[str, Any], category: str
) -> None:
    product = await _product(http, seller, category)
    url = f"/api/products/{product['product_id']}"
    other_seller = await make_seller(http, admin)
    member_account = await register(http)
    member = await login(http, member_account["email"], member_account["password"])
    for method in ("PUT", "DELETE"):
        async with http.request(method, url, json={"name": "Mine now"}) as resp:
            assert resp.status == 401
        async with http.request(method, url, json={"name": "Mine now"}, headers=bearer(member["access_token"])) as r:
            assert r.status == 403
        async with http.request(
            method, url, json={"name": "Mine now"}, headers=bearer(other_seller["access_token"])
        ) as r:
            assert r.status == 404  # another seller's product does not exist for them
    body = {"name": "x", "price": "1.00", "currency": "USD", "category": category}
    async with http.post("/api/products", json=body, headers=bearer(member["access_token"])) as resp:
        assert resp.status == 403
    async with http.put(url, json={"name": "Fixed by admin"}, headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 200
        assert (await resp.json())["seller_id"] == seller["user"]["user_id"]  # still the seller's
    async with http.delete(url, headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 204


# --- categories -------------------------------------------------------------------------


async def test_category_tree_is_managed_by_admins(
    http: aiohttp.ClientSession, admin: dict[str, Any], seller: dict[str, Any]
) -> None:
    tag = _tag()
    root, child, leaf = f"home-{tag}", f"kitchen-{tag}", f"knives-{tag}"
    await _category(http, admin, root)
    await _category(http, admin, child, parent=root)
    await _category(http, admin, leaf, parent=child)
    auth = bearer(admin["access_token"])
    async with http.get("/api/categories") as resp:
        assert resp.status == 200
        tree = (await resp.json())["items"]
    node = next(n for n in tree if n["slug"] == root)
    assert node["children"][0]["slug"] == child
    assert node["children"][0]["children"][0] == {
        "slug": leaf,
        "name": node["children"][0]["children"][0]["name"],
        "parent": child,
        "children": [],
    }
    async with http.post("/api/categories", json={"slug": root, "name": "Again"}, headers=auth) as resp:
        assert resp.status == 409
    async with http.post(
        "/api/categories", json={"slug": f"x-{tag}", "name": "X", "parent": "nope"}, headers=auth
    ) as r:
        assert r.status == 422
    async with http.put(f"/api/categories/{root}", json={"parent": leaf}, headers=auth) as resp:
        assert resp.status == 422  # a category cannot go under its own descendant
    async with http.put(f"/api/categories/{root}", json={"parent": root}, headers=auth) as resp:
        assert resp.status == 422
    async with http.put(f"/api/categories/{child}", json={"name": "Cooking", "parent": None}, headers=auth) as resp:
        assert resp.status == 200
        assert await resp.json() == {"slug": child, "name": "Cooking", "parent": None}
    async with http.delete(f"/api/categories/{child}", headers=auth) as resp:
        assert resp.status == 409  # it still has a subcategory
    await _product(http, seller, leaf)
    async with http.delete(f"/api/categories/{leaf}", headers=auth) as resp:
        assert resp.status == 409  # it still has products
    async with http.delete(f"/api/categories/{root}", headers=auth) as resp:
        assert resp.status == 204
    async with http.delete(f"/api/categories/{root}", headers=auth) as resp:
        assert resp.status == 404
    async with http.put("/api/categories/Not_A_Slug", json={"name": "x"}, headers=auth) as resp:
        assert resp.status == 404
    async with http.post(
        "/api/categories", json={"slug": f"s-{tag}", "name": "S"}, headers=bearer(seller["access_token"])
    ) as resp:
        assert resp.status == 403


# --- search -----------------------------------------------------------------------------


async def test_relevance_exact_name_first_then_name_then_description(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    tag = _tag()
    name = f"Quillon Lamp {tag}"
    in_description = await _product(http, seller, category, name=f"Desk stand {tag}", description=f"Fits a {name}.")
    longer = await _product(http, seller, category, name=f"{name} Deluxe Edition with Stand and Shade")
    exact = await _product(http, seller, category, name=name)
    found = await _search(http, q=name.lower())
    ids = [p["product_id"] for p in found["items"]]
    assert ids[:3] == [exact["product_id"], longer["product_id"], in_description["product_id"]]


async def test_a_typo_still_finds_the_product(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    tag = _tag()
    product = await _product(http, seller, category, name=f"Xylophrenic Teapot {tag}")
    for typo in (f"xylofrenic teapot {tag}", f"Teapto {tag}", "xylophrenik"):
        found = await _search(http, q=typo, category=category)
        assert product["product_id"] in [p["product_id"] for p in found["items"]], typo


async def test_web_search_syntax(http: aiohttp.ClientSession, seller: dict[str, Any], category: str) -> None:
    tag = _tag()
    red = await _product(http, seller, category, name=f"Red kettle {tag}")
    blue = await _product(http, seller, category, name=f"Blue kettle {tag}")
    ids = {p["product_id"] for p in (await _search(http, q=f"kettle {tag} -red"))["items"]}
    assert blue["product_id"] in ids and red["product_id"] not in ids
    ids = {p["product_id"] for p in (await _search(http, q=f'"red kettle" {tag}'))["items"]}
    assert red["product_id"] in ids and blue["product_id"] not in ids


async def test_category_filter_includes_the_subtree(
    http: aiohttp.ClientSession, admin: dict[str, Any], seller: dict[str, Any]
) -> None:
    tag = _tag()
    root, child, grandchild, elsewhere = (f"{n}-{tag}" for n in ("garden", "tools", "spades", "toys"))
    await _category(http, admin, root)
    await _category(http, admin, child, parent=root)
    await _category(http, admin, grandchild, parent=child)
    await _category(http, admin, elsewhere)
    products = {slug: await _product(http, seller, slug) for slug in (root, child, grandchild, elsewhere)}

    def ids(page: dict[str, Any]) -> set[str]:
        return {p["product_id"] for p in page["items"]}

    assert ids(await _search(http, category=root)) == {products[s]["product_id"] for s in (root, child, grandchild)}
    assert ids(await _search(http, category=child)) == {products[s]["product_id"] for s in (child, grandchild)}
    assert ids(await _search(http, category=elsewhere)) == {products[elsewhere]["product_id"]}
    assert ids(await _search(http, category=f"unknown-{tag}")) == set()


async def test_filters(http: aiohttp.ClientSession, admin: dict[str, Any], seller: dict[str, Any]) -> None:
    tag = _tag()
    slug = f"filters-{tag}"
    await _category(http, admin, slug)
    other_seller = await make_seller(http, admin)
    cheap = await _product(http, seller, slug, price="5.00", stock=0)
    mid = await _product(http, seller, slug, price="50.00", stock=2)
    dear = await _product(http, other_seller, slug, price="500.00", stock=1)
    yen = await _product(http, seller, slug, price="50", currency="JPY", stock=1)

    async def ids(**params: Any) -> set[str]:
        return {p["product_id"] for p in (await _search(http, category=slug, **params))["items"]}

    # Prices compare within one currency only (issue 17): 50 yen is not between 10 and 100
    # dollars, so a price filter names its currency.
    async with http.get("/api/products", params={"category": slug, "min_price": "10"}) as resp:
        assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "currency"
    assert await ids(min_price="10", max_price="100", currency="USD") == {mid["product_id"]}
    assert await ids(min_price="10", max_price="100", currency="JPY") == {yen["product_id"]}
    assert await ids(seller_id=other_seller["user"]["user_id"]) == {dear["product_id"]}
    assert await ids(in_stock=True) == {mid["product_id"], dear["product_id"], yen["product_id"]}
    assert await ids(in_stock=False) == {cheap["product_id"]}
    assert await ids(q="") == {p["product_id"] for p in (cheap, mid, dear, yen)}  # an empty search: no filter
    # An empty value for a typed filter is not "no filter" but an invalid value, as the
    # document says (a form leaves out what it does not filter on).
    async with http.get("/api/products", params={"seller_id": ""}) as resp:
        assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "seller_id"


def _stock_changed(product_id: str, available: int, at: datetime) -> StockChanged:
    return StockChanged(product_id=uuid.UUID(product_id), available=available, reserved=0, reason="test", updated_at=at)


async def test_in_stock_follows_inventory_events(
    http: aiohttp.ClientSession, amqp: aio_pika.abc.AbstractRobustConnection, seller: dict[str, Any], category: str
) -> None:
    """The catalog records inventory's figures and announces only what a shopper is shown
    changing; the edge's cache drops the listing on that announcement, so a listing read
    after it shows the change (not the figure from before the catalog recorded it)."""
    product = await _product(http, seller, category, stock=4)
    await cache_settled(product["product_id"])
    # The listing is cached now, the product in stock in it.
    assert product["product_id"] in {
        p["product_id"] for p in (await _search(http, category=category, in_stock=True, limit=100))["items"]
    }
    channel = await amqp.channel()
    announced = await channel.declare_queue(exclusive=True)
    await announced.bind(EVENTS_EXCHANGE, AVAILABILITY_CHANGED.routing_key)
    # Far in the future: whatever the inventory worker says about this product meanwhile is older.
    at = datetime.now(UTC) + timedelta(days=1)
    await publish_event(amqp, STOCK_CHANGED, _stock_changed(product["product_id"], 2, at))  # 4 → 2: still "low"
    sold_out = _stock_changed(product["product_id"], 0, at + timedelta(seconds=1))
    await publish_event(amqp, STOCK_CHANGED, sold_out)
    events: list[dict[str, Any]] = []
    async with announced.iterator(timeout=10) as messages:
        async for message in messages:
            await message.ack()
            event = json.loads(message.body)
            if event["product_id"] == product["product_id"]:
                events.append(event)
                break
    [event] = events
    assert datetime.fromisoformat(event.pop("at")) == at + timedelta(seconds=1)
    assert event == {
        "product_id": product["product_id"],
        "variant_id": product["product_id"],
        "availability": "out_of_stock",
    }
    # The edge heard the same announcement and dropped the cached listing: within moments,
    # not the listings' TTL (30 s).
    for _ in range(30):
        page = await _search(http, category=category, in_stock=True, limit=100)
        if product["product_id"] not in {p["product_id"] for p in page["items"]}:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the cached listing did not follow the catalog's announcement")
    assert product["product_id"] in {
        p["product_id"] for p in (await _search(http, category=category, in_stock=False, limit=100))["items"]
    }
    # 4 → 2 announced nothing (a shopper sees "low" either way), whichever came first.
    await asyncio.sleep(0.5)
    while (message := await announced.get(fail=False)) is not None:
        await message.ack()
        assert json.loads(message.body)["product_id"] != product["product_id"]
    await channel.close()


@pytest.mark.parametrize("sort", ["newest", "price_asc", "price_desc", "relevance"])
async def test_pages_are_complete_and_stable(
    http: aiohttp.ClientSession, admin: dict[str, Any], seller: dict[str, Any], sort: str
) -> None:
    tag = _tag()
    slug = f"pages-{tag}"
    await _category(http, admin, slug)
    # Repeated prices: the id must break ties, or rows would be skipped or repeated.
    made = [
        await _product(http, seller, slug, name=f"Pagewidget {tag} {i}", price=f"{(i % 4) + 1}.00") for i in range(23)
    ]
    params: dict[str, Any] = {"category": slug, "sort": sort, "limit": 5}
    if sort.startswith("price"):
        params["currency"] = "USD"  # a price order is within one currency (issue 17)
    if sort == "relevance":
        params["q"] = f"pagewidget {tag}"
    items = await _all_pages(http, **params)
    assert sorted(p["product_id"] for p in items) == sorted(p["product_id"] for p in made)
    prices = [float(p["price"]) for p in items]
    if sort == "price_asc":
        assert prices == sorted(prices)
    if sort == "price_desc":
        assert prices == sorted(prices, reverse=True)
    if sort == "newest":
        assert [p["created_at"] for p in items] == sorted((p["created_at"] for p in items), reverse=True)
    # A page fetched again is the same page.
    first = await _search(http, **params)
    assert first == await _search(http, **params)


async def test_listing_limits_and_cursors(http: aiohttp.ClientSession, seller: dict[str, Any], category: str) -> None:
    for _ in range(3):
        await _product(http, seller, category)
    page = await _search(http, category=category, limit=2, sort="newest")
    assert len(page["items"]) == 2 and page["next_cursor"]
    for params in (
        {"limit": "101"},
        {"limit": "0"},
        {"limit": "many"},
        {"sort": "random"},
        {"cursor": "garbage!"},
        {"cursor": "W10"},  # []: decodes, but is no position
        {"cursor": page["next_cursor"], "sort": "price_asc"},  # a cursor of another order
        {"min_price": "-5"},
        {"max_price": "1e9"},
        {"seller_id": "not-a-uuid"},
        {"in_stock": "perhaps"},
        {"unknown": "1"},
    ):
        async with http.get("/api/products", params={"category": category, **params}) as resp:
            assert resp.status == 422, (params, await resp.text())


# --- hostile input ----------------------------------------------------------------------

HOSTILE = [
    "'",
    '"',
    "' OR 1=1 --",
    "'; DROP TABLE catalog.products; --",
    '") OR ("1"="1',
    "a & b | !c <-> d",
    "!!!",
    "(((",
    ":*",
    "-",
    '"unterminated',
    "or or or",
    "\\",
    "%_%",
    "日本語 テスト",
    "Ünïcödé ✓ 🚀",
    "\u202e reversed",
    "x" * 200,
    "x" * 201,
    "a" * 10_000,
    "NULL",
    "$1",
    "<script>alert(1)</script>",
]


@pytest.mark.parametrize("q", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_search_text_never_fails(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str, q: str
) -> None:
    allowed = (200, 422)  # a 10 kB string too: the edge accepts request lines up to 32 KiB
    async with http.get("/api/products", params={"q": q}) as resp:
        assert resp.status in allowed, await resp.text()
    async with http.get("/api/products", params={"category": q, "min_price": q, "cursor": q}) as resp:
        assert resp.status in allowed, await resp.text()
    # The same text in a body (no URL limit there): stored, or refused as invalid.
    body = {"name": q, "description": q, "price": "1.00", "currency": "USD", "category": category}
    async with http.post("/api/products", json=body, headers=bearer(seller["access_token"])) as resp:
        assert resp.status in (201, 422), await resp.text()


@pytest.mark.parametrize(
    "raw", ["q=%00", "q=a%00b", "q=%ff%fe", "q=%ed%a0%80", "category=%00", "cursor=%00", "sort=%00", "q=%F0%9F%92%A9"]
)
async def test_raw_query_bytes_never_fail(http: aiohttp.ClientSession, raw: str) -> None:
    base = str(http._base_url).rstrip("/")  # type: ignore[attr-defined]
    url = URL(f"{base}/api/products?{raw}", encoded=True)
    async with aiohttp.ClientSession() as raw_http, raw_http.get(url) as resp:
        assert resp.status in (200, 422), await resp.text()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(q=st.text(max_size=60), sort=st.sampled_from(["relevance", "price_asc", "newest"]))
async def test_any_search_text_gives_results_or_422(http: aiohttp.ClientSession, q: str, sort: str) -> None:
    async with http.get("/api/products", params={"q": q, "sort": sort, "limit": "5"}) as resp:
        assert resp.status in (200, 422), (q, await resp.text())


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.text(min_size=1, max_size=80), description=st.text(max_size=80))
async def test_any_product_text_is_stored_or_refused(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str, name: str, description: str
) -> None:
    body = {"name": name, "description": description, "price": "1.00", "currency": "USD", "category": category}
    async with http.post("/api/products", json=body, headers=bearer(seller["access_token"])) as resp:
        assert resp.status in (201, 422), (name, description, await resp.text())
        if resp.status == 201:
            found = await _search(http, q=name[:50], limit=5)
            assert isinstance(found["items"], list)


# --- demo data --------------------------------------------------------------------------


async def test_seed_makes_a_browsable_demo_catalog(stack: Stack, http: aiohttp.ClientSession, db: AsyncEngine) -> None:
    operator = create_admin(stack.env)
    as_admin = {"AGORA_ADMIN_EMAIL": operator["email"], "AGORA_ADMIN_PASSWORD": operator["password"]}
    result = await asyncio.to_thread(agora_cli, stack.env, "seed", extra_env=as_admin)
    assert result.returncode == 0, result.stdout + result.stderr
    async with http.get("/api/categories") as resp:
        roots = {node["slug"]: node for node in (await resp.json())["items"]}
    assert {"electronics", "home", "sports", "books"} <= roots.keys()
    assert roots["electronics"]["children"][0]["children"]  # three levels
    everything = await _all_pages(http, category="electronics", limit=100)
    assert len(everything) > 100
    carol = await login(http, "carol@example.com", DEMO_PASSWORD)
    carols = await _all_pages(http, seller_id=carol["user"]["user_id"], limit=100)
    assert len(carols) == 500
    in_stock = (await _search(http, seller_id=carol["user"]["user_id"], in_stock=True, limit=100))["items"]
    assert in_stock
    # Some come in sizes and colours (issue 17): each variant with its SKU, three images each.
    dressed = [p for p in carols if p["options"]]
    assert dressed and all(len(p["variants"]) > 1 and len(p["images"]) == 3 for p in dressed)
    assert all(v["sku"] and v["label"] for p in dressed for v in p["variants"])

    again = await asyncio.to_thread(agora_cli, stack.env, "seed", extra_env=as_admin)
    assert again.returncode == 0 and "demo products already" in again.stdout, again.stdout + again.stderr
    assert len(await _all_pages(http, seller_id=carol["user"]["user_id"], limit=100)) == 500

    # The benchmark mode adds products in bulk, each with its product_created event.
    async with db.connect() as conn:
        have = int(await conn.scalar(text("SELECT count(*) FROM catalog.products")) or 0)
    bulk = await asyncio.to_thread(agora_cli, stack.env, "seed", "--products", str(have + 40), extra_env=as_admin)
    assert bulk.returncode == 0, bulk.stdout + bulk.stderr
    for _ in range(100):
        async with db.connect() as conn:
            count = await conn.scalar(text("SELECT count(*) FROM catalog.products"))
            unsent = await conn.scalar(text("SELECT count(*) FROM catalog.outbox WHERE sent_at IS NULL"))
        if count == have + 40 and unsent == 0:
            break
        await asyncio.sleep(0.1)
    assert (count, unsent) == (have + 40, 0)
