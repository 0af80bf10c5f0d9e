"""The product editor (images and variants) of the seller portal and the admin dashboard.

Every change made in the page is checked where it lands: in the product the API
serves (`GET /api/products/{id}` with the owner's token) and, for stock, in the
inventory service too.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from playwright.async_api import Dialog, Page, expect

from harness.accounts import bearer, create_admin, make_seller, new_user
from harness.stack import Stack
from tests.browser.conftest import screenshot, sign_in
from tests.catalog_support import create_category, create_product, new_tag

FRONT = "https://images.example.com/tee/front.jpg"
BACK = "https://images.example.com/tee/back.jpg"
SIDE = "https://images.example.com/tee/side.jpg"
SIZES_AND_COLOURS = [{"name": "Size", "values": ["S", "M", "L"]}, {"name": "Colour", "values": ["Red", "Blue"]}]


async def _seller(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """A new seller with a category to list in: an API session, and the email and password
    to sign in to the page with (every account registers with new_user()'s password)."""
    seller = await make_seller(http, admin)
    category = f"browser-{new_tag()}"
    await create_category(http, admin, category)
    return {**seller, "email": seller["user"]["email"], "password": new_user()["password"], "category": category}


async def _read(http: aiohttp.ClientSession, who: dict[str, Any], product_id: str) -> dict[str, Any]:
    async with http.get(f"/api/products/{product_id}", headers=bearer(who["access_token"])) as resp:
        assert resp.status == 200, await resp.text()
        product: dict[str, Any] = await resp.json()
        return product


def _variant(product: dict[str, Any], **options: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [v for v in product["variants"] if v["options"] == options]
    assert len(found) == 1, (options, product["variants"])
    return found[0]


async def _stock_is(
    http: aiohttp.ClientSession, who: dict[str, Any], product_id: str, variant_id: str, expected: int
) -> None:
    """The inventory service has the count at once; the product page a moment later."""
    query = "" if variant_id == product_id else f"?variant_id={variant_id}"
    async with http.get(f"/api/inventory/{product_id}{query}", headers=bearer(who["access_token"])) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["stock"] == expected
    for _ in range(100):
        variant = next(v for v in (await _read(http, who, product_id))["variants"] if v["variant_id"] == variant_id)
        if variant["stock"] == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the product page never showed stock {expected}: {variant}")


def _accept_dialogs(page: Page) -> None:
    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.on("dialog", accept)


async def test_a_seller_edits_the_images_and_variants_of_their_product(
    page: Page, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    seller = await _seller(http, admin)
    tag = new_tag()
    name = f"Tee {tag}"
    variants = [
        {"options": {"Size": size, "Colour": colour}, "sku": f"{tag}-{size}-{colour}", "stock": 5}
        for size, colour in (("S", "Red"), ("M", "Red"), ("M", "Blue"))
    ]
    created = await create_product(
        http,
        seller,
        seller["category"],
        name=name,
        price="20.00",
        options=SIZES_AND_COLOURS,
        variants=variants,
        images=[{"url": FRONT, "alt": "Front"}, {"url": BACK, "alt": "Back"}],
    )
    product_id = created["product_id"]
    _accept_dialogs(page)

    await sign_in(page, "/seller", seller["email"], seller["password"])
    await page.get_by_role("link", name="My products").click()
    await page.get_by_role("link", name=f"Edit {name}").click()
    await expect(page.get_by_role("heading", name=name)).to_be_visible()
    variants_panel = page.locator('[data-panel="variants"]')
    await expect(variants_panel.get_by_role("row")).to_have_count(4)  # the header and three variants
    await expect(page.get_by_text("The first image is the main one")).to_be_visible()

    # One variant's SKU, price and stock, in one form.
    await page.get_by_role("button", name="Edit variant M / Red").click()
    edit = page.get_by_role("form", name="Variant M / Red")
    await edit.get_by_label("SKU").fill(f"{tag}-M-RED-2")
    await edit.get_by_label("Price", exact=True).fill("24.50")
    await edit.get_by_label("Stock").fill("17")
    await edit.get_by_role("button", name="Save variant").click()
    await expect(variants_panel.get_by_role("alert")).to_have_text("Variant M / Red saved.")
    row = variants_panel.get_by_role("row").filter(has_text="M / Red")
    await expect(row).to_contain_text("24.50 USD")
    await expect(row).to_contain_text(f"{tag}-M-RED-2")
    await expect(row.get_by_role("cell", name="17", exact=True)).to_be_visible()
    await expect(row.get_by_role("cell", name="in stock", exact=True)).to_be_visible()  # 5 was "low"
    product = await _read(http, seller, product_id)
    medium_red = _variant(product, Size="M", Colour="Red")
    assert (medium_red["sku"], medium_red["price"]) == (f"{tag}-M-RED-2", "24.50")
    assert _variant(product, Size="M", Colour="Blue")["price"] == "20.00"  # the others as they were
    await _stock_is(http, seller, product_id, medium_red["variant_id"], 17)

    # A refused change: the problem's field error is shown next to the form, nothing changes.
    await page.get_by_role("button", name="Edit variant M / Red").click()
    await edit.get_by_label("Compare-at price").fill("10.00")
    await edit.get_by_role("button", name="Save variant").click()
    await expect(variants_panel.get_by_role("alert")).to_contain_text("must be more than the price")
    assert _variant(await _read(http, seller, product_id), Size="M", Colour="Red")["compare_at_price"] is None
    await edit.get_by_role("button", name="Cancel").click()
    await expect(edit).to_have_count(0)

    # A new combination, with its own price, SKU and initial stock.
    add = page.get_by_role("form", name="Add a variant")
    await add.get_by_label("Size").select_option("L")
    await add.get_by_label("Colour").select_option("Blue")
    await add.get_by_label("Price", exact=True).fill("22.00")
    await add.get_by_label("SKU").fill(f"{tag}-L-BLUE")
    await add.get_by_label("Initial stock").fill("4")
    await add.get_by_role("button", name="Add variant").click()
    await expect(page.locator('[data-panel="add"]').get_by_role("alert")).to_have_text("Variant L / Blue added.")
    await expect(page.get_by_role("button", name="Edit variant L / Blue")).to_be_visible()
    large_blue = _variant(await _read(http, seller, product_id), Size="L", Colour="Blue")
    assert (large_blue["sku"], large_blue["price"]) == (f"{tag}-L-BLUE", "22.00")
    await _stock_is(http, seller, product_id, large_blue["variant_id"], 4)

    # Another withdrawn.
    await page.get_by_role("button", name="Withdraw variant S / Red").click()
    await expect(variants_panel.get_by_role("alert")).to_have_text("Variant S / Red withdrawn.")
    await expect(page.get_by_role("button", name="Withdraw variant S / Red")).to_have_count(0)
    product = await _read(http, seller, product_id)
    assert sorted(v["label"] for v in product["variants"]) == ["L / Blue", "M / Blue", "M / Red"]

    # Images: one added, moved to the front, one removed, an alt text changed; saved at once.
    images = page.locator('[data-panel="images"]')
    new_image = page.get_by_role("form", name="Add an image")
    await new_image.get_by_label("Image URL").fill(SIDE)
    await new_image.get_by_label("Alt text").fill("Side view")
    await new_image.get_by_role("button", name="Add image").click()
    await page.get_by_role("button", name="Move image 3 up").click()  # front, side, back
    await page.get_by_role("button", name="Move image 2 up").click()  # side, front, back
    await page.get_by_role("button", name="Remove image 3").click()  # side, front
    await page.get_by_label("Alt text of image 2").fill("Front view")
    await expect(images.get_by_role("row").filter(has_text="1 (main)")).to_contain_text(SIDE)
    await expect(images).to_contain_text("Unsaved changes")
    assert [i["url"] for i in (await _read(http, seller, product_id))["images"]] == [FRONT, BACK]  # not yet saved
    await images.get_by_role("button", name="Save images").click()
    await expect(images.get_by_role("alert")).to_have_text("Images saved.")
    product = await _read(http, seller, product_id)
    assert product["images"] == [{"url": SIDE, "alt": "Side view"}, {"url": FRONT, "alt": "Front view"}]
    assert product["image_url"] == SIDE
    await screenshot(page, "seller-product-editor")


async def test_an_admin_edits_the_images_and_a_variant_of_a_sellers_product(
    page: Page, stack: Stack, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    seller = await _seller(http, admin)
    tag = new_tag()
    name = f"Cap {tag}"
    created = await create_product(
        http,
        seller,
        seller["category"],
        name=name,
        price="30.00",
        options=[{"name": "Size", "values": ["S", "M"]}],
        variants=[{"options": {"Size": "S"}, "stock": 2}, {"options": {"Size": "M"}, "stock": 2}],
        images=[{"url": FRONT, "alt": "Front"}],
    )
    product_id = created["product_id"]

    operator = create_admin(stack.env)
    await sign_in(page, "/admin", operator["email"], operator["password"])
    await page.get_by_role("link", name="Products").click()
    await page.get_by_label("Search").fill(tag)
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name=f"Images and variants of {name}").click()
    await expect(page.get_by_role("heading", name=name)).to_be_visible()

    await page.get_by_role("button", name="Edit variant S").click()
    edit = page.get_by_role("form", name="Variant S")
    await edit.get_by_label("Price", exact=True).fill("31.00")
    await edit.get_by_label("Compare-at price").fill("35.00")
    await edit.get_by_label("Weight (grams)").fill("250")
    await edit.get_by_role("button", name="Save variant").click()
    await expect(page.locator('[data-panel="variants"]').get_by_role("alert")).to_have_text("Variant S saved.")
    small = _variant(await _read(http, seller, product_id), Size="S")
    assert (small["price"], small["compare_at_price"], small["weight_grams"]) == ("31.00", "35.00", 250)

    new_image = page.get_by_role("form", name="Add an image")
    await new_image.get_by_label("Image URL").fill(BACK)
    await new_image.get_by_label("Alt text").fill("Back")
    await new_image.get_by_role("button", name="Add image").click()
    await page.get_by_role("button", name="Move image 2 up").click()
    # The moved image keeps the keyboard focus (its other button, once at the top).
    assert await page.evaluate("document.activeElement.getAttribute('aria-label')") == "Move image 1 down"
    await page.get_by_role("button", name="Save images").click()
    await expect(page.locator('[data-panel="images"]').get_by_role("alert")).to_have_text("Images saved.")
    product = await _read(http, seller, product_id)
    assert product["images"] == [{"url": BACK, "alt": "Back"}, {"url": FRONT, "alt": "Front"}]


async def test_the_last_variant_is_not_withdrawn_and_others_products_are_not_edited(
    page: Page, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    seller = await _seller(http, admin)
    name = f"Mug {new_tag()}"
    mug = await create_product(http, seller, seller["category"], name=name, price="15.00", stock=3)
    product_id = mug["product_id"]
    someone_else = await _seller(http, admin)
    theirs = (await create_product(http, someone_else, someone_else["category"]))["product_id"]
    _accept_dialogs(page)

    await sign_in(page, "/seller", seller["email"], seller["password"])
    await page.goto(f"/seller#products/{product_id}")  # a bookmark opens the editor
    await expect(page.get_by_role("heading", name=name)).to_be_visible()
    await expect(page.get_by_text("This product has no options")).to_be_visible()
    await expect(page.get_by_role("form", name="Add a variant")).to_have_count(0)
    await expect(page.get_by_text("null", exact=True)).to_have_count(0)

    # Its one variant, the default, is the product's own: price and stock.
    await page.get_by_role("button", name="Edit variant default").click()
    edit = page.get_by_role("form", name="Variant default")
    await edit.get_by_label("Price", exact=True).fill("16.00")
    await edit.get_by_label("Stock").fill("9")
    await edit.get_by_role("button", name="Save variant").click()
    variants_panel = page.locator('[data-panel="variants"]')
    await expect(variants_panel.get_by_role("alert")).to_have_text("Variant default saved.")
    product = await _read(http, seller, product_id)
    assert (product["price"], product["variants"][0]["price"]) == ("16.00", "16.00")
    await _stock_is(http, seller, product_id, product_id, 9)

    await page.get_by_role("button", name="Withdraw variant default").click()
    alert = variants_panel.get_by_role("alert")
    await expect(alert).to_contain_text("last variant cannot be withdrawn")
    await expect(alert).to_have_class("status error")
    await screenshot(page, "seller-last-variant")
    assert len((await _read(http, seller, product_id))["variants"]) == 1

    await page.goto(f"/seller#products/{theirs}")
    await expect(page.get_by_text("This product is not one of yours.")).to_be_visible()
    await expect(page.get_by_role("button", name="Save images")).to_have_count(0)
