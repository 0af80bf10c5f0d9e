"""The admin dashboard and the seller portal in a real browser, against the real stack."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aio_pika.abc import AbstractRobustConnection
from playwright.async_api import Page, expect

from contracts.users import REGISTER_USER
from harness.accounts import bearer, create_admin, login, register
from harness.stack import Stack
from tests.browser.conftest import new_seller, screenshot, sign_in
from tests.catalog_support import create_category, new_tag
from tests.orders_support import confirmed_and_captured, matrix_product, place_when_priced
from tests.reliability.conftest import park_a_registration


async def test_pages_are_public_html_under_a_strict_policy(http: aiohttp.ClientSession) -> None:
    for path in ("/admin", "/seller", "/admin/"):
        async with http.get(path) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
            policy = resp.headers["Content-Security-Policy"]
            assert "default-src 'self'" in policy and "script-src 'self'" in policy
            assert "unsafe-inline" not in policy
            assert "<script>" not in await resp.text()  # no inline scripts
    async with http.get("/static/common.js") as resp:
        assert resp.status == 200 and "javascript" in resp.content_type
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    async with http.get("/static/../pyproject.toml") as resp:
        assert resp.status in (403, 404)


async def test_a_member_is_refused_the_dashboard_and_sees_no_data(page: Page, http: aiohttp.ClientSession) -> None:
    member = await register(http)
    api_calls: list[str] = []
    page.on("request", lambda request: api_calls.append(request.url) if "/api/" in request.url else None)
    await sign_in(page, "/admin", member["email"], member["password"])
    await expect(page.get_by_role("heading", name="Admins only")).to_be_visible()
    await expect(page.locator("#nav a")).to_have_count(0)
    assert not [url for url in api_calls if "/api/admin/" in url or "/api/products" in url], api_calls
    await page.goto("/admin#users")  # a deep link shows the same refusal
    await expect(page.get_by_role("heading", name="Admins only")).to_be_visible()
    await screenshot(page, "admin-refused")


async def test_an_admin_creates_a_product_and_ships_an_order(
    page: Page, stack: Stack, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    category = f"browser-{new_tag()}"
    await create_category(http, admin, category)
    operator = create_admin(stack.env)
    await sign_in(page, "/admin", operator["email"], operator["password"])

    await expect(page.locator("svg.chart")).to_be_visible()  # the first section: the overview

    await page.get_by_role("link", name="Products").click()
    await page.get_by_role("button", name="New product").click()
    name = f"Lamp {new_tag()}"
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Price").fill("12.50")
    await page.get_by_label("Category").select_option(category)
    await page.get_by_label("Initial stock").fill("7")
    await page.get_by_label("Description").fill("A lamp made in a browser test.")
    await page.get_by_role("button", name="Create product").click()
    await expect(page.locator("#status")).to_have_text("Product created.")
    await expect(page.get_by_role("cell", name=name, exact=True)).to_be_visible()
    await screenshot(page, "admin-products")

    # An order placed through the API, by a member, for another seller's product.
    product_id = await matrix_product(http, admin)
    member = await register(http)
    session = await login(http, member["email"], member["password"])
    order_id = (await place_when_priced(http, session, product_id))["order_id"]
    await confirmed_and_captured(http, admin, order_id)

    await page.get_by_role("link", name="Orders").click()
    await page.get_by_label("Status").select_option("confirmed")
    await page.get_by_role("button", name="Search").click()
    row = page.get_by_role("row").filter(has_text=order_id[:8])
    await row.get_by_role("button", name="View").click()
    detail = page.locator("#order-detail")
    await expect(detail.locator(".order-status")).to_have_text("confirmed")
    await page.get_by_role("button", name="Ship").click()
    await expect(detail.locator(".order-status")).to_have_text("shipped")
    await expect(page.get_by_role("list", name="Order history")).to_contain_text("shipped")
    await screenshot(page, "admin-order")

    await page.get_by_role("link", name="Overview").click()
    await expect(page.locator("svg.chart rect.bar")).to_have_count(15)  # 14 days and the legend
    await screenshot(page, "admin-overview")
    async with http.get(f"/api/orders/{order_id}", headers=bearer(session["access_token"])) as resp:
        assert (await resp.json())["status"] == "shipped"


async def test_a_seller_sees_the_sales_chart_and_downloads_the_csv(
    page: Page, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    category = f"browser-{new_tag()}"
    await create_category(http, admin, category)
    seller, seller_session = await new_seller(http, admin)
    name = f"Kettle {new_tag()}"
    product = {"name": name, "price": "20.00", "currency": "USD", "category": category, "stock": 9}
    headers = {**bearer(seller_session["access_token"]), "Idempotency-Key": str(uuid.uuid4())}
    async with http.post("/api/products", json=product, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        product_id = (await resp.json())["product_id"]
    member = await register(http)
    buyer = await login(http, member["email"], member["password"])
    order_id = (await place_when_priced(http, buyer, product_id))["order_id"]
    await confirmed_and_captured(http, admin, order_id)

    today = datetime.now(UTC).date().isoformat()
    report = f"/api/sellers/{seller['user_id']}/reports/sales?from={today}&to={today}&granularity=day"
    async with http.get(report, headers=bearer(seller_session["access_token"])) as resp:
        assert resp.status == 200, await resp.text()

    await sign_in(page, "/seller", seller["email"], seller["password"])
    await expect(page.locator("svg.chart")).to_be_visible()
    await expect(page.get_by_role("cell", name=name, exact=True)).to_be_visible()
    await screenshot(page, "seller-sales")
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Download CSV").click()
    download = await info.value
    text = (await download.path()).read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) >= 2, text

    await page.get_by_role("link", name="My products").click()
    await expect(page.get_by_role("cell", name=name, exact=True)).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text=name)).to_contain_text("in stock")
    await page.get_by_role("link", name=f"Edit {name}").click()  # the counts: on the product's page
    variant = page.locator("#product-editor").get_by_role("row").filter(has_text="default")
    await expect(variant.get_by_role("cell", name="8", exact=True)).to_be_visible()  # 9 less 1 sold


async def test_the_pages_work_at_phone_width(page: Page, stack: Stack) -> None:
    await page.set_viewport_size({"width": 375, "height": 740})
    await page.goto("/seller")
    await page.get_by_label("Email").wait_for()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    # The form takes the focus; the keyboard reaches every control, and focus is visible.
    assert await page.evaluate("document.activeElement.name") == "email"
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.name") == "password"
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Sign in"
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    await screenshot(page, "seller-signin-phone")

    operator = create_admin(stack.env)
    await sign_in(page, "/admin", operator["email"], operator["password"])
    await page.get_by_role("link", name="Users").click()
    await expect(page.get_by_role("button", name="View").first).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375  # wide tables scroll in place
    await expect(page.get_by_text("null", exact=True)).to_have_count(0)
    await screenshot(page, "admin-users-phone")


async def test_an_admin_replays_a_dead_letter_and_it_is_handled(
    page: Page, stack: Stack, amqp: AbstractRobustConnection, http: aiohttp.ClientSession
) -> None:
    # A valid registration parked in its dead-letter queue, as a handler bug that kept
    # failing would leave it: replayed from the dashboard, it is handled.
    body, message_id = await park_a_registration(amqp)
    queue = f"{REGISTER_USER.queue}.dlq"

    operator = create_admin(stack.env)
    await sign_in(page, "/admin", operator["email"], operator["password"])
    await page.get_by_role("link", name="Dead letters").click()
    await page.get_by_label("Show empty queues").check()  # the broker's counts lag a little
    await page.get_by_role("row").filter(has_text=queue).get_by_role("button", name="Inspect").click()
    box = page.get_by_label(f"Select message {message_id}")
    await expect(box).to_be_visible()
    await box.check()
    await screenshot(page, "admin-dead-letters")
    await page.get_by_role("button", name="Replay selected").click()
    await expect(page.locator("#status")).to_have_text("Replayed 1 message(s).")
    await expect(page.get_by_label(f"Select message {message_id}")).to_have_count(0)
    for _ in range(100):
        async with http.post("/api/users/login", json={"email": body["email"], "password": body["password"]}) as resp:
            if resp.status == 200:
                return
        await asyncio.sleep(0.1)
    raise AssertionError("the replayed registration was never handled")


async def test_an_admin_adjusts_stock_and_sees_it_low(
    page: Page, stack: Stack, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    category = f"browser-{new_tag()}"
    await create_category(http, admin, category)
    _, seller = await new_seller(http, admin)
    name = f"Stool {new_tag()}"
    product = {"name": name, "price": "15.00", "currency": "USD", "category": category, "stock": 100}
    headers = {**bearer(seller["access_token"]), "Idempotency-Key": str(uuid.uuid4())}
    async with http.post("/api/products", json=product, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        product_id = (await resp.json())["product_id"]
    operator = create_admin(stack.env)
    await sign_in(page, "/admin", operator["email"], operator["password"])
    await page.get_by_role("link", name="Inventory").click()
    await page.get_by_label("Find a product").fill(name)  # by name: no id typed
    await page.get_by_role("button", name="Find", exact=True).click()
    await page.get_by_role("button", name=f"Choose {name}").click()
    await expect(page.get_by_label("Product id")).to_have_value(product_id)
    await expect(page.get_by_text("In stock: 100")).to_be_visible()
    await page.get_by_label("Set stock to").fill("2")
    await page.get_by_label("Low-stock threshold").fill("5")
    await page.get_by_label("Reason").fill("recount")
    await page.get_by_role("button", name="Save stock").click()
    await expect(page.locator("#status")).to_have_text("Stock saved.")
    await expect(page.get_by_text("In stock: 2")).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text=product_id)).to_be_visible()
    await screenshot(page, "admin-inventory")


async def test_an_admin_previews_and_saves_a_template(page: Page, stack: Stack) -> None:
    operator = create_admin(stack.env)
    await sign_in(page, "/admin", operator["email"], operator["password"])
    await page.get_by_role("link", name="Notification templates").click()
    row = page.get_by_role("row").filter(has_text="sms").filter(has_text="order_shipped")
    await row.get_by_role("button", name="Edit").click()
    text = "{{ shop_name }}: order {{ order_id }} is on its way (browser test)."
    await page.get_by_label("Text").fill(text)
    await page.get_by_role("button", name="Preview").click()
    await expect(page.locator("pre").first).to_contain_text("is on its way (browser test).")
    await page.get_by_label("Text").fill("{{ no_such_variable }}")
    await page.get_by_role("button", name="Save template").click()
    await expect(page.locator("#status")).to_contain_text("text")  # the 422 names the bad part
    await page.get_by_label("Text").fill(text)
    await page.get_by_role("button", name="Save template").click()
    await expect(page.locator("#status")).to_have_text("Template saved.")
    await expect(row.locator(".badge")).to_contain_text("edited")  # the list tells it from the defaults
    await expect(page.locator(".badge.default").first).to_have_text("default")
