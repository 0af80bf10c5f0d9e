"""The cart rules, without I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from workers.orders.carts.model import Cart, CartError, Line, view
from workers.orders.products.model import ProductSnapshot

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SELLER = uuid.uuid4()


def product(price: int, currency: str = "USD", *, deleted: bool = False) -> ProductSnapshot:
    return ProductSnapshot(uuid.uuid4(), SELLER, f"p{price}", price, currency, deleted)


def cart(*lines: tuple[ProductSnapshot, int]) -> Cart:
    return Cart(
        uuid.uuid4(),
        None,
        tuple(Line(p.product_id, q, NOW + timedelta(seconds=i)) for i, (p, q) in enumerate(lines)),
    )


def catalog(*products: ProductSnapshot) -> dict[uuid.UUID, ProductSnapshot]:
    return {p.product_id: p for p in products}


def test_adding_adds_to_the_line_and_stops_at_99() -> None:
    lamp = product(1999)
    c = cart().add(lamp, 2, catalog(lamp), NOW).add(lamp, 3, catalog(lamp), NOW)
    assert [(line.product_id, line.quantity) for line in c.lines] == [(lamp.product_id, 5)]
    with pytest.raises(CartError) as refused:
        c.add(lamp, 95, catalog(lamp), NOW)
    assert refused.value.code == "conflict"


def test_only_products_on_sale_in_the_cart_currency_may_be_added() -> None:
    usd, eur, gone = product(100), product(100, "EUR"), product(100, deleted=True)
    c = cart((usd, 1))
    with pytest.raises(CartError, match="EUR"):
        c.add(eur, 1, catalog(usd, eur), NOW)
    for missing in (gone, None):
        with pytest.raises(CartError) as refused:
            c.add(missing, 1, catalog(usd, gone), NOW)
        assert refused.value.code == "not_found"


def test_the_view_prices_at_current_prices_and_hides_withdrawn_products() -> None:
    a, b, gone = product(1050), product(99), product(500, deleted=True)
    shown = view(cart((a, 1), (b, 3), (gone, 2)), catalog(a, b, gone))
    assert [(i.product_id, i.quantity, i.unit_price) for i in shown.items] == [
        (a.product_id, 1, "10.50"),
        (b.product_id, 3, "0.99"),
    ]
    assert (shown.total, shown.currency, shown.unavailable) == ("13.47", "USD", (gone.product_id,))
    assert view(None, {}).model_dump(include={"items", "total", "currency"}) == {
        "items": (),
        "total": "0.00",
        "currency": None,
    }


def test_merging_adds_quantities_caps_them_and_keeps_the_member_currency() -> None:
    both, mine, theirs, euro = product(100), product(200), product(300), product(400, "EUR")
    products = catalog(both, mine, theirs, euro)
    member = cart((both, 60), (mine, 1))
    merged = member.merged(cart((both, 50), (theirs, 2), (euro, 1)), products, NOW)
    assert {line.product_id: line.quantity for line in merged.lines} == {
        both.product_id: 99,
        mine.product_id: 1,
        theirs.product_id: 2,
    }
    # An empty member cart takes the guest's currency.
    assert [line.product_id for line in cart().merged(cart((euro, 1)), products, NOW).lines] == [euro.product_id]
