"""Vouchers' pure rules: when a code applies, how its discount is spread, and what an
order's move does to its use."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.orders.vouchers.model import Voucher, VoucherRefused, spread, use_step

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)
SELLER, OTHER = uuid.uuid4(), uuid.uuid4()


def voucher(**fields: object) -> Voucher:
    base: dict[str, object] = {
        "voucher_id": uuid.uuid4(),
        "code": "TEN",
        "percent": Decimal(10),
        "amounts": {},
        "min_spend": {},
        "starts_at": None,
        "ends_at": None,
        "usage_limit": None,
        "per_customer_limit": None,
        "categories": (),
        "sellers": (),
        "active": True,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Voucher(**{**base, **fields})  # type: ignore[arg-type]


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**7), min_size=1, max_size=20))
def test_a_spread_adds_up_and_is_proportional_within_a_unit(amount: int, weights: list[int]) -> None:
    shares = spread(amount, weights)
    whole = sum(weights)
    if whole == 0:
        assert set(shares) == {0}
        return
    assert sum(shares) == amount
    for share, weight in zip(shares, weights, strict=True):
        assert abs(share - amount * weight / whole) < 1
        assert weight or share == 0


def test_the_cent_left_goes_to_the_largest_remainder() -> None:
    # 1275 over 5997 : 2500 → 899.87… and 375.13…: floors 899 + 375, one cent to the first.
    assert spread(1275, [5997, 2500]) == (900, 375)
    assert spread(1, [1, 1]) == (1, 0)  # a tie: the first line


def test_a_percentage_is_rounded_half_up_on_the_eligible_lines_only() -> None:
    v = voucher(percent=Decimal(15))
    assert v.discounts("AUD", [(True, 5997), (True, 2500), (False, 745)], NOW) == (900, 375, 0)


def test_a_fixed_amount_is_capped_and_needs_its_currency() -> None:
    v = voucher(percent=None, amounts={"USD": 500})
    assert v.discounts("USD", [(True, 300)], NOW) == (300,)
    with pytest.raises(VoucherRefused, match="orders in EUR"):
        v.discounts("EUR", [(True, 300)], NOW)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"active": False}, "not active"),
        ({"starts_at": NOW + timedelta(seconds=1)}, "not valid yet"),
        ({"ends_at": NOW}, "expired"),  # the end is excluded
        ({"min_spend": {"USD": 1001}}, r"at least \$10\.01"),
        ({"sellers": (OTHER,)}, "none of these items"),
        ({"categories": ("shoes",)}, "none of these items"),
    ],
)
def test_refusals(fields: dict[str, object], message: str) -> None:
    with pytest.raises(VoucherRefused, match=message):
        voucher(**fields).discounts("USD", [(voucher(**fields).applies_to(SELLER, "hats"), 1000)], NOW)


def test_the_minimum_counts_only_the_eligible_lines() -> None:
    v = voucher(sellers=(SELLER,), min_spend={"USD": 1000})
    lines = [(v.applies_to(SELLER, None), 999), (v.applies_to(OTHER, None), 5000)]
    with pytest.raises(VoucherRefused, match="at least"):
        v.discounts("USD", lines, NOW)


def test_an_order_redeems_when_confirmed_and_releases_when_cancelled() -> None:
    assert use_step("pending", "confirmed") == "redeem"
    assert use_step("pending", "cancelled") == "release"
    assert use_step("confirmed", "cancelled") == "release"
    assert use_step("pending", "pending") is None  # a failed payment: it keeps its use
    assert use_step("confirmed", "shipped") is None
