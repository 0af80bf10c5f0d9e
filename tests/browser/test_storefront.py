"""The storefront (`/`) in a real browser, against the real stack: a guest's whole journey
from a misspelt search to a confirmed order, checked in the page and through the API."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import aiohttp
from playwright.async_api import Page, Response, expect

from harness.accounts import bearer, login, make_seller, new_user
from tests.browser.conftest import screenshot
from tests.catalog_support import create_category, create_product, new_tag

ORDER_PAGE = re.compile(r"/orders/([0-9a-f-]{36})$")
# Where the page keeps when the access cookie expires (edge/static/shop/session.js).
EXPIRES_KEY = "agora.shop.access_expires"
# The saga reserves stock and authorizes the payment in the background.
CONFIRMED_WITHIN_MS = 30_000


async def _on_sale(http: aiohttp.ClientSession, product: dict[str, Any], typo: str) -> None:
    """Until the catalog's search knows the product's words (the misspelling finds it), the
    inventory's stock reached its page, and the orders service prices every variant (a
    probe into a throwaway guest cart, named by header so no cookie is kept)."""
    product_id = product["product_id"]
    probe = {"X-Cart-Id": str(uuid.uuid4())}
    pending = {"search", "stock", *(v["variant_id"] for v in product["variants"])}
    for _ in range(200):
        if "search" in pending:
            async with http.get("/api/products", params={"q": typo}) as resp:
                if product_id in [p["product_id"] for p in (await resp.json())["items"]]:
                    pending.discard("search")
        if "stock" in pending:
            async with http.get(f"/api/products/{product_id}") as resp:
                if all(v["availability"] == "in_stock" for v in (await resp.json())["variants"]):
                    pending.discard("stock")
        for variant in [v for v in product["variants"] if v["variant_id"] in pending]:
            body = {"product_id": product_id}
            if variant["variant_id"] != product_id:  # not the default variant
                body["variant_id"] = variant["variant_id"]
            async with http.post("/api/cart/items", json=body, headers=probe) as resp:
                if resp.status == 200:
                    pending.discard(variant["variant_id"])
                else:
                    assert resp.status == 404, await resp.text()
        if not pending:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the product was never fully on sale: {pending}")


async def _lantern(http: aiohttp.ClientSession, admin: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A lantern of a new seller, in sizes S and M unless `fields` say otherwise, with an
    image hosted elsewhere; `tag` is the word unique to it."""
    seller = await make_seller(http, admin)
    category = f"shop-{new_tag()}"
    await create_category(http, admin, category)
    tag = new_tag()
    small, medium = {"options": {"Size": "S"}, "stock": 20}, {"options": {"Size": "M"}, "price": "26.00", "stock": 20}
    sizes = {"options": [{"name": "Size", "values": ["S", "M"]}], "variants": [small, medium]}
    product = await create_product(
        http,
        seller,
        category,
        name=f"Lantern {tag}",
        description="A camping lantern: brass, glass and a wick.",
        price="24.00",
        images=[{"url": "https://images.example.com/lantern.jpg", "alt": "A brass lantern, lit"}],
        **{**sizes, **fields},
    )
    await _on_sale(http, product, f"lantren {tag}")
    return {**product, "tag": tag, "category_name": category.replace("-", " ").title()}


