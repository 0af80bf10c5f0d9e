"""Money conversion and the catalog's pure rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.money import CURRENCIES, ZERO, MoneyError, for_people, to_amount, to_minor
from kernel.tokens import Actor
from workers.catalog.model import Category, Product, category_tree, creates_cycle
from workers.runtime.errors import DomainError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("amount", "code", "minor"),
    [("19.99", "USD", 1999), ("20", "USD", 2000), ("0.5", "EUR", 50), ("1500", "JPY", 1500), ("1.234", "KWD", 1234)],
)
def test_to_minor(amount: str, code: str, minor: int) -> None:
    assert to_minor(amount, code) == minor


@pytest.mark.parametrize(
    ("amount", "code"),
    [("19.999", "USD"), ("1.5", "JPY"), ("-1", "USD"), ("0", "USD"), ("0.00", "EUR"), ("1e3", "USD"),
     ("1,00", "EUR"), ("", "USD"), ("1000000.01", "USD"), ("1.00", "XXX"), (" 1", "USD"), ("\uff11", "USD")],
)  # fmt: skip
def test_to_minor_refuses(amount: str, code: str) -> None:
    with pytest.raises(MoneyError):
        to_minor(amount, code)


@given(code=st.sampled_from(sorted(CURRENCIES)), data=st.data())
def test_amounts_round_trip(code: str, data: st.DataObject) -> None:
    currency = CURRENCIES[code]
    minor = data.draw(st.integers(min_value=1, max_value=currency.max_major * 10**currency.exponent))
    amount = to_amount(minor, code)
    assert to_minor(amount, code) == minor
    assert Decimal(amount) == Decimal(minor).scaleb(-currency.exponent)


@pytest.mark.parametrize(
    ("amount", "code", "locale", "written"),
    [(80249, "USD", "en_US", "$802.49"), ("802.49", "USD", "en_US", "$802.49"), (80249, "EUR", "de_DE", "802,49\xa0€"),
     (150000, "JPY", "en_US", "¥150,000"), (0, "USD", "en_US", "$0.00"), (1234, "KWD", "en_US", "KWD1.234")],
)  # fmt: skip
def test_amounts_for_people(amount: int | str, code: str, locale: str, written: str) -> None:
    assert for_people(amount, code, locale) == written


def test_nothing_is_written_with_cents() -> None:
    # The API's amounts keep the currency's decimals even at zero; an empty cart says ZERO.
    assert (to_amount(0, "USD"), to_amount(0, "JPY"), ZERO) == ("0.00", "0", "0.00")
    with pytest.raises(MoneyError, match=r"at most \$1,000,000\.00"):
        to_minor("1000001", "USD")


def _product(**overrides: object) -> Product:
    fields: dict[str, object] = {
        "product_id": uuid.uuid4(),
        "seller_id": uuid.uuid4(),
        "name": "Lamp",
        "description": "",
        "price_minor": 1000,
        "currency": "USD",
        "category": "lamps",
        "created_at": NOW,
        "updated_at": NOW,
        **overrides,
    }
    return Product(**fields)  # type: ignore[arg-type]


def test_who_manages_a_product() -> None:
    product = _product()
    assert product.managed_by(Actor(product.seller_id, "seller"))
    assert product.managed_by(Actor(uuid.uuid4(), "admin"))
    assert not product.managed_by(Actor(uuid.uuid4(), "seller"))
    # A demoted seller's token says member: no longer theirs to manage.
    assert not product.managed_by(Actor(product.seller_id, "member"))


def test_partial_update_reports_what_changed() -> None:
    product = _product()
    later = datetime(2026, 1, 2, tzinfo=UTC)
    same, changed = product.updated({"name": "Lamp"}, later)
    assert (same, changed) == (product, ())
    updated, changed = product.updated({"price": "12.50", "image_url": None, "name": "Big lamp"}, later)
    assert changed == ("name", "price_minor")
    assert updated.price_minor == 1250 and updated.updated_at == later
    updated, changed = product.updated({"price": "1500", "currency": "JPY"}, later)
    assert (updated.price_minor, updated.currency, changed) == (1500, "JPY", ("currency", "price_minor"))
    with pytest.raises(DomainError):
        product.updated({"currency": "EUR"}, later)
    with pytest.raises(DomainError):
        product.updated({"price": "1.001"}, later)


def test_category_cycles_and_tree() -> None:
    parents = {"home": None, "kitchen": "home", "knives": "kitchen", "toys": None}
    assert creates_cycle("home", "knives", parents)
    assert creates_cycle("home", "home", parents)
    assert not creates_cycle("toys", "knives", parents)
    assert not creates_cycle("kitchen", None, parents)
    tree = category_tree(Category(s, s.title(), p, NOW, NOW) for s, p in parents.items())
    assert [n.slug for n in tree] == ["home", "toys"]
    assert tree[0].children[0].children[0].slug == "knives"
