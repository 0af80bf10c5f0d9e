"""The dashboard's Vouchers page in a real browser (issue 18 point 5, issue 19 point 2): an
admin makes a 15 % code for one category with two uses in all, sees a member's order take
one, limits it to a seller chosen by name, and deactivates it; the API shows each change
(the code is then refused at checkout). A 422 from the form is shown beside its field."""

from __future__ import annotations

from typing import Any

import aiohttp
from playwright.async_api import Page, expect

from harness.accounts import bearer, create_admin, login, make_seller, register
from harness.stack import Stack
from tests.browser.conftest import screenshot, sign_in
from tests.catalog_support import create_category, create_product, new_tag
from tests.orders_support import ADDRESS, place_body


async def _voucher(http: aiohttp.ClientSession, admin: dict[str, Any], code: str) -> dict[str, Any]:
    async with http.get("/api/vouchers", headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 200, await resp.text()
        listed = await resp.json()
    (found,) = [v for v in listed["items"] if v["code"] == code]
    return dict(found)


async def _checkout(http: aiohttp.ClientSession, product_id: str, code: str) -> tuple[int, dict[str, Any]]:
    account = await register(http)
    member = await login(http, account["email"], account["password"])
    body = {
        "items": [{"product_id": product_id, "quantity": 1}],
        "shipping_address": ADDRESS,
        "payment_token": "tok_visa",
        "voucher_code": code.lower(),
    }
    return await place_body(http, member, body)


async def test_an_admin_makes_watches_limits_and_deactivates_a_voucher_from_the_page(
    page: Page, stack: Stack, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    tag = new_tag()
    on_sale = f"vouchers-{tag}"
    await create_category(http, admin, on_sale)
    category = f"Vouchers {tag.title()}"  # create_category's name for the slug
    seller = await make_seller(http, admin)
    shirt = await create_product(http, seller, on_sale, price="19.99", currency="USD", stock=10)
    code = f"UI-{tag.upper()}"

    operator = create_admin(stack.env)
    await sign_in(page, "/admin", operator["email"], operator["password"])
    await page.get_by_role("link", name="Vouchers").click()
    await page.get_by_role("button", name="New voucher").click()
    editor = page.locator("#voucher-editor")

    # The server's 422s, beside the field each names (the page checks neither itself).
    code_box = editor.get_by_label("Code", exact=True)
    await code_box.fill("ui sale")
    await editor.get_by_label("Percent off", exact=True).fill("15")
    await page.get_by_role("button", name="Create voucher").click()
    await expect(code_box).to_have_attribute("aria-invalid", "true")
    await expect(editor.locator("#problem-code")).to_contain_text("pattern")
    await expect(editor.locator("#problem-percent")).to_have_text("")
    await code_box.fill(code.lower())
    await editor.get_by_label("Percent off", exact=True).fill("")
    await page.get_by_role("button", name="Create voucher").click()
    await expect(editor.locator("#problem-percent")).to_contain_text("give `percent` or `amounts`")
    await expect(editor.get_by_label("Percent off", exact=True)).to_have_attribute("aria-invalid", "true")
    await expect(code_box).not_to_have_attribute("aria-invalid", "true")
    await expect(editor.locator("#problem-code")).to_have_text("")
    await screenshot(page, "admin-voucher-problems")

    await editor.get_by_label("Percent off", exact=True).fill("15")
    await editor.get_by_label("Categories").select_option(label=category)
    await editor.get_by_label("Total uses allowed").fill("2")
    await page.get_by_role("button", name="Create voucher").click()
    await expect(editor).to_have_count(0)
    row = page.get_by_role("row").filter(has_text=code)
    await expect(row).to_contain_text("0 / 2")
    await expect(row).to_contain_text("15 %")
    await expect(row).to_contain_text(f"{category} (category)")  # its name, not its slug
    await expect(row.locator(".voucher-active")).to_have_text("yes")
    created = await _voucher(http, admin, code)
    assert (created["percent"], created["categories"], created["usage_limit"]) == ("15", [on_sale], 2), created
    assert (created["amounts"], created["sellers"], created["active"]) == ({}, [], True), created

    # A member's checkout takes a use: 15 % of 19.99 is 2.9985, 3.00.
    status, order = await _checkout(http, shirt["product_id"], code)
    assert status == 202, order
    assert (order["voucher_code"], order["discount_total"], order["total_amount"]) == (code, "3.00", "16.99"), order
    await page.get_by_label("Show").select_option("true")  # only the active ones: the list is read again
    await expect(row).to_contain_text("1 / 2")

    # An edit: one more use in all, and only this seller's products, chosen by name.
    await row.get_by_role("button", name=f"Edit {code}").click()
    await expect(editor.get_by_label("Total uses allowed")).to_have_value("2")
    await editor.get_by_label("Total uses allowed").fill("3")
    await editor.get_by_label("Find a seller").fill(seller["user"]["email"])
    await editor.get_by_role("button", name="Find sellers").click()
    await editor.get_by_role("button", name=f"Add seller {seller['user']['username']}").click()
    await page.get_by_role("button", name="Save voucher").click()
    await expect(row).to_contain_text("1 / 3")
    await expect(row).to_contain_text(f"{seller['user']['username']} (seller)")
    changed = await _voucher(http, admin, code)
    assert (changed["usage_limit"], changed["sellers"], changed["categories"]) == (
        3,
        [seller["user"]["user_id"]],
        [on_sale],
    )
    assert changed["percent"] == "15" and changed["active"] is True, changed
    await screenshot(page, "admin-vouchers")

    # Deactivated from its row: gone from the active ones, "no" among all; checkouts refuse it.
    await row.get_by_role("button", name=f"Deactivate {code}").click()
    await expect(row).to_have_count(0)
    await page.get_by_label("Show").select_option("")
    await expect(row.locator(".voucher-active")).to_have_text("no")
    await expect(row.get_by_role("button", name=f"Reactivate {code}")).to_be_visible()
    assert (await _voucher(http, admin, code))["active"] is False
    status, refused = await _checkout(http, shirt["product_id"], code)
    assert status == 422, refused
    assert [(e["field"], e["message"]) for e in refused["errors"]] == [("voucher_code", "this voucher is not active")]

    # The order's page shows the discount with its code, and each line's share.
    await page.goto(f"/admin#orders/{order['order_id']}")
    detail = page.locator("#order-detail")
    await expect(detail).to_contain_text(f"Discount ({code})")
    await expect(detail.get_by_role("row").filter(has_text=shirt["name"])).to_contain_text("\u2212$3.00")
