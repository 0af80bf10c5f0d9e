"""Order snapshots (issue 18, point 1): each line keeps what was bought as it was at placement
(name, variant, SKU, image, prices, tax and discount), and the order keeps its customer's
email and name and its recipient's name and phone; whoever may see the order sees them,
a withdrawn product still shows by name, and erasure takes the personal part away.
"""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from harness.accounts import bearer, login, make_seller, register
from tests.catalog_support import create_category, new_tag
from tests.orders_support import ADDRESS, known_to_orders
from tests.support import until

SHIP_TO = {**ADDRESS, "recipient": "Ada Lovelace", "phone": "+442071234567"}


async def _scalar(db: AsyncEngine, sql: str, **params: Any) -> Any:
    async with db.connect() as conn:
        return await conn.scalar(text(sql), params)


async def tee(
    http: aiohttp.ClientSession, db: AsyncEngine, admin: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new seller and its tee in sizes and colours, listed over the API and known to the
    orders service with its image."""
    tag = new_tag()
    seller = await make_seller(http, admin)
    await create_category(http, admin, f"snapshots-{tag}")
    body = {
        "name": f"Tee {tag}",
        "currency": "USD",
        "price": "20.00",
        "category": f"snapshots-{tag}",
        "options": [{"name": "Size", "values": ["S", "M"]}, {"name": "Colour", "values": ["Red", "Blue"]}],
        "variants": [
            {"sku": f"TEE-{tag}-{s}-{c}".upper(), "options": {"Size": s, "Colour": c}, "stock": 10}
            for s in ("S", "M")
            for c in ("Red", "Blue")
        ],
        "images": [{"url": f"https://img.example/{tag}/front.jpg", "alt": "front"}],
    }
    async with http.post("/api/products", json=body, headers=bearer(seller["access_token"])) as resp:
        assert resp.status == 201, await resp.text()
        product: dict[str, Any] = await resp.json()
    await until(
        "the orders service knows the product's variants and image",
        lambda: _scalar(
            db,
            "SELECT count(*) = 4 FROM orders.product_variants v JOIN orders.products p USING (product_id) "
            "WHERE p.product_id = :p AND p.image_url IS NOT NULL",
            p=product["product_id"],
        ),
    )
    return seller, product


async def customer(http: aiohttp.ClientSession, db: AsyncEngine) -> dict[str, Any]:
    """A new member, signed in, whom the orders service knows (its registration arrived)."""
    user = await register(http)
    await known_to_orders(db, user["user_id"])
    return {**user, **await login(http, user["email"], user["password"])}


async def place(
    http: aiohttp.ClientSession, who: dict[str, Any], product_id: str, variant_id: str, quantity: int
) -> dict[str, Any]:
    body = {
        "items": [{"product_id": product_id, "variant_id": variant_id, "quantity": quantity}],
        "shipping_address": SHIP_TO,
        "payment_token": "tok_visa",
    }
    headers = {**bearer(who["access_token"]), "Idempotency-Key": str(uuid.uuid4())}
    async with http.post("/api/orders", json=body, headers=headers) as resp:
        assert resp.status == 202, await resp.text()
        placed: dict[str, Any] = await resp.json()
        return placed


async def read(http: aiohttp.ClientSession, who: dict[str, Any], order_id: str) -> tuple[int, dict[str, Any]]:
    async with http.get(f"/api/orders/{order_id}", headers=bearer(who["access_token"])) as resp:
        return resp.status, await resp.json()


def variant(product: dict[str, Any], size: str, colour: str) -> dict[str, Any]:
    return next(v for v in product["variants"] if v["options"] == {"Size": size, "Colour": colour})


async def ordered(
    http: aiohttp.ClientSession, db: AsyncEngine, admin: dict[str, Any], size: str, colour: str, quantity: int
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A new seller's tee, and a new member's order of one of its variants: the seller, the
    product, the variant, the member and the order as placed."""
    seller, product = await tee(http, db, admin)
    chosen = variant(product, size, colour)
    member = await customer(http, db)
    placed = await place(http, member, product["product_id"], chosen["variant_id"], quantity)
    return seller, product, chosen, member, placed


async def test_an_order_keeps_its_lines_and_customer_as_placed_for_whoever_may_see_it(
    http: aiohttp.ClientSession, db: AsyncEngine, admin: dict[str, Any]
) -> None:
    seller, product, m_blue, member, placed = await ordered(http, db, admin, "M", "Blue", 3)
    pid = product["product_id"]

    line = {
        "product_id": pid,
        "variant_id": m_blue["variant_id"],
        "name": product["name"],
        "variant": "M / Blue",
        "sku": m_blue["sku"],
        "image_url": product["images"][0]["url"],
        "price": "20.00",
        "quantity": 3,
        "line_total": "60.00",
        "tax": "0.00",
        "discount": "0.00",
    }
    who = {"email": member["email"], "name": member["username"]}
    assert placed["items"] == [line] and placed["customer"] == who
    assert placed["shipping_address"] == {"line2": None, "region": None, **SHIP_TO}
    # The member, a seller of its lines and an admin see all of it; another member nothing.
    for reader in (member, seller, admin):
        status, order = await read(http, reader, placed["order_id"])
        assert status == 200, order
        assert (order["items"], order["customer"], order["shipping_address"]) == (
            [line],
            who,
            placed["shipping_address"],
        )
    other = await register(http)
    stranger = await login(http, other["email"], other["password"])
    status, _ = await read(http, stranger, placed["order_id"])
    assert status == 404
    # At rest the customer's email is sealed, in the order and in the read model.
    assert not await _scalar(
        db,
        "SELECT count(*) FROM orders.orders o, orders.customers c "
        "WHERE (o.order_id = :o AND o.customer_enc LIKE :e) OR (c.user_id = :u AND c.email_enc LIKE :e)",
        o=placed["order_id"],
        u=member["user_id"],
        e=f"%{member['email']}%",
    )

    # Withdrawn, the product's page is gone, and the order still names what was bought.
    async with http.delete(f"/api/products/{pid}", headers=bearer(seller["access_token"])) as resp:
        assert resp.status == 204, await resp.text()
    await until(
        "the orders service hears of the withdrawal",
        lambda: _scalar(db, "SELECT deleted FROM orders.products WHERE product_id = :p", p=pid),
    )
    async with http.get(f"/api/products/{pid}") as resp:
        assert resp.status == 404
    status, order = await read(http, member, placed["order_id"])
    assert status == 200 and order["items"] == [line]

    # The export holds the snapshot and what the orders service knows of the account.
    async with http.get(f"/api/users/{member['user_id']}/export", headers=bearer(member["access_token"])) as resp:
        assert resp.status == 200, await resp.text()
        exported = (await resp.json())["services"]["orders"]
    assert exported["customer"] == who
    assert [(o["order_id"], o["customer"]) for o in exported["orders"]] == [(placed["order_id"], who)]

    # Erased, the account leaves its orders without customer or address; the lines stay.
    async with http.delete(f"/api/users/{member['user_id']}", headers=bearer(member["access_token"])) as resp:
        assert resp.status == 204, await resp.text()

    async def anonymised() -> dict[str, Any] | None:
        status, order = await read(http, admin, placed["order_id"])
        assert status == 200, order
        return order if order["customer"] is None and order["shipping_address"] is None else None

    order = await until("the order loses its customer and address", anonymised)
    assert order["items"] == [line]
    assert not await _scalar(db, "SELECT count(*) FROM orders.customers WHERE user_id = :u", u=member["user_id"])


async def test_a_rename_and_a_new_image_show_on_later_orders_only(
    http: aiohttp.ClientSession, db: AsyncEngine, admin: dict[str, Any]
) -> None:
    seller, product, s_red, member, first = await ordered(http, db, admin, "S", "Red", 1)
    pid = product["product_id"]

    renamed = f"renamed_{uuid.uuid4().hex[:8]}"
    async with http.put(
        f"/api/users/{member['user_id']}", json={"username": renamed}, headers=bearer(member["access_token"])
    ) as resp:
        assert resp.status == 200, await resp.text()
    back = f"https://img.example/{new_tag()}/back.jpg"
    async with http.put(
        f"/api/products/{pid}", json={"images": [{"url": back, "alt": "back"}]}, headers=bearer(seller["access_token"])
    ) as resp:
        assert resp.status == 200, await resp.text()
    await until(
        "the orders service hears of both changes",
        lambda: _scalar(
            db,
            "SELECT (SELECT username FROM orders.customers WHERE user_id = :u) = :n "
            "AND (SELECT image_url FROM orders.products WHERE product_id = :p) = :i",
            u=member["user_id"],
            n=renamed,
            p=pid,
            i=back,
        ),
    )
    second = await place(http, member, pid, s_red["variant_id"], 1)

    assert (second["customer"]["name"], second["items"][0]["image_url"]) == (renamed, back)
    status, before = await read(http, member, first["order_id"])
    assert status == 200
    assert (before["customer"]["name"], before["items"][0]["image_url"]) == (
        member["username"],
        product["images"][0]["url"],
    )
