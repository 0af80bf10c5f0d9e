"""The operator's journey in a real browser (issue 19): find a customer's order by typing
their email, read who and where it goes, ship it with a tracking number, and refund
another order in full, all without typing an id."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
from playwright.async_api import Dialog, Page, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from harness.accounts import bearer, create_admin, login, register
from harness.stack import Stack
from tests.browser.conftest import screenshot, sign_in
from tests.orders_support import (
    ADDRESS,
    confirmed_and_captured,
    known_to_orders,
    ledger,
    matrix_product,
    place_when_priced,
)


async def _order(http: aiohttp.ClientSession, session: dict[str, Any], order_id: str) -> dict[str, Any]:
    async with http.get(f"/api/orders/{order_id}", headers=bearer(session["access_token"])) as resp:
        assert resp.status == 200, await resp.text()
        order: dict[str, Any] = await resp.json()
        return order


async def test_an_operator_finds_ships_and_refunds_orders_without_an_id(
    page: Page, stack: Stack, http: aiohttp.ClientSession, db: AsyncEngine, admin: dict[str, Any]
) -> None:
    product_id = await matrix_product(http, admin)
    tag = uuid.uuid4().hex[:8]
    email = f"ada.{tag}@example.com"
    customer = await register(http, email=email, username=f"ada_{tag}")
    await known_to_orders(db, customer["user_id"])  # so her orders keep her name, which the rows show
    session = await login(http, email, customer["password"])
    to_ship = (await place_when_priced(http, session, product_id))["order_id"]
    to_refund = (await place_when_priced(http, session, product_id))["order_id"]
    other = await register(http)  # another customer's order, which the search must leave out
    someone_else = (await place_when_priced(http, await login(http, other["email"], other["password"]), product_id))[
        "order_id"
    ]
    for order_id in (to_ship, to_refund, someone_else):
        await confirmed_and_captured(http, admin, order_id)
    line_name = (await _order(http, session, to_ship))["items"][0]["name"]

    operator = create_admin(stack.env)
    await sign_in(page, "/admin", operator["email"], operator["password"])
    await page.get_by_role("link", name="Orders").click()
    await page.get_by_label("Find orders").fill(email.upper())  # as an operator types it, any case
    await page.get_by_role("button", name="Search").click()
    rows = page.get_by_role("row").filter(has_text=f"ada_{tag}")
    await expect(rows).to_have_count(2)
    await expect(page.get_by_role("row")).to_have_count(3)  # the header and her two orders, nobody else's
    await expect(page.get_by_role("row").filter(has_text=someone_else[:8])).to_have_count(0)
    await expect(rows.first).to_contain_text(email)
    await screenshot(page, "admin-order-search")

    # The order to ship: its row's button names it (order reference and customer).
    await page.get_by_role("button", name=f"View order #{to_ship[:8]} of ada_{tag}").click()
    detail = page.locator("#order-detail")
    await expect(detail.locator(".order-status")).to_have_text("confirmed")
    await expect(detail.get_by_role("region", name="Customer")).to_contain_text(f"ada_{tag}")
    await expect(detail.get_by_role("region", name="Customer")).to_contain_text(email)
    address = detail.get_by_role("region", name="Shipping address")
    for part in (ADDRESS["line1"], ADDRESS["city"], ADDRESS["postal_code"]):
        await expect(address).to_contain_text(part)
    await expect(detail.get_by_role("cell", name=line_name)).to_be_visible()
    await page.get_by_label("Tracking number").fill("1Z999AA10123456784")
    await page.get_by_label("Carrier").fill("UPS")
    await page.get_by_role("button", name="Ship", exact=True).click()
    await expect(detail.locator(".order-status")).to_have_text("shipped")
    await expect(detail.locator(".tracking")).to_have_text("Tracking: UPS 1Z999AA10123456784")
    await screenshot(page, "admin-order-detail")

    # Back to the customer's page, and from their order list to the other order.
    await detail.get_by_role("link", name=f"ada_{tag}").click()
    history = page.locator("#customer-orders")
    await expect(history.get_by_role("row")).to_have_count(3)  # the header and two orders
    await screenshot(page, "admin-customer")
    await history.get_by_role("link", name=f"View order #{to_refund[:8]}").click()
    await expect(detail.locator(".order-status")).to_have_text("confirmed")

    async def accept(dialog: Dialog) -> None:
        assert "refund" in dialog.message
        await dialog.accept()

    page.once("dialog", lambda dialog: asyncio.ensure_future(accept(dialog)))
    await page.get_by_role("button", name="Cancel and refund in full").click()
    await expect(detail.locator(".order-status")).to_have_text("cancelled")
    for _ in range(100):
        await page.get_by_role("button", name="Reload").click()
        if await detail.locator(".payment-status").text_content() == "refunded":
            break
        await asyncio.sleep(0.2)
    await expect(detail.locator(".payment-status")).to_have_text("refunded")

    shipped = await _order(http, session, to_ship)
    assert shipped["status"] == "shipped"
    assert shipped["tracking"] == {"carrier": "UPS", "number": "1Z999AA10123456784"}
    refunded = await _order(http, session, to_refund)
    assert (refunded["status"], refunded["payment_status"]) == ("cancelled", "refunded")
    book = await ledger(to_refund)
    assert book["refunded"] == book["captured"] > 0 and book["net_captured"] == 0, book