async def _shipping_method(http: aiohttp.ClientSession, admin: dict[str, Any], name: str) -> None:
    body = {"name": name, "countries": ["US"], "prices": {"USD": "4.90"}, "min_days": 2, "max_days": 5}
    async with http.post("/api/shipping-methods", json=body, headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 201, await resp.text()


async def _api(http: aiohttp.ClientSession, who: dict[str, Any], path: str) -> Any:
    async with http.get(path, headers=bearer(who["access_token"])) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_a_guest_finds_a_product_with_a_typo_signs_up_checks_out_and_watches_it_confirm(
    page: Page, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    lantern = await _lantern(http, admin)
    name, tag = lantern["name"], lantern["tag"]
    parcel = f"Parcel {tag}"
    await _shipping_method(http, admin, parcel)
    code = f"LANTERN{tag}"[:32].upper()
    async with http.post(
        "/api/vouchers", json={"code": code, "percent": "10"}, headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 201, await resp.text()
    streams: list[Response] = []
    page.on("response", lambda response: streams.append(response) if response.url.endswith("/events") else None)

    # A guest searches, misspelling the product's name: suggested as they type, and found.
    await page.goto("/")
    await expect(page.get_by_role("heading", name="Welcome to Agora")).to_be_visible()
    search = page.get_by_role("combobox", name="Search products")
    await search.fill(f"lantren {tag}")
    await expect(page.get_by_role("option", name=name)).to_be_visible()
    await screenshot(page, "shop-suggestions")
    await search.press("Enter")  # no suggestion chosen: a search for what was typed
    await expect(page.get_by_role("heading", name=f"Results for “lantren {tag}”")).to_be_visible()
    await expect(page.get_by_text("1 product.")).to_be_visible()
    await screenshot(page, "shop-search")

    # The product page: its image is hosted elsewhere, so its alt text stands in for it.
    await page.get_by_role("link", name=name).click()
    await expect(page.get_by_role("heading", name=name, level=2)).to_be_visible()
    await expect(page.get_by_role("img", name="A brass lantern, lit")).to_be_visible()
    await page.get_by_label("Size").select_option("M")
    await expect(page.locator(".buy .price")).to_contain_text("26.00")
    await expect(page.locator(".buy .availability")).to_have_text("In stock")
    await page.get_by_role("button", name="Add to cart").click()
    await expect(page.get_by_text(f"Added {name} (M) to your cart, quantity 1.")).to_be_visible()
    await expect(page.get_by_role("link", name="Cart (1)")).to_be_visible()
    await screenshot(page, "shop-product")

    await page.get_by_role("link", name="Cart (1)").click()
    await expect(page.get_by_role("row").filter(has_text=name)).to_contain_text("M")
    await screenshot(page, "shop-cart")
    await page.get_by_role("link", name="Check out").click()
    await expect(page.get_by_text("Sign in or create an account to place your order.")).to_be_visible()

    # Signing up signs in, and the guest cart comes along.
    await page.get_by_role("link", name="Create an account").click()
    user = new_user()
    await page.get_by_label("Email").fill(user["email"])
    await page.get_by_label("Username").fill(user["username"])
    await page.get_by_label("Password").fill(user["password"])
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Checkout")).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text=name)).to_contain_text("M")
    member = await login(http, user["email"], user["password"])
    cart = await _api(http, member, "/api/cart")
    assert [(line["name"], line["variant"], line["quantity"]) for line in cart["items"]] == [(name, "M", 1)]

    await page.get_by_label("Full name").fill("Ada Lovelace")
    await page.get_by_label("Address", exact=True).fill("1 Main St")
    await page.get_by_label("City").fill("Springfield")
    await page.get_by_label("Postal code").fill("12345")
    await page.get_by_label("Country").select_option("US")
    await page.get_by_label(parcel).check()
    await page.get_by_label("Discount code (optional)").fill(code.lower())
    await expect(page.get_by_label("Test card")).to_have_value("tok_visa")
    await screenshot(page, "shop-checkout")
    # As if the shopper had lingered past the access token's life: the page renews the
    # session before placing the order (with the refresh cookie and the CSRF header).
    await page.evaluate(f"localStorage.setItem({EXPIRES_KEY!r}, '0')")
    await page.get_by_role("button", name="Place order").click()

    # The order's own page (the address its emails link to) follows it live to "confirmed".
    await page.wait_for_url(ORDER_PAGE)
    renewed_until = await page.evaluate(f"Number(localStorage.getItem({EXPIRES_KEY!r}))")
    assert renewed_until > await page.evaluate("Date.now()")
    match = ORDER_PAGE.search(page.url)
    assert match
    order_id = match.group(1)
    status = page.locator(".order-status")
    await expect(status).to_have_attribute("data-status", "confirmed", timeout=CONFIRMED_WITHIN_MS)
    await expect(status).to_have_text("Confirmed")
    await expect(page.get_by_role("list", name="Order history")).to_contain_text("Confirmed")
    await expect(page.get_by_role("status").filter(has=status)).to_contain_text("payment")
    assert streams and streams[0].headers["content-type"].startswith("text/event-stream")
    await expect(page.get_by_role("link", name="Cart", exact=True)).to_be_visible()  # the ordered lines left it
    await expect(page.locator(".totals-list")).to_contain_text(f"Discount ({code})")
    await screenshot(page, "shop-order")
    order = await _api(http, member, f"/api/orders/{order_id}")
    assert order["status"] == "confirmed"
    # 10 % off the 26.00 lantern; shipping is never discounted.
    assert (order["voucher_code"], order["subtotal"], order["discount_total"]) == (code, "26.00", "2.60"), order
    assert [(line["name"], line["variant"]) for line in order["items"]] == [(name, "M")]
    assert order["shipping"]["name"] == parcel and order["shipping_address"]["recipient"] == "Ada Lovelace"
    assert (await _api(http, member, "/api/cart"))["items"] == []

    # The order history lists it; the profile keeps a notification preference.
    await page.get_by_role("link", name="Orders").click()
    row = page.get_by_role("row").filter(has_text=order_id[:8])
    await expect(row).to_contain_text("Confirmed")
    await screenshot(page, "shop-orders")
    await page.get_by_role("link", name="Profile").click()
    await page.get_by_label("News and offers by email").check()
    await page.get_by_role("button", name="Save preferences").click()
    await expect(page.get_by_text("Preferences saved.")).to_be_visible()
    await screenshot(page, "shop-profile")
    preferences = await _api(http, member, f"/api/users/{member['user']['user_id']}/notification-preferences")
    assert preferences["preferences"]["marketing_email"] is True

    # The link in an email, opened signed out: sign in, and there is the order.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    await page.goto(f"/orders/{order_id}")
    await expect(page.get_by_text("Sign in to see this order.")).to_be_visible()
    await page.get_by_label("Email").fill(user["email"])
    await page.get_by_label("Password").fill(user["password"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator(".order-status")).to_have_attribute("data-status", "confirmed")


async def test_the_storefront_and_an_orders_address_serve_the_page_under_the_strict_policy(
    http: aiohttp.ClientSession,
) -> None:
    for path in ("/", f"/orders/{uuid.uuid4()}"):
        async with http.get(path) as resp:
            assert resp.status == 200, path
            assert resp.content_type == "text/html"
            policy = resp.headers["Content-Security-Policy"]
            assert "default-src 'self'" in policy and "script-src 'self'" in policy and "img-src 'self' data:" in policy
            assert "unsafe-inline" not in policy
            text = await resp.text()
            assert 'src="/static/shop/app.js"' in text and "<script>" not in text
    async with http.get("/orders/not-an-order") as resp:  # only an order id is a page
        assert resp.status == 404 and resp.content_type == "application/problem+json"
    async with http.get("/static/shop/app.js") as resp:
        assert resp.status == 200 and "javascript" in resp.content_type
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_a_suggestion_is_chosen_with_the_keyboard_at_phone_width(
    page: Page, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    lantern = await _lantern(http, admin, options=[], variants=[{"options": {}, "stock": 8}])
    name = lantern["name"]
    await page.set_viewport_size({"width": 375, "height": 740})
    await page.goto("/")
    await expect(page.get_by_role("heading", name="Welcome to Agora")).to_be_visible()
    search = page.get_by_role("combobox", name="Search products")
    await search.focus()
    await page.keyboard.type(f"lantren {lantern['tag']}")
    option = page.get_by_role("option", name=name)
    await expect(option).to_be_visible()
    await expect(search).to_have_attribute("aria-expanded", "true")
    await page.keyboard.press("ArrowDown")
    await expect(option).to_have_attribute("aria-selected", "true")
    await expect(search).to_have_attribute("aria-activedescendant", await option.get_attribute("id") or "")
    await screenshot(page, "shop-suggestions-phone")
    await page.keyboard.press("Enter")

    # The product page takes the focus; the keyboard reaches "Add to cart", focus visible.
    heading = page.get_by_role("heading", name=name, level=2)
    await expect(heading).to_be_focused()
    await expect(search).to_have_attribute("aria-expanded", "false")
    for _ in range(30):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.textContent") == "Add to cart":
            break
    else:
        raise AssertionError("the keyboard never reached Add to cart")
    assert await page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    await page.keyboard.press("Enter")
    await expect(page.get_by_text(f"Added {name} to your cart, quantity 1.")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    await screenshot(page, "shop-product-phone")
    await page.get_by_role("link", name="Cart (1)").click()
    await expect(page.get_by_role("button", name=f"Remove {name}")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375  # the table scrolls in place
    await screenshot(page, "shop-cart-phone")

    # Its category's page lists it.
    await page.get_by_role("link", name=name).click()
    await page.get_by_role("link", name=f"More in {lantern['category_name']}").click()
    await expect(page.get_by_role("heading", name=lantern["category_name"], level=2)).to_be_visible()
    await expect(page.get_by_role("list", name="Products").get_by_role("link", name=name)).to_be_visible()
