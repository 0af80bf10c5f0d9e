"""Carts end to end: guest carts (cookie and header), member carts, merging at login, prices.

Products are listed through the API; the orders service learns of them from the
catalog's events, so a first add waits until the product has arrived there.
"""

from __future__ import annotations

import asyncio
import uuid
from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import pytest

from edge.routes.cart import CART_COOKIE, CART_HEADER
from edge.sessions import ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER, REFRESH_COOKIE
from harness.accounts import bearer, login, make_seller, register
from tests.catalog_support import create_category, create_product, new_tag
from tests.orders_support import ADDRESS

# --- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture(scope="module")
async def seller(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    return await make_seller(http, admin)


@pytest.fixture(scope="module")
async def category(http: aiohttp.ClientSession, admin: dict[str, Any]) -> str:
    slug = f"cart-{new_tag()}"
    await create_category(http, admin, slug)
    return slug


async def member(http: aiohttp.ClientSession) -> dict[str, Any]:
    user = await register(http)
    return {**user, **(await login(http, user["email"], user["password"]))}


def guest(cart_id: str) -> dict[str, str]:
    return {CART_HEADER: cart_id}


def cookie(cart_id: str) -> dict[str, str]:
    return {"Cookie": f"{CART_COOKIE}={cart_id}"}


async def get_cart(http: aiohttp.ClientSession, headers: dict[str, str]) -> dict[str, Any]:
    async with http.get("/api/cart", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body


async def add(
    http: aiohttp.ClientSession, headers: dict[str, str], product_id: str, quantity: int | None = 1
) -> tuple[int, Any]:
    body: dict[str, Any] = {"product_id": product_id}
    if quantity is not None:
        body["quantity"] = quantity
    async with http.post("/api/cart/items", json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def listed(
    http: aiohttp.ClientSession,
    seller: dict[str, Any],
    category: str,
    price: str = "19.99",
    currency: str = "USD",
    stock: int = 0,
) -> dict[str, Any]:
    """A new product, once the orders service knows it (a throwaway cart can take it)."""
    product = await create_product(http, seller, category, price=price, currency=currency, stock=stock)
    probe = guest(str(uuid.uuid4()))
    for _ in range(150):
        status, body = await add(http, probe, product["product_id"])
        if status == 200:
            return product
        assert status == 404, body
        await asyncio.sleep(0.1)
    raise AssertionError("the orders service never heard of the product")


def line(cart: dict[str, Any], product_id: str) -> dict[str, Any] | None:
    return next((item for item in cart["items"] if item["product_id"] == product_id), None)


# --- guest carts --------------------------------------------------------------------------


async def test_a_guest_gets_a_cart_cookie_on_the_first_add_and_the_cart_follows_it(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    product = await listed(http, seller, category, price="19.99")
    async with http.get("/api/cart") as resp:
        assert resp.status == 200
        assert await resp.json() == {"cart_id": None, "items": [], "total": "0.00", "currency": None, "unavailable": []}
    async with http.post("/api/cart/items", json={"product_id": product["product_id"], "quantity": 2}) as resp:
        assert resp.status == 200, await resp.text()
        issued = resp.cookies[CART_COOKIE]
        body = await resp.json()
    assert issued["httponly"] and issued["secure"] and issued["samesite"] == "Lax"
    assert not issued["domain"] and issued["path"] == "/" and int(issued["max-age"]) >= 7 * 24 * 3600
    assert body["cart_id"] == issued.value
    uuid.UUID(issued.value)
    cart = await get_cart(http, cookie(issued.value))
    assert cart["cart_id"] == issued.value
    assert cart["items"] == [
        {
            "product_id": product["product_id"],
            "variant_id": product["product_id"],  # its default variant
            "name": product["name"],
            "sku": None,
            "variant": "",
            "quantity": 2,
            "unit_price": "19.99",
        }
    ]
    assert (cart["total"], cart["currency"]) == ("39.98", "USD")
    # The cookie is the cart: a guest cart write needs no CSRF token (docs/decisions.md).
    status, _ = await add(http, cookie(issued.value), product["product_id"], 1)
    assert status == 200
    assert line(await get_cart(http, cookie(issued.value)), product["product_id"]) == {
        "product_id": product["product_id"],
        "variant_id": product["product_id"],
        "name": product["name"],
        "sku": None,
        "variant": "",
        "quantity": 3,
        "unit_price": "19.99",
    }


async def test_a_guest_cart_by_header_add_update_remove_and_totals(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    first = await listed(http, seller, category, price="10.50")
    second = await listed(http, seller, category, price="0.99")
    cart_id = str(uuid.uuid4())
    async with http.post("/api/cart/items", json={"product_id": first["product_id"]}, headers=guest(cart_id)) as resp:
        assert resp.status == 200
        assert CART_COOKIE not in resp.cookies  # a header client keeps its own id
        assert (await resp.json())["cart_id"] == cart_id
    status, cart = await add(http, guest(cart_id), second["product_id"], 3)
    assert status == 200 and (cart["total"], cart["currency"]) == ("13.47", "USD")
    assert [item["product_id"] for item in cart["items"]] == [first["product_id"], second["product_id"]]

    url = f"/api/cart/items/{second['product_id']}"
    async with http.put(url, json={"quantity": 10}, headers=guest(cart_id)) as resp:
        assert resp.status == 200
        assert (await resp.json())["total"] == "20.40"
    async with http.delete(f"/api/cart/items/{first['product_id']}", headers=guest(cart_id)) as resp:
        assert resp.status == 200
        cart = await resp.json()
    assert [(i["product_id"], i["quantity"]) for i in cart["items"]] == [(second["product_id"], 10)]
    assert cart["total"] == "9.90"
    assert await get_cart(http, guest(cart_id)) == cart
    # Gone or never there: 404.
    async with http.delete(f"/api/cart/items/{first['product_id']}", headers=guest(cart_id)) as resp:
        assert resp.status == 404
    async with http.put(f"/api/cart/items/{first['product_id']}", json={"quantity": 1}, headers=guest(cart_id)) as resp:
        assert resp.status == 404
    async with http.put(url, json={"quantity": 1}) as resp:  # a guest without a cart
        assert resp.status == 404


async def test_quantities_are_1_to_99_per_product(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    product = await listed(http, seller, category)
    cart_id = str(uuid.uuid4())
    for bad in (0, -1, 100, "two", 1.5):
        async with http.post(
            "/api/cart/items", json={"product_id": product["product_id"], "quantity": bad}, headers=guest(cart_id)
        ) as resp:
            assert resp.status == 422, bad
    status, _ = await add(http, guest(cart_id), product["product_id"], None)  # default 1
    assert status == 200
    status, _ = await add(http, guest(cart_id), product["product_id"], 98)
    assert status == 200
    status, problem = await add(http, guest(cart_id), product["product_id"], 1)
    assert status == 409 and problem["code"] == "conflict"
    url = f"/api/cart/items/{product['product_id']}"
    for bad in (0, 100):
        async with http.put(url, json={"quantity": bad}, headers=guest(cart_id)) as resp:
            assert resp.status == 422
    async with http.put(url, json={"quantity": 5, "cart_id": str(uuid.uuid4())}, headers=guest(cart_id)) as resp:
        assert resp.status == 422  # the cart is not the body's to choose
    assert line(await get_cart(http, guest(cart_id)), product["product_id"])["quantity"] == 99  # type: ignore[index]


async def test_unknown_and_withdrawn_products_cannot_be_added(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    cart_id = str(uuid.uuid4())
    status, problem = await add(http, guest(cart_id), str(uuid.uuid4()))
    assert status == 404 and problem["code"] == "not_found"
    product = await listed(http, seller, category, price="5.00")
    kept = await listed(http, seller, category, price="1.00")
    assert (await add(http, guest(cart_id), product["product_id"], 2))[0] == 200
    assert (await add(http, guest(cart_id), kept["product_id"], 1))[0] == 200
    async with http.delete(f"/api/products/{product['product_id']}", headers=bearer(seller["access_token"])) as resp:
        assert resp.status == 204
    for _ in range(150):
        status, _ = await add(http, guest(str(uuid.uuid4())), product["product_id"])
        if status == 404:
            break
        await asyncio.sleep(0.1)
    assert status == 404
    cart = await get_cart(http, guest(cart_id))
    assert [item["product_id"] for item in cart["items"]] == [kept["product_id"]]
    assert cart["unavailable"] == [product["product_id"]] and cart["total"] == "1.00"


async def test_one_cart_one_currency(http: aiohttp.ClientSession, seller: dict[str, Any], category: str) -> None:
    dollars = await listed(http, seller, category, currency="USD")
    euros = await listed(http, seller, category, price="3.00", currency="EUR")
    cart_id = str(uuid.uuid4())
    assert (await add(http, guest(cart_id), dollars["product_id"]))[0] == 200
    status, problem = await add(http, guest(cart_id), euros["product_id"])
    assert status == 409 and problem["code"] == "conflict"
    other = str(uuid.uuid4())
    status, cart = await add(http, guest(other), euros["product_id"], 2)
    assert status == 200 and (cart["total"], cart["currency"]) == ("6.00", "EUR")


async def test_the_cart_always_shows_the_current_price(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    product = await listed(http, seller, category, price="19.99")
    cart_id = str(uuid.uuid4())
    await add(http, guest(cart_id), product["product_id"], 2)
    async with http.put(
        f"/api/products/{product['product_id']}",
        json={"price": "25.00", "name": "Renamed lamp"},
        headers=bearer(seller["access_token"]),
    ) as resp:
        assert resp.status == 200, await resp.text()
    for _ in range(150):
        cart = await get_cart(http, guest(cart_id))
        if cart["items"][0]["unit_price"] == "25.00":
            break
        await asyncio.sleep(0.1)
    assert cart["items"][0] == {
        "product_id": product["product_id"],
        "variant_id": product["product_id"],
        "name": "Renamed lamp",
        "sku": None,
        "variant": "",
        "quantity": 2,
        "unit_price": "25.00",
    }
    assert cart["total"] == "50.00"


# --- member carts -------------------------------------------------------------------------


async def test_a_member_cart_is_bound_to_the_account_and_private(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    product = await listed(http, seller, category, price="2.00")
    alice, bob = await member(http), await member(http)
    status, cart = await add(http, bearer(alice["access_token"]), product["product_id"], 4)
    assert status == 200 and cart["total"] == "8.00"
    # Signed in again elsewhere: the same cart.
    again = await login(http, alice["email"], alice["password"])
    assert await get_cart(http, bearer(again["access_token"])) == cart
    assert (await get_cart(http, bearer(bob["access_token"])))["items"] == []
    # The member cart's id is no key to it: as a guest's cart id it names nothing.
    stolen = guest(cart["cart_id"])
    assert (await get_cart(http, stolen))["items"] == []
    assert (await get_cart(http, cookie(cart["cart_id"])))["items"] == []
    status, _ = await add(http, stolen, product["product_id"])
    assert status == 404
    async with http.delete(f"/api/cart/items/{product['product_id']}", headers=stolen) as resp:
        assert resp.status == 404
    # ... nor for another member, who always gets their own.
    assert (await get_cart(http, {**bearer(bob["access_token"]), **stolen}))["items"] == []
    assert (await get_cart(http, bearer(alice["access_token"])))["items"][0]["quantity"] == 4


async def test_a_cookie_signed_in_member_needs_the_csrf_token_to_change_the_cart(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    product = await listed(http, seller, category)
    user = await register(http)
    async with http.post("/api/users/login", json={"email": user["email"], "password": user["password"]}) as resp:
        jar: SimpleCookie = resp.cookies
    session = {"Cookie": f"{ACCESS_COOKIE}={jar[ACCESS_COOKIE].value}; {CSRF_COOKIE}={jar[CSRF_COOKIE].value}"}
    status, problem = await add(http, session, product["product_id"])
    assert status == 403, problem
    status, _ = await add(http, {**session, CSRF_HEADER: jar[CSRF_COOKIE].value}, product["product_id"])
    assert status == 200
    assert len((await get_cart(http, session))["items"]) == 1


async def test_a_guest_cart_merges_into_the_member_cart_at_login(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    both = await listed(http, seller, category, price="1.00")
    only_guest = await listed(http, seller, category, price="2.00")
    only_member = await listed(http, seller, category, price="3.00")
    user = await member(http)
    await add(http, bearer(user["access_token"]), both["product_id"], 3)
    await add(http, bearer(user["access_token"]), only_member["product_id"], 1)

    async with http.post("/api/cart/items", json={"product_id": both["product_id"], "quantity": 2}) as resp:
        guest_cart = resp.cookies[CART_COOKIE].value
    await add(http, cookie(guest_cart), only_guest["product_id"], 5)

    async with http.post(
        "/api/users/login", json={"email": user["email"], "password": user["password"]}, headers=cookie(guest_cart)
    ) as resp:
        assert resp.status == 200
        forgotten = resp.cookies[CART_COOKIE]
        session = await resp.json()
    assert forgotten.value == "" and int(forgotten["max-age"] or 0) == 0

    cart = await get_cart(http, bearer(session["access_token"]))
    quantities = {item["product_id"]: item["quantity"] for item in cart["items"]}
    assert quantities == {both["product_id"]: 5, only_member["product_id"]: 1, only_guest["product_id"]: 5}
    assert cart["total"] == "18.00"
    # The guest cart is gone: a late request with its cookie finds nothing to add.
    assert (await get_cart(http, cookie(guest_cart)))["items"] == []
    again = await get_cart(http, {**bearer(session["access_token"]), **cookie(guest_cart)})
    assert again == cart


async def test_a_guest_cart_still_carried_by_a_signed_in_member_merges_on_the_next_cart_request(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    """Capped at 99; a token client that signed in without sending its cart id."""
    product = await listed(http, seller, category, price="1.00")
    user = await member(http)
    await add(http, bearer(user["access_token"]), product["product_id"], 60)
    cart_id = str(uuid.uuid4())
    await add(http, guest(cart_id), product["product_id"], 50)
    async with http.get("/api/cart", headers={**bearer(user["access_token"]), **guest(cart_id)}) as resp:
        assert resp.status == 200
        cart = await resp.json()
    assert [(i["product_id"], i["quantity"]) for i in cart["items"]] == [(product["product_id"], 99)]
    assert (await get_cart(http, guest(cart_id)))["items"] == []
    assert await get_cart(http, bearer(user["access_token"])) == cart


# --- ordering the cart --------------------------------------------------------------------


async def order_the_cart(
    http: aiohttp.ClientSession, who: dict[str, Any], key: str, token: str = "tok_visa"
) -> tuple[int, dict[str, Any]]:
    body = {"shipping_address": ADDRESS, "payment_token": token}
    headers = {**bearer(who["access_token"]), "Idempotency-Key": key}
    async with http.post("/api/orders", json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_ordering_the_cart_charges_todays_prices_and_empties_it_once_confirmed(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    lamp = await listed(http, seller, category, price="19.99", stock=10)
    mug = await listed(http, seller, category, price="4.50", stock=10)
    gone = await listed(http, seller, category, price="1.00", stock=10)
    user = await member(http)
    for product, quantity in ((lamp, 2), (mug, 1), (gone, 3)):
        assert (await add(http, bearer(user["access_token"]), product["product_id"], quantity))[0] == 200
    # After the cart was filled: a new price for the lamp, and the third product withdrawn.
    async with http.put(
        f"/api/products/{lamp['product_id']}", json={"price": "21.00"}, headers=bearer(seller["access_token"])
    ) as resp:
        assert resp.status == 200
    async with http.delete(f"/api/products/{gone['product_id']}", headers=bearer(seller["access_token"])) as resp:
        assert resp.status == 204
    for _ in range(150):
        cart = await get_cart(http, bearer(user["access_token"]))
        if cart["total"] == "46.50" and cart["unavailable"]:
            break
        await asyncio.sleep(0.1)
    assert cart["total"] == "46.50", cart

    key = str(uuid.uuid4())
    status, order = await order_the_cart(http, user, key)
    assert status == 202, order
    assert sorted((i["product_id"], i["quantity"], i["price"]) for i in order["items"]) == sorted(
        [(lamp["product_id"], 2, "21.00"), (mug["product_id"], 1, "4.50")]
    )
    assert (order["total_amount"], order["status"]) == ("46.50", "pending")
    # The ordered lines leave the cart once the order is confirmed (a payment that fails
    # leaves the cart as it was); the withdrawn line, which was not ordered, stays.
    for _ in range(150):
        cart = await get_cart(http, bearer(user["access_token"]))
        if not cart["items"]:
            break
        await asyncio.sleep(0.1)
    assert (cart["items"], cart["total"]) == ([], "0.00"), cart
    assert cart["unavailable"] == [gone["product_id"]], cart  # its default variant, whose id is the product's
    async with http.get(f"/api/orders/{order['order_id']}", headers=bearer(user["access_token"])) as resp:
        assert (await resp.json())["status"] == "confirmed"
    # A retry with the same key is the same order, not an empty cart.
    status, again = await order_the_cart(http, user, key)
    assert status == 202 and again["order_id"] == order["order_id"]
    # Without that key, an empty cart is refused.
    status, problem = await order_the_cart(http, user, str(uuid.uuid4()))
    assert status == 409 and problem["errors"] == [{"field": "items", "message": "the cart is empty"}], problem
    # The cart goes on working after an order.
    status, cart = await add(http, bearer(user["access_token"]), mug["product_id"], 1)
    assert status == 200 and cart["total"] == "4.50"


async def test_an_empty_or_missing_cart_is_409_and_orders_nothing(http: aiohttp.ClientSession) -> None:
    user = await member(http)  # never had a cart
    status, problem = await order_the_cart(http, user, str(uuid.uuid4()))
    assert status == 409 and problem["code"] == "conflict" and problem["errors"][0]["field"] == "items"
    async with http.get(f"/api/orders/user/{user['user_id']}", headers=bearer(user["access_token"])) as resp:
        assert (await resp.json())["items"] == []


# --- an expired session is not a guest -----------------------------------------------------


async def test_an_expired_or_invalid_session_is_a_401_not_a_guest(http: aiohttp.ClientSession) -> None:
    user = await register(http)
    async with http.post("/api/users/login", json={"email": user["email"], "password": user["password"]}) as resp:
        assert resp.status == 200
        jar = resp.cookies
    # The browser dropped the access cookie with its expired token; the session's CSRF
    # cookie is still there: the page must renew the session, not shop as a guest.
    expired = {"Cookie": f"{CSRF_COOKIE}={jar[CSRF_COOKIE].value}"}
    async with http.get("/api/cart", headers=expired) as resp:
        assert resp.status == 401 and "invalid_token" in resp.headers["WWW-Authenticate"], await resp.text()
    add = {**expired, CSRF_HEADER: jar[CSRF_COOKIE].value}
    async with http.post("/api/cart/items", json={"product_id": str(uuid.uuid4()), "quantity": 1}, headers=add) as resp:
        assert resp.status == 401 and CART_COOKIE not in resp.cookies  # no guest cart issued
    for invalid in (
        {"Authorization": "Bearer not-a-token"},
        {"Cookie": f"{ACCESS_COOKIE}=not-a-token"},
    ):
        async with http.get("/api/cart", headers=invalid) as resp:
            assert resp.status == 401, invalid
    async with http.get("/api/cart") as resp:  # no credential at all: a guest
        assert resp.status == 200
    # A session that ended (signed out) cannot be renewed: the refresh answers 401 and
    # forgets the cookies, so the browser is a guest from then on.
    refresh = {
        "Cookie": f"{REFRESH_COOKIE}={jar[REFRESH_COOKIE].value}; {CSRF_COOKIE}={jar[CSRF_COOKIE].value}",
        CSRF_HEADER: jar[CSRF_COOKIE].value,
    }
    async with http.post("/api/auth/logout", json={"refresh_token": jar[REFRESH_COOKIE].value}) as resp:
        assert resp.status == 204
    async with http.post("/api/auth/refresh", headers=refresh) as resp:
        assert resp.status == 401
        assert resp.cookies[CSRF_COOKIE].value == "" and resp.cookies[REFRESH_COOKIE].value == ""
