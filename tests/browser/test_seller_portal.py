"""The seller portal in a real browser (issue 19): every page of a seller's products, the
orders to ship (shipped from the page with a tracking number), and sales per currency."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
from playwright.async_api import Page, expect

from harness.accounts import bearer, login, register
from tests.browser.conftest import new_seller, screenshot, sign_in
from tests.catalog_support import create_category, new_tag
from tests.orders_support import confirmed_and_captured, place_when_priced

PRODUCTS = 52  # more than the portal's page of 50


async def _product(http: aiohttp.ClientSession, seller: dict[str, Any], body: dict[str, Any]) -> str:
    headers = {**bearer(seller["access_token"]), "Idempotency-Key": str(uuid.uuid4())}
    async with http.post("/api/products", json=body, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["product_id"])


async def _stocked(http: aiohttp.ClientSession, product_id: str, stock: int) -> None:
    """Until the inventory service has the new product's stock (it follows the catalog's
    events, behind a burst of 52 listings): an order placed before is out of stock."""
    for _ in range(300):
        async with http.get(f"/api/inventory/{product_id}") as resp:
            if resp.status == 200 and (await resp.json())["stock"] == stock:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the inventory never stocked {product_id}")


async def test_a_seller_pages_through_products_ships_an_order_and_sees_each_currency(
    page: Page, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    category = f"portal-{new_tag()}"
    await create_category(http, admin, category)
    made, seller = await new_seller(http, admin)
    tag = new_tag()
    bodies = [
        {"name": f"Mug {tag} {n:03}", "price": "5.00", "currency": "USD", "category": category, "stock": 5}
        for n in range(PRODUCTS - 1)
    ]
    # The first made is the oldest: the last row of the last page (newest first).
    first = await _product(http, seller, bodies[0])
    for start in range(1, len(bodies), 10):
        await asyncio.gather(*(_product(http, seller, b) for b in bodies[start : start + 10]))
    euro = await _product(
        http, seller, {"name": f"Teapot {tag}", "price": "30.00", "currency": "EUR", "category": category, "stock": 5}
    )

    member = await register(http)
    buyer = await login(http, member["email"], member["password"])
    for product_id in (first, euro):
        await _stocked(http, product_id, 5)
    to_ship = (await place_when_priced(http, buyer, first))["order_id"]
    in_euros = (await place_when_priced(http, buyer, euro))["order_id"]
    for order_id in (to_ship, in_euros):
        await confirmed_and_captured(http, admin, order_id)

    await sign_in(page, "/seller", made["email"], made["password"])
    per_currency = page.locator("#sales-per-currency")
    await expect(per_currency.get_by_role("row").filter(has_text="USD")).to_contain_text("$5.00")
    await expect(per_currency.get_by_role("row").filter(has_text="EUR")).to_contain_text("30.00")
    await screenshot(page, "seller-sales-per-currency")

    await page.get_by_role("link", name="My products").click()
    await expect(page.get_by_text(f"Showing 50 of {PRODUCTS} products.")).to_be_visible()
    await expect(page.get_by_role("link", name=f"Edit Mug {tag} 000")).to_have_count(0)  # not on the first page
    await page.get_by_role("button", name="Show 50 more").click()
    await expect(page.get_by_text(f"Showing {PRODUCTS} of {PRODUCTS} products.")).to_be_visible()
    await expect(page.get_by_role("link", name=f"Edit Mug {tag} 000")).to_be_visible()
    await expect(page.get_by_role("button", name="Show 50 more")).to_have_count(0)
    await expect(page.get_by_text("null", exact=True)).to_have_count(0)

    # Editing a product's details from its page.
    await page.get_by_role("link", name=f"Edit Mug {tag} 000").click()
    await page.get_by_label("Name", exact=True).fill(f"Big mug {tag}")
    await page.get_by_role("button", name="Save details").click()
    await expect(page.locator("#product-editor h3")).to_have_text(f"Big mug {tag}")

    await page.get_by_role("link", name="Orders to ship").click()
    ref = f"#{to_ship[:8]}"
    row = page.get_by_role("row").filter(has_text=ref)
    await expect(row).to_contain_text(f"Mug {tag} 000")  # the name it was sold under
    await expect(page.get_by_role("row").filter(has_text=f"#{in_euros[:8]}")).to_be_visible()
    await page.get_by_label(f"Tracking number for order {ref}").fill("JD014600003828")
    await page.get_by_label(f"Carrier for order {ref}").fill("DHL")
    await page.get_by_role("button", name=f"Ship order {ref}").click()
    await expect(page.locator("#status")).to_have_text(f"Order {ref} shipped.")
    await expect(page.get_by_role("row").filter(has_text=ref)).to_have_count(0)
    await expect(page.get_by_text("null", exact=True)).to_have_count(0)
    await screenshot(page, "seller-orders")

    async with http.get(f"/api/orders/{to_ship}", headers=bearer(buyer["access_token"])) as resp:
        order = await resp.json()
    assert order["status"] == "shipped"
    assert order["tracking"] == {"carrier": "DHL", "number": "JD014600003828"}
    async with http.get(f"/api/products/{first}") as resp:
        assert (await resp.json())["name"] == f"Big mug {tag}"
