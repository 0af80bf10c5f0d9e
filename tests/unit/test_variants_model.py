"""Variants (issue 17), the pure rules: what a listing may say (contracts/catalog.py), what
the catalog's model does with variants (workers/catalog/model.py), and how carts, orders
and reservations treat a line's variant (orders and inventory models)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from itertools import count
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.catalog import AddVariant, CreateProduct, UpdateProduct
from contracts.errors import field_errors
from contracts.inventory import ReservationLine
from contracts.orders import OrderItem, PlaceOrder
from workers.catalog.model import StockApplied, availability, new_product, with_variants
from workers.inventory.model import Stock, merge_lines, shortfalls
from workers.orders.carts.model import Cart, CartError
from workers.orders.orders.model import price, request_hash
from workers.orders.products.model import ProductSnapshot, VariantSnapshot
from workers.runtime.errors import DomainError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SELLER = uuid.uuid4()
OPTIONS = [{"name": "Size", "values": ["S", "M"]}, {"name": "Colour", "values": ["Red", "Blue"]}]


def _tee(**fields: Any) -> dict[str, Any]:
    return {
        "name": "Tee",
        "currency": "USD",
        "price": "20.00",
        "category": "tees",
        "options": OPTIONS,
        "variants": [
            {"sku": f"T-{s}-{c}", "options": {"Size": s, "Colour": c}, "stock": 2}
            for s in ("S", "M")
            for c in ("Red", "Blue")
        ],
        **fields,
    }


def _refused(body: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        CreateProduct.model_validate(body)
    return {e.field for e in field_errors(caught.value)}


# --- what a listing may say ---------------------------------------------------------------


def test_a_product_with_options_lists_each_combination_it_sells() -> None:
    listing = CreateProduct.model_validate(_tee())
    assert listing.variants is not None and len(listing.variants) == 4
    # Not every combination need be sold, and a variant may have its own price.
    some = _tee(variants=[{"options": {"Size": "M", "Colour": "Red"}, "price": "22.50", "compare_at_price": "30"}])
    assert CreateProduct.model_validate(some).variants is not None
    # Each variant priced: the product needs no price of its own.
    priced = _tee(price=None, variants=[{"options": {"Size": "S", "Colour": "Red"}, "price": "5.00"}])
    assert CreateProduct.model_validate({k: v for k, v in priced.items() if v is not None}).price is None


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"variants": None}, {"variants"}),
        ({"variants": [{"options": {"Size": "S"}}]}, {"variants.0.options"}),  # a value for each option
        ({"variants": [{"options": {"Size": "S", "Colour": "Red", "Fit": "Slim"}}]}, {"variants.0.options"}),
        ({"variants": [{"options": {"Size": "XL", "Colour": "Red"}}]}, {"variants.0.options.Size"}),
        (
            {"variants": [{"options": {"Size": "S", "Colour": "Red"}}, {"options": {"Size": "S", "Colour": "Red"}}]},
            {"variants.1.options"},
        ),
        (
            {"variants": [{"options": {"Size": "S", "Colour": "Red"}, "compare_at_price": "20.00"}]},
            {"variants.0.compare_at_price"},
        ),
        ({"variants": [{"options": {"Size": "S", "Colour": "Red"}, "price": "1.005"}]}, {"variants.0.price"}),
        (
            {
                "variants": [
                    {"sku": "A", "options": {"Size": "S", "Colour": "Red"}},
                    {"sku": "A", "options": {"Size": "M", "Colour": "Red"}},
                ]
            },
            {"variants.1.sku"},
        ),
        ({"variants": [{"sku": "has space", "options": {"Size": "S", "Colour": "Red"}}]}, {"variants.0.sku"}),
        ({"stock": 5}, {"stock"}),
        ({"options": [*OPTIONS, {"name": "size", "values": ["x"]}]}, {"options"}),  # names differ in case only
        ({"options": [{"name": "Size", "values": ["S", "s"]}]}, {"options.0.values"}),
        ({"options": [{"name": f"o{i}", "values": ["x"]} for i in range(4)]}, {"options"}),
        ({"options": [{"name": "Size", "values": []}]}, {"options.0.values"}),
        ({"price": None, "variants": [{"options": {"Size": "S", "Colour": "Red"}}]}, {"price"}),
        ({"images": [{"url": "http://img.example/a.jpg"}]}, {"images.0.url"}),
        ({"images": [{"url": "https://img.example/a.jpg", "alt": "x" * 201}]}, {"images.0.alt"}),
        ({"images": [{"url": "https://img.example/a.jpg"}] * 21}, {"images"}),
        ({"images": [], "image_url": "https://img.example/a.jpg"}, {"image_url"}),
    ],
)
def test_what_a_listing_may_not_say(change: dict[str, Any], fields: set[str]) -> None:
    body = {k: v for k, v in _tee(**change).items() if v is not None}
    assert fields <= _refused(body)


def test_a_product_without_options_has_at_most_one_variant_with_no_option_values() -> None:
    plain = {"name": "Mug", "currency": "USD", "price": "9.00", "category": "mugs"}
    assert CreateProduct.model_validate({**plain, "variants": [{"sku": "MUG-1", "weight_grams": 350}]}).variants
    assert "variants" in _refused({**plain, "variants": [{}, {}]})
    assert "variants.0.options" in _refused({**plain, "variants": [{"options": {"Size": "S"}}]})


# --- the catalog's model ------------------------------------------------------------------


def _ids() -> Any:
    numbers = count(1)
    return lambda: uuid.UUID(int=next(numbers))


def test_a_product_without_options_has_one_default_variant_with_its_id() -> None:
    body = {"name": "Mug", "currency": "USD", "price": "9.00", "category": "mugs", "stock": 4}
    product_id = uuid.uuid4()
    product = new_product(CreateProduct.model_validate(body), product_id, SELLER, NOW, _ids())
    (default,) = product.variants
    assert (default.variant_id, default.price_minor, default.available, dict(default.options)) == (
        product_id,
        900,
        4,
        {},
    )
    event = product.created_event()
    assert (event.initial_stock, event.options, [v.variant_id for v in event.variants]) == (4, (), [product_id])
    view = product.view()
    assert view.variants[0].label == "" and view.variants[0].stock is None  # counts only when asked (`full`)
    assert product.view(full=True).variants[0].stock == 4


def test_a_product_with_options_lists_its_variants_from_the_lowest_price() -> None:
    body = _tee(variants=[
        {"sku": "T-M-R", "options": {"Size": "M", "Colour": "Red"}, "price": "25.00", "stock": 3},
        {"sku": "T-S-B", "options": {"Size": "S", "Colour": "Blue"}, "stock": 0},
    ])  # fmt: skip
    product = new_product(CreateProduct.model_validate(body), uuid.uuid4(), SELLER, NOW, _ids())
    assert [v.variant_id for v in product.variants] == [uuid.UUID(int=1), uuid.UUID(int=2)]
    assert (product.price_minor, product.available) == (2000, 3)
    event = product.created_event()
    assert event.options == ("Size", "Colour") and event.initial_stock == 3
    assert [(v.label, v.sku, v.price_minor, v.initial_stock) for v in event.variants] == [
        ("M / Red", "T-M-R", 2500, 3),
        ("S / Blue", "T-S-B", 2000, 0),
    ]
    view = product.view()
    assert [v.availability for v in view.variants] == ["low", "out_of_stock"] and view.availability == "low"


def test_availability_levels() -> None:
    assert [availability(n) for n in (-1, 0, 1, 5, 6)] == ["out_of_stock", "out_of_stock", "low", "low", "in_stock"]


@pytest.mark.parametrize(
    ("before", "after", "shown"),
    [
        (40, 30, False),  # a count only: a shopper sees "in stock" throughout
        (4, 2, False),  # "low" throughout
        (0, 0, False),
        (6, 5, True),  # in stock → low
        (1, 0, True),  # low → out of stock
        (0, 3, True),  # back
        (0, 50, True),
    ],
)
def test_a_stock_figure_is_announced_only_when_what_shoppers_see_moves(before: int, after: int, shown: bool) -> None:
    assert StockApplied(before=before, after=after).shown_changed() is shown


def test_variants_are_added_changed_and_withdrawn() -> None:
    product = new_product(CreateProduct.model_validate(_tee()), uuid.uuid4(), SELLER, NOW, _ids())
    later = datetime(2026, 1, 2, tzinfo=UTC)
    with pytest.raises(ValidationError):  # every value taken: no combination left
        product.add_variant(
            AddVariant(product_id=product.product_id, options={"Size": "S", "Colour": "Red"}, price="1.00"),
            uuid.uuid4(),
            later,
        )
    with pytest.raises(ValidationError) as caught:
        product.add_variant(
            AddVariant(product_id=product.product_id, options={"Size": "XL", "Colour": "Red"}, price="1.00"),
            uuid.uuid4(),
            later,
        )
    assert field_errors(caught.value)[0].field == "options.Size"
    grown, _ = product.updated({"options": [{"name": "Size", "values": ["S", "M", "XL"]}, OPTIONS[1]]}, later)
    added, new = grown.add_variant(
        AddVariant(product_id=product.product_id, options={"Size": "XL", "Colour": "Red"}, price="15.00", stock=2),
        uuid.UUID(int=99),
        later,
    )
    assert (new.position, new.available, added.price_minor, len(added.variants)) == (4, 2, 1500, 5)
    assert added.variant_added_event(new).variant.label == "XL / Red"

    # The options' names stay; a value a live variant has stays.
    with pytest.raises(DomainError):
        product.updated({"options": [OPTIONS[1], OPTIONS[0]]}, later)
    with pytest.raises(DomainError):
        product.updated({"options": [{"name": "Size", "values": ["S"]}, OPTIONS[1]]}, later)
    with pytest.raises(DomainError):  # priced per variant
        product.updated({"price": "5.00"}, later)

    first = product.variants[0].variant_id
    changed, variant, names = product.update_variant(first, {"price": "12.00", "compare_at_price": "19.99"}, later)
    assert names == ("compare_at_minor", "price_minor") and variant.price_minor == 1200 and changed.price_minor == 1200
    assert product.update_variant(first, {"sku": "T-S-Red"}, later)[2] == ()  # the same SKU: nothing changed
    with pytest.raises(DomainError):
        changed.update_variant(first, {"price": "19.99"}, later)  # not below its compare-at price any more
    with pytest.raises(DomainError):
        product.update_variant(uuid.uuid4(), {"price": "1.00"}, later)

    rest, gone = changed.withdraw_variant(first, later)
    assert gone.deleted_at == later and first not in {v.variant_id for v in rest.variants}
    assert rest.price_minor == 2000  # the lowest of those left
    for variant in rest.variants[:-1]:
        rest, _ = rest.withdraw_variant(variant.variant_id, later)
    with pytest.raises(DomainError):
        rest.withdraw_variant(rest.variants[0].variant_id, later)


def test_a_listings_view_gets_its_variants_and_their_availability() -> None:
    product = new_product(CreateProduct.model_validate(_tee()), uuid.uuid4(), SELLER, NOW, _ids())
    listed = with_variants(product.view().model_copy(update={"variants": ()}), product.variants)
    assert listed == product.view()


def test_a_product_update_of_a_default_variant_product_prices_its_variant() -> None:
    body = {"name": "Mug", "currency": "USD", "price": "9.00", "category": "mugs"}
    product = new_product(CreateProduct.model_validate(body), uuid.uuid4(), SELLER, NOW, _ids())
    updated, changed = product.updated({"price": "1500", "currency": "JPY"}, NOW)
    assert changed == ("currency", "price_minor") and updated.variants[0].price_minor == 1500
    images, changed = product.updated({"image_url": "https://img.example/a.jpg"}, NOW)
    assert changed == ("images",) and images.view().image_url == "https://img.example/a.jpg"
    with pytest.raises(ValidationError):
        UpdateProduct.model_validate({"product_id": str(product.product_id), "images": [], "image_url": None})


# --- carts, orders, reservations ----------------------------------------------------------


def _snapshot(*, options: bool) -> ProductSnapshot:
    product_id = uuid.uuid4()
    variants = (
        {
            uuid.UUID(int=1): VariantSnapshot(uuid.UUID(int=1), "T-S", "S", 1000),
            uuid.UUID(int=2): VariantSnapshot(uuid.UUID(int=2), "T-M", "M", 1200),
            uuid.UUID(int=3): VariantSnapshot(uuid.UUID(int=3), "T-L", "L", 1400, deleted=True),
        }
        if options
        else {product_id: VariantSnapshot(product_id, "MUG", "", 900)}
    )
    return ProductSnapshot(product_id, SELLER, "Tee" if options else "Mug", 1000, "USD", False, options, variants)


def test_a_snapshot_resolves_a_lines_variant() -> None:
    tee, mug = _snapshot(options=True), _snapshot(options=False)
    assert tee.variant(None) is None and tee.variant(tee.product_id) is None  # no default variant
    assert tee.variant(uuid.UUID(int=2)).price_minor == 1200  # type: ignore[union-attr]
    assert tee.variant(uuid.UUID(int=3)) is None  # withdrawn
    assert mug.variant(None) == mug.variant(mug.product_id) and mug.variant(None).sku == "MUG"  # type: ignore[union-attr]
    # A product row whose variants have not arrived yet: its default variant at its price.
    bare = ProductSnapshot(uuid.uuid4(), SELLER, "Old", 500, "USD", False)
    assert bare.variant(None).price_minor == 500  # type: ignore[union-attr]


def test_an_order_is_priced_per_variant_and_a_line_without_one_is_malformed() -> None:
    tee, mug = _snapshot(options=True), _snapshot(options=False)
    products = {tee.product_id: tee, mug.product_id: mug}
    items = (
        OrderItem(product_id=tee.product_id, variant_id=uuid.UUID(int=2), quantity=2),
        OrderItem(product_id=mug.product_id, quantity=1),
        OrderItem(product_id=tee.product_id, variant_id=uuid.UUID(int=1), quantity=1),
        OrderItem(product_id=tee.product_id, variant_id=uuid.UUID(int=2), quantity=1),
    )
    lines, currency, total = price(items, products)
    assert total == 3 * 1200 + 900 + 1000 and currency == "USD"
    by_variant = {line.variant_id: line for line in lines}
    assert (by_variant[uuid.UUID(int=2)].quantity, by_variant[uuid.UUID(int=2)].variant_label) == (3, "M")
    assert by_variant[mug.product_id].sku == "MUG"
    with pytest.raises(ValidationError) as caught:
        price(
            (
                items[1],
                OrderItem(product_id=tee.product_id, quantity=1),
                items[0],
                OrderItem(product_id=tee.product_id, quantity=2),
            ),
            products,
        )
    assert [e.field for e in field_errors(caught.value)] == ["items.1.variant_id", "items.3.variant_id"]
    assert "choose a variant" in field_errors(caught.value)[0].message


def test_a_cart_holds_a_line_per_variant_and_refuses_one_without() -> None:
    tee = _snapshot(options=True)
    products = {tee.product_id: tee}
    cart = Cart(uuid.uuid4(), None, ())
    cart = cart.add(tee, 2, products, NOW, uuid.UUID(int=1))
    cart = cart.add(tee, 1, products, NOW, uuid.UUID(int=2))
    cart = cart.add(tee, 1, products, NOW, uuid.UUID(int=1))
    assert [(line.variant_id, line.quantity) for line in cart.lines] == [(uuid.UUID(int=1), 3), (uuid.UUID(int=2), 1)]
    with pytest.raises(ValidationError):
        cart.add(tee, 1, products, NOW)
    with pytest.raises(CartError):
        cart.add(tee, 1, products, NOW, uuid.UUID(int=3))  # withdrawn
    with pytest.raises(ValidationError):
        cart.remove(tee.product_id, products)
    assert len(cart.remove(tee.product_id, products, uuid.UUID(int=2)).lines) == 1


def test_an_order_without_variants_hashes_as_before_variants() -> None:
    """A partner's retry of an order placed before the upgrade still matches its first request."""
    command = PlaceOrder.model_validate(
        {
            "order_id": str(uuid.uuid4()),
            "items": [{"product_id": str(uuid.uuid4()), "quantity": 1}],
            "shipping_address": {"line1": "1 Main St", "city": "X", "postal_code": "1", "country": "US"},
            "payment_token": "tok_visa",
        }
    )
    before = command.model_dump(mode="json", exclude={"order_id", "request_hash"})
    for item in before["items"]:
        item.pop("variant_id")
    expected = hashlib.sha256(json.dumps(before, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert request_hash(command) == expected


def test_stock_is_reserved_per_variant_and_only_the_products_own_variants() -> None:
    product, other = uuid.UUID(int=100), uuid.UUID(int=200)
    small, large = uuid.UUID(int=1), uuid.UUID(int=2)
    stocks = {
        small: Stock(small, product, SELLER, 5, 0, 0, NOW, NOW),
        large: Stock(large, product, SELLER, 1, 0, 0, NOW, NOW),
    }
    lines = merge_lines(
        [
            ReservationLine(product_id=product, variant_id=large, quantity=1),
            ReservationLine(product_id=product, variant_id=small, quantity=2),
            ReservationLine(product_id=product, variant_id=small, quantity=1),
        ]
    )
    assert [(line.variant_id, line.quantity) for line in lines] == [(small, 3), (large, 1)]
    assert shortfalls(lines, stocks) == ()
    # A line without a variant is its product's default variant (the product's id).
    assert merge_lines([ReservationLine(product_id=product, quantity=1)])[0].variant_id == product
    failed = shortfalls((ReservationLine(product_id=other, variant_id=small, quantity=1),), stocks)
    assert [(f.variant_id, f.reason) for f in failed] == [(small, "unavailable")]  # another product's variant
    short = shortfalls((ReservationLine(product_id=product, variant_id=large, quantity=2),), stocks)
    assert [(f.variant_id, f.reason, f.available) for f in short] == [(large, "out_of_stock", 1)]


def test_the_main_image_is_announced_with_the_product_and_its_changes() -> None:
    images = [{"url": "https://img.example/front.jpg"}, {"url": "https://img.example/back.jpg"}]
    product = new_product(CreateProduct.model_validate(_tee(images=images)), uuid.uuid4(), SELLER, NOW, _ids())
    assert product.created_event().image_url == "https://img.example/front.jpg"
    later = datetime(2026, 1, 2, tzinfo=UTC)
    reordered, changed = product.updated({"images": images[::-1]}, later)
    assert "images" in changed and reordered.updated_event(changed).image_url == "https://img.example/back.jpg"
    bare, changed = product.updated({"image_url": None}, later)
    assert "images" in changed and bare.updated_event(changed).image_url is None
