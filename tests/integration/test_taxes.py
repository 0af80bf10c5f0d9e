"""Taxes (issue 18 point 4): admin-managed rates by country, region and product tax class,
prices including or excluding tax per currency, and the tax lines an order keeps.

Rates are global, so these tests use countries and currencies no other test orders in
(Sweden in SEK, Canada in CAD): the other tests' totals stay untaxed.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from harness.accounts import bearer, login, make_seller, register
from tests.catalog_support import create_category, create_product, new_tag
from tests.orders_support import confirmed_and_captured, ledger, place_body

RATES = "/api/tax-rates"


async def _rate(http: aiohttp.ClientSession, admin: dict[str, Any], **body: Any) -> dict[str, Any]:
    async with http.post(RATES, json=body, headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 201, await resp.text()
        created: dict[str, Any] = await resp.json()
        return created


async def _inclusive(http: aiohttp.ClientSession, admin: dict[str, Any], currency: str, value: bool) -> None:
    async with http.put(
        f"/api/tax-settings/{currency}", json={"prices_include_tax": value}, headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {"currency": currency, "prices_include_tax": value}


async def _member(http: aiohttp.ClientSession) -> dict[str, Any]:
    user = await register(http)
    return await login(http, user["email"], user["password"])


def _order(product_id: str, quantity: int, address: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "items": [{"product_id": product_id, "quantity": quantity}],
        "shipping_address": address,
        "payment_token": "tok_visa",
        **extra,
    }


async def test_admins_manage_rates_and_settings_and_others_read_them(
    http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    member = await _member(http)
    body = {"country": "IS", "tax_class": f"matrix-{new_tag()}", "rate": "24", "name": "VSK"}
    async with http.post(RATES, json=body, headers=bearer(member["access_token"])) as resp:
        assert resp.status == 403
    created = await _rate(http, admin, **body)
    assert created == {**body, "rate_id": created["rate_id"], "region": None}
    async with http.post(RATES, json=body, headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 409  # one rate per place and class
    for bad, field in (({"rate": "100.5"}, "rate"), ({"rate": "-1"}, "rate"), ({"country": "Iceland"}, "country")):
        async with http.post(RATES, json={**body, **bad}, headers=bearer(admin["access_token"])) as resp:
            assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == field, bad
    url = f"{RATES}/{created['rate_id']}"
    async with http.put(url, json={"rate": "11"}, headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 200 and (await resp.json())["rate"] == "11"
    async with http.get(RATES, params={"country": "IS"}) as resp:  # public
        assert created["rate_id"] in {r["rate_id"] for r in (await resp.json())["items"]}
    async with http.delete(url, headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 204
    async with http.delete(url, headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 404
    async with http.put(
        "/api/tax-settings/XXX", json={"prices_include_tax": True}, headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 404
    async with http.put(
        "/api/tax-settings/NOK", json={"prices_include_tax": True}, headers=bearer(member["access_token"])
    ) as resp:
        assert resp.status == 403


async def test_included_tax_is_carved_out_of_prices_and_shipping_per_rate(
    http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    await _inclusive(http, admin, "SEK", True)
    await _rate(http, admin, country="SE", rate="25", name="Moms")
    await _rate(http, admin, country="SE", tax_class="reduced", rate="12", name="Moms (reduced)")
    category = f"taxes-{new_tag()}"
    await create_category(http, admin, category)
    seller = await make_seller(http, admin)
    lamp = await create_product(http, seller, category, price="125.00", currency="SEK", stock=20)
    food = await create_product(http, seller, category, price="11.20", currency="SEK", stock=20, tax_class="reduced")
    assert food["tax_class"] == "reduced" and lamp["tax_class"] == "standard"
    async with http.post(
        "/api/shipping-methods",
        json={"name": f"Postnord {new_tag()}", "countries": ["SE"], "prices": {"SEK": "49.00"}, "min_days": 1,
              "max_days": 3},
        headers=bearer(admin["access_token"]),
    ) as resp:
        method = await resp.json()
    member = await _member(http)
    address = {"line1": "Drottninggatan 1", "city": "Stockholm", "postal_code": "111 51", "country": "SE"}
    body = {
        **_order(lamp["product_id"], 2, address, shipping_method_id=method["method_id"]),
        "items": [{"product_id": lamp["product_id"], "quantity": 2}, {"product_id": food["product_id"], "quantity": 1}],
    }
    status, order = await place_body(http, member, body)
    assert status == 202, order
    # 250.00 at 25 % holds 50.00; 11.20 at 12 % holds 1.20; shipping 49.00 at 25 % holds 9.80.
    taxes = {line["product_id"]: line["tax"] for line in order["items"]}
    assert taxes == {lamp["product_id"]: "50.00", food["product_id"]: "1.20"}
    assert order["shipping"]["tax"] == "9.80"
    assert order["prices_include_tax"] is True and order["tax_total"] == "61.00"
    assert order["taxes"] == [
        {"name": "Moms", "rate": "25", "amount": "59.80"},
        {"name": "Moms (reduced)", "rate": "12", "amount": "1.20"},
    ]
    # Included: what the customer pays is the prices and shipping, nothing added.
    assert (order["subtotal"], order["total_amount"]) == ("261.20", "310.20")
    await confirmed_and_captured(http, member, order["order_id"])
    assert (await ledger(order["order_id"]))["net_captured"] == 31020
    # The seller's sales report shows the lines' tax (shipping is not the seller's sale).
    async with http.get(
        f"/api/sellers/{seller['user']['user_id']}/reports/sales",
        params={"currency": "SEK"},
        headers=bearer(seller["access_token"]),
    ) as resp:
        report = await resp.json()
    assert (report["totals"]["revenue"], report["totals"]["tax"]) == ("261.20", "51.20"), report


async def test_excluded_tax_is_added_at_the_most_specific_rate(
    http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    await _inclusive(http, admin, "CAD", False)
    await _rate(http, admin, country="CA", rate="5", name="GST")
    await _rate(http, admin, country="CA", region="BC", rate="12", name="GST+PST")
    category = f"taxes-{new_tag()}"
    await create_category(http, admin, category)
    seller = await make_seller(http, admin)
    kettle = await create_product(http, seller, category, price="10.05", currency="CAD", stock=50)
    member = await _member(http)
    vancouver = {"line1": "1 Robson St", "city": "Vancouver", "region": "BC", "postal_code": "V6B 1A1", "country": "CA"}
    toronto = {**vancouver, "city": "Toronto", "region": "ON", "postal_code": "M5H 2N2"}

    status, bc = await place_body(http, member, _order(kettle["product_id"], 3, vancouver))
    assert status == 202, bc
    # 30.15 at 12 % is 3.618: 3.62 added.
    assert (bc["subtotal"], bc["tax_total"], bc["total_amount"]) == ("30.15", "3.62", "33.77")
    assert bc["prices_include_tax"] is False and bc["taxes"] == [{"name": "GST+PST", "rate": "12", "amount": "3.62"}]
    status, on = await place_body(http, member, _order(kettle["product_id"], 3, toronto))
    assert status == 202, on
    # No rate for Ontario itself: the country's 5 % (1.5075 → 1.51).
    assert (on["tax_total"], on["total_amount"]) == ("1.51", "31.66")
    # The order keeps the tax it was charged when the rate changes.
    async with http.get(RATES, params={"country": "CA"}) as resp:
        bc_rate = next(r for r in (await resp.json())["items"] if r["region"] == "BC")
    async with http.put(
        f"{RATES}/{bc_rate['rate_id']}", json={"rate": "13"}, headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 200
    confirmed = await confirmed_and_captured(http, member, bc["order_id"])
    assert (confirmed["tax_total"], confirmed["total_amount"]) == ("3.62", "33.77")
    assert (await ledger(bc["order_id"]))["net_captured"] == 3377
