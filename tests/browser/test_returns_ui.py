"""Returns and partial refunds in a real browser (issue 18 point 6, issue 19 point 2): a seller
takes back one of two lines of a delivered order from the portal (approve, receive as
resaleable, refund) and an admin refunds part of an order from its page; the API, the stock
and the payment sandbox's ledger show what the pages did."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
from playwright.async_api import Page, expect

from harness.accounts import bearer, create_admin
from harness.stack import Stack
from tests.browser.conftest import new_seller, screenshot, sign_in
from tests.orders_support import ledger
from tests.returns_support import delivered_order_target, eventually, request_return, return_target, two_line_order

# A refund is pending until the payment sandbox has answered: the page shows it on its own.
SETTLED_MS = 30_000


def _cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


async def _read(http: aiohttp.ClientSession, who: dict[str, Any], url: str) -> dict[str, Any]:
    async with http.get(url, headers=bearer(who["access_token"])) as resp:
        assert resp.status == 200, await resp.text()
        found: dict[str, Any] = await resp.json()
        return found


async def test_a_seller_approves_receives_and_refunds_one_of_two_lines_from_the_portal(
    page: Page, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    made, shirts = await new_seller(http, admin)
    two = await two_line_order(http, admin, shirts)
    order, member, shirt, tag = two["order"], two["member"], two["shirt"], two["tag"]
    order_id = order["order_id"]
    customer = order["customer"]["name"]
    stock_before = (await _read(http, shirts, f"/api/inventory/{shirt['product_id']}"))["stock"]

    # The member sends back the two shirts, not the cap.
    status, ret = await request_return(http, member, order_id, [{"product_id": shirt["product_id"], "quantity": 2}])
    assert status == 201, ret
    [line] = ret["items"]
    assert 0 < _cents(line["refund"]) < _cents(order["total_amount"])

    await sign_in(page, "/seller", made["email"], made["password"])
    await page.get_by_role("link", name="Returns", exact=True).click()
    row = page.get_by_role("row").filter(has_text=f"#{order_id[:8]}")
    await expect(row).to_contain_text(customer)  # a name, not an id
    await expect(row).to_contain_text(f"2 \u00d7 Shirt {tag}")
    await expect(row).not_to_contain_text(f"Cap {tag}")
    await expect(row).to_contain_text("requested")
    await screenshot(page, "seller-returns")
    await row.get_by_role("link", name=f"Open the return of order #{order_id[:8]} from {customer}").click()

    detail = page.locator("#return-detail")
    await expect(detail.locator(".return-status")).to_have_text("requested")
    await page.get_by_label("Note for the customer").fill("Send them back in their bag")
    await page.get_by_role("button", name="Approve").click()
    await expect(detail.locator(".return-status")).to_have_text("approved")
    await expect(detail).to_contain_text("Send them back in their bag")

    resaleable = page.get_by_label(f"Back on sale: Shirt {tag}")
    await expect(resaleable).to_be_checked()
    await page.get_by_role("button", name="Mark received").click()
    await expect(detail.locator(".return-status")).to_have_text("received")
    await expect(detail.get_by_role("row").filter(has_text=f"Shirt {tag}")).to_contain_text("yes")

    await expect(page.get_by_label(f"Quantity to refund of Shirt {tag}")).to_have_value("2")
    await page.get_by_role("button", name="Refund", exact=True).click()
    # Pending, then refunded once the payment provider has refunded it, without a reload.
    await expect(detail.locator(".return-status")).to_have_text("refunded", timeout=SETTLED_MS)
    await expect(detail.locator(".refund-status")).to_have_text("refunded")
    await expect(page.get_by_role("button", name="Refund", exact=True)).to_have_count(0)
    await expect(detail).not_to_contain_text("null")
    await screenshot(page, "seller-return-refunded")

    done = await _read(http, member, f"/api/returns/{ret['return_id']}")
    assert done["status"] == "refunded" and done["items"][0]["resaleable"] is True
    await eventually(http, shirts, f"/api/inventory/{shirt['product_id']}", lambda s: s["stock"] == stock_before + 2)
    final = await _read(http, member, f"/api/orders/{order_id}")
    assert [r["status"] for r in final["refunds"]] == ["refunded"]
    assert _cents(final["refunded_total"]) == _cents(line["refund"])
    books = await ledger(order_id)
    assert books["captured"] == _cents(order["total_amount"]), books
    assert books["refunded"] == _cents(line["refund"]) and books["refunds"] == 1, books


async def test_an_admin_finds_a_return_and_refunds_part_of_its_order_from_the_order_page(
    page: Page, stack: Stack, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    target = await return_target(http, admin)
    order_id, return_id = target["params"]["orderId"], target["params"]["returnId"]
    order = await _read(http, target, f"/api/orders/{order_id}")
    customer = order["customer"]["name"]
    assert _cents(order["total_amount"]) > 250

    operator = create_admin(stack.env)
    await sign_in(page, "/admin", operator["email"], operator["password"])
    await page.get_by_role("link", name="Returns", exact=True).click()
    await page.get_by_role("form", name="Filter the returns").get_by_label("Status").select_option("requested")
    await page.get_by_role("button", name="Show").click()
    row = page.get_by_role("row").filter(has_text=f"#{order_id[:8]}")
    await expect(row.get_by_role("link", name=customer, exact=True)).to_have_attribute(
        "href", f"#users/{target['user_id']}"
    )
    await row.get_by_role("link", name=f"Open the return of order #{order_id[:8]} from {customer}").click()
    detail = page.locator("#return-detail")
    await expect(detail.locator(".return-status")).to_have_text("requested")
    await screenshot(page, "admin-return")

    # From the return to its order, which lists it, and a partial refund there.
    await detail.get_by_role("link", name=f"#{order_id[:8]}").click()
    order_page = page.locator("#order-detail")
    await expect(order_page.locator("#order-returns")).to_contain_text("requested")
    await page.get_by_label(f"Amount ({order['currency']})").fill("2.50")
    await page.get_by_label("Reason", exact=True).fill("Arrived late")
    submit = page.get_by_role("button", name="Refund part")
    await submit.click()
    refunds = order_page.locator("#order-refunds")
    await expect(refunds.get_by_role("row").filter(has_text="Arrived late")).to_contain_text("$2.50")
    await expect(refunds.locator(".refund-status")).to_have_text("refunded", timeout=SETTLED_MS)
    await expect(order_page).to_contain_text("Refunded")
    await expect(order_page).not_to_contain_text("null")
    await screenshot(page, "admin-order-partial-refund")

    final = await _read(http, target, f"/api/orders/{order_id}")
    assert final["refunded_total"] == "2.50" and final["status"] == "delivered"
    assert [(r["amount"], r["reason"], r["return_id"]) for r in final["refunds"]] == [("2.50", "Arrived late", None)]
    books = await ledger(order_id)
    assert books["refunded"] == 250 and books["refunds"] == 1, books
    # The return is still the seller's or admin's to decide.
    assert (await _read(http, target, f"/api/returns/{return_id}"))["status"] == "requested"


async def test_a_member_asks_to_return_a_delivered_line_from_the_order_page(
    page: Page, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    target = await delivered_order_target(http, admin)
    order_id = target["params"]["orderId"]
    [line] = (await _read(http, target, f"/api/orders/{order_id}"))["items"]

    await page.goto(f"/orders/{order_id}")
    await page.get_by_label("Email").fill(target["email"])
    await page.get_by_label("Password").fill(target["password"])
    await page.get_by_role("button", name="Sign in").click()
    mine = page.locator("#my-returns")
    await mine.get_by_label(f"How many of {line['name']} to send back").fill("1")
    await mine.get_by_label("Why are you sending them back?").fill("Too small")
    await mine.get_by_role("button", name="Ask for a return").click()
    await expect(mine.locator(".return-status")).to_have_text("requested")
    # Nothing is left to return: the form is gone.
    await expect(mine.get_by_role("button", name="Ask for a return")).to_have_count(0)
    await expect(mine).not_to_contain_text("null")
    await screenshot(page, "shop-order-return")

    listed = await _read(http, target, f"/api/orders/{order_id}/returns")
    assert [
        (r["status"], r["reason"], [(i["product_id"], i["quantity"]) for i in r["items"]]) for r in listed["items"]
    ] == [("requested", "Too small", [(line["product_id"], 1)])]
