"""Shipping methods (issue 18 point 3): admins manage them; a checkout lists those on
offer for its country and currency, priced, free from a threshold."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp

from harness.accounts import bearer, login, make_seller, register
from tests.catalog_support import create_category, create_product, new_tag
from tests.orders_support import confirmed_and_captured, ledger, place_body

BASE = "/api/shipping-methods"


def _method(**overrides: Any) -> dict[str, Any]:
    return {
        "name": f"Parcel {uuid.uuid4().hex[:8]}",
        "countries": ["DE", "FR"],
        "prices": {"EUR": "4.90", "USD": "5.50"},
        "free_from": {"EUR": "50.00"},
        "min_days": 2,
        "max_days": 4,
        **overrides,
    }


async def _create(http: aiohttp.ClientSession, admin: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    async with http.post(BASE, json=_method(**overrides), headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 201, await resp.text()
        created: dict[str, Any] = await resp.json()
        assert resp.headers["Location"] == f"{BASE}/{created['method_id']}"
        return created


async def _offered(http: aiohttp.ClientSession, **query: str) -> dict[str, dict[str, Any]]:
    async with http.get(BASE, params=query) as resp:
        assert resp.status == 200, await resp.text()
        return {m["method_id"]: m for m in (await resp.json())["items"]}


async def test_a_checkout_is_offered_the_methods_for_its_country_and_currency_priced(
    http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    standard = await _create(http, admin)
    express = await _create(http, admin, prices={"EUR": "12.00"}, free_from={}, min_days=1, max_days=1)
    swiss = await _create(http, admin, countries=["CH"], prices={"CHF": "9.00"}, free_from={})
    assert standard["prices"] == {"EUR": "4.90", "USD": "5.50"} and standard["free_from"] == {"EUR": "50.00"}

    offered = await _offered(http, country="DE", currency="EUR", subtotal="20.00")
    assert offered[standard["method_id"]]["price"] == "4.90"
    assert offered[express["method_id"]]["price"] == "12.00"
    assert swiss["method_id"] not in offered  # another country
    ours = [m for m in offered if m in (standard["method_id"], express["method_id"])]
    assert ours == [standard["method_id"], express["method_id"]]  # cheapest first

    # From the threshold the standard method ships free; express has none.
    free = await _offered(http, country="FR", currency="EUR", subtotal="50.00")
    assert free[standard["method_id"]]["price"] == "0.00"
    assert free[express["method_id"]]["price"] == "12.00"
    # In dollars only the standard method is offered (express has no USD price), and
    # without a USD threshold it is never free.
    dollars = await _offered(http, country="DE", currency="USD", subtotal="500.00")
    assert dollars[standard["method_id"]]["price"] == "5.50" and express["method_id"] not in dollars
    # Without a subtotal: the price before any threshold.
    assert (await _offered(http, country="DE", currency="EUR"))[standard["method_id"]]["price"] == "4.90"
    # Unfiltered: every method, unpriced.
    everything = await _offered(http)
    assert {standard["method_id"], express["method_id"], swiss["method_id"]} <= set(everything)
    assert everything[swiss["method_id"]]["price"] is None


async def test_only_admins_manage_methods_and_bad_input_is_named(
    http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    user = await register(http)
    member = await login(http, user["email"], user["password"])
    async with http.post(BASE, json=_method(), headers=bearer(member["access_token"])) as resp:
        assert resp.status == 403, await resp.text()
    async with http.post(BASE, json=_method()) as resp:
        assert resp.status == 401
    cases = [
        ({"free_from": {"GBP": "40.00"}}, "free_from.GBP"),  # a threshold without a price
        ({"min_days": 5, "max_days": 2}, "max_days"),
        ({"prices": {"JPY": "500.5"}}, "prices.JPY"),  # yen have no decimals
        ({"countries": ["DE", "DE"]}, "countries"),
        ({"countries": []}, "countries"),
        ({"prices": {}}, "prices"),
        ({"prices": {"XXX": "1.00"}}, "prices.XXX"),
    ]
    for overrides, field in cases:
        async with http.post(BASE, json=_method(**overrides), headers=bearer(admin["access_token"])) as resp:
            assert resp.status == 422, (overrides, await resp.text())
            problem = await resp.json()
            assert resp.content_type == "application/problem+json"
            assert any(e["field"].startswith(field) for e in problem["errors"]), (overrides, problem)
    async with http.get(BASE, params={"subtotal": "10.00"}) as resp:
        assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "currency"


async def test_a_method_is_changed_partially_and_deleted(http: aiohttp.ClientSession, admin: dict[str, Any]) -> None:
    created = await _create(http, admin)
    url, auth = f"{BASE}/{created['method_id']}", bearer(admin["access_token"])
    async with http.put(url, json={"prices": {"EUR": "3.90"}, "max_days": 6}, headers=auth) as resp:
        assert resp.status == 200, await resp.text()
        changed = await resp.json()
    assert changed["prices"] == {"EUR": "3.90"} and changed["max_days"] == 6
    assert changed["name"] == created["name"] and changed["free_from"] == {"EUR": "50.00"}  # untouched
    # Checked as a whole after the change: a USD threshold needs a USD price.
    async with http.put(url, json={"free_from": {"USD": "30.00"}}, headers=auth) as resp:
        assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "free_from"
    async with http.put(url, json={"min_days": 9}, headers=auth) as resp:
        assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "max_days"
    async with http.put(url, json={"name": None}, headers=auth) as resp:
        assert resp.status == 422
    assert (await _offered(http, country="DE", currency="EUR"))[created["method_id"]]["price"] == "3.90"

    async with http.delete(url, headers=auth) as resp:
        assert resp.status == 204
    assert created["method_id"] not in await _offered(http)
    async with http.put(url, json={"max_days": 7}, headers=auth) as resp:
        assert resp.status == 404
    async with http.delete(f"{BASE}/{uuid.uuid4()}", headers=auth) as resp:
        assert resp.status == 404


# --- at checkout --------------------------------------------------------------------------


async def test_an_order_is_charged_its_shipping_free_from_the_threshold(
    http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    category = f"shipping-{new_tag()}"
    await create_category(http, admin, category)
    seller = await make_seller(http, admin)
    product = await create_product(http, seller, category, price="20.00", currency="EUR", stock=50)
    method = await _create(http, admin)  # DE and FR; 4.90 EUR, free from 50.00 EUR
    user = await register(http)
    member = await login(http, user["email"], user["password"])
    address = {"line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}

    def body(quantity: int, **extra: Any) -> dict[str, Any]:
        return {
            "items": [{"product_id": product["product_id"], "quantity": quantity}],
            "shipping_address": address,
            "payment_token": "tok_visa",
            "shipping_method_id": method["method_id"],
            **extra,
        }

    status, order = await place_body(http, member, body(2))
    assert status == 202, order
    assert (order["subtotal"], order["total_amount"]) == ("40.00", "44.90")
    assert order["shipping"] == {
        "method_id": method["method_id"],
        "name": method["name"],
        "price": "4.90",
        "min_days": 2,
        "max_days": 4,
        "tax": "0.00",  # no German rates in this suite
    }
    # From 50.00 of goods it ships free.
    status, free = await place_body(http, member, body(3))
    assert status == 202 and (free["subtotal"], free["shipping"]["price"], free["total_amount"]) == (
        "60.00",
        "0.00",
        "60.00",
    )
    # The order keeps what it was charged when the method changes later, and the payment
    # taken is the total with shipping.
    async with http.put(
        f"{BASE}/{method['method_id']}", json={"prices": {"EUR": "9.90"}}, headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 200
    confirmed = await confirmed_and_captured(http, member, order["order_id"])
    assert confirmed["shipping"]["price"] == "4.90" and confirmed["total_amount"] == "44.90"
    assert (await ledger(order["order_id"]))["net_captured"] == 4490  # at the payment provider, in cents

    # A method that does not ship there, or does not exist: refused before anything is reserved.
    status, refused = await place_body(http, member, body(1, shipping_address={**address, "country": "US"}))
    assert status == 422 and refused["errors"][0]["field"] == "shipping_method_id", refused
    assert "does not ship to US" in refused["errors"][0]["message"]
    status, refused = await place_body(http, member, body(1, shipping_method_id=str(uuid.uuid4())))
    assert status == 422 and refused["errors"][0]["field"] == "shipping_method_id", refused
    # Without a method: no shipping charged, as before.
    status, plain = await place_body(http, member, {k: v for k, v in body(1).items() if k != "shipping_method_id"})
    assert status == 202 and plain["shipping"] is None and plain["total_amount"] == plain["subtotal"] == "20.00"


async def test_a_seller_lists_orders_to_ship_and_ships_with_tracking_idempotently(
    http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    category = f"shipping-{new_tag()}"
    await create_category(http, admin, category)
    seller = await make_seller(http, admin)
    other_seller = await make_seller(http, admin)
    product = await create_product(http, seller, category, price="15.00", stock=10)
    user = await register(http)
    member = await login(http, user["email"], user["password"])
    address = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
    body = {"items": [{"product_id": product["product_id"], "quantity": 1}], "shipping_address": address}
    status, order = await place_body(http, member, {**body, "payment_token": "tok_visa"})
    assert status == 202, order
    order_id = order["order_id"]
    await confirmed_and_captured(http, member, order_id)

    to_ship = f"/api/sellers/{seller['user']['user_id']}/orders"

    async def listed(who: dict[str, Any], **query: str) -> list[str]:
        async with http.get(to_ship, params=query, headers=bearer(who["access_token"])) as resp:
            assert resp.status == 200, await resp.text()
            return [o["order_id"] for o in (await resp.json())["items"]]

    assert order_id in await listed(seller) and order_id in await listed(admin)
    async with http.get(to_ship, headers=bearer(other_seller["access_token"])) as resp:
        assert resp.status == 404  # another seller's list is not theirs to see
    async with http.get(to_ship, headers=bearer(member["access_token"])) as resp:
        assert resp.status == 404

    url, auth = f"/api/orders/{order_id}", bearer(seller["access_token"])
    shipped = {"status": "shipped", "tracking_number": "1Z999AA10123456784", "carrier": "UPS"}
    for _ in range(2):  # the same request twice is not an error
        async with http.put(url, json=shipped, headers=auth) as resp:
            assert resp.status == 200, await resp.text()
            view = await resp.json()
        assert view["status"] == "shipped"
        assert view["tracking"] == {"carrier": "UPS", "number": "1Z999AA10123456784"}
    async with http.put(url, json={"status": "shipped", "tracking_number": "1Z999AA10123456785"}, headers=auth) as resp:
        assert resp.status == 200
        assert (await resp.json())["tracking"] == {"carrier": "UPS", "number": "1Z999AA10123456785"}  # corrected
    assert [h["status"] for h in view["history"]] == ["pending", "confirmed", "shipped"]  # shipped once
    assert order_id not in await listed(seller) and order_id in await listed(seller, status="shipped")

    async with http.put(url, json={"status": "delivered", "tracking_number": "x"}, headers=auth) as resp:
        assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "tracking_number"
    for _ in range(2):
        async with http.put(url, json={"status": "delivered"}, headers=auth) as resp:
            assert resp.status == 200, await resp.text()
    async with http.get(url, headers=bearer(member["access_token"])) as resp:
        final = await resp.json()
    assert [h["status"] for h in final["history"]] == ["pending", "confirmed", "shipped", "delivered"]
    assert final["tracking"]["number"] == "1Z999AA10123456785"  # the customer sees it too
