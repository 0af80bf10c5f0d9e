"""The inventory domain rules, without I/O (workers/inventory/model.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.inventory import ReservationLine, SetStock
from kernel.tokens import Actor
from workers.inventory.model import (
    Movement,
    Reservation,
    Stock,
    StockError,
    crossed_low,
    may_change_stock,
    merge_lines,
    shortfalls,
    stock_change,
)
from workers.runtime.context import may_take_saga_steps

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SELLER = uuid.uuid4()


def _stock(available: int = 10, reserved: int = 0, threshold: int = 0) -> Stock:
    product = uuid.uuid4()  # a product without options: its one variant has the product's id
    return Stock(product, product, SELLER, available, reserved, threshold, NOW, NOW)


def test_who_may_change_and_reserve() -> None:
    stock = _stock()
    assert may_change_stock(stock, Actor(SELLER, "seller"))
    assert may_change_stock(stock, Actor(uuid.uuid4(), "admin"))
    assert not may_change_stock(stock, Actor(uuid.uuid4(), "seller"))
    assert not may_change_stock(stock, Actor(SELLER, "member"))  # a demoted seller
    assert may_take_saga_steps("service") and may_take_saga_steps("admin")
    assert not may_take_saga_steps("seller") and not may_take_saga_steps("partner")


def test_owners_and_admins_see_more() -> None:
    stock = _stock(available=4, reserved=2, threshold=1)
    assert stock.view(None).model_dump(mode="json").keys() == {"product_id", "variant_id", "stock", "updated_at"}
    assert stock.view(Actor(uuid.uuid4(), "member")).reserved is None
    assert stock.view(Actor(SELLER, "seller")).model_dump()["reserved"] == 2
    assert stock.view(Actor(uuid.uuid4(), "admin")).model_dump()["low_stock_threshold"] == 1


def test_set_adjust_and_threshold() -> None:
    stock = _stock(available=5)
    movement, threshold = stock_change(stock, SetStock(product_id=stock.product_id, stock=8))
    assert movement is not None and (movement.kind, movement.delta_available, threshold) == ("set", 3, 0)
    movement, _ = stock_change(stock, SetStock(product_id=stock.product_id, stock=5, low_stock_threshold=2))
    assert movement is None  # no change of stock, only of the threshold
    movement, _ = stock_change(stock, SetStock(product_id=stock.product_id, delta=-5, reason="lost"))
    assert movement is not None and (movement.kind, movement.delta_available, movement.reason) == ("adjust", -5, "lost")
    with pytest.raises(StockError):
        stock_change(stock, SetStock(product_id=stock.product_id, delta=-6))
    with pytest.raises(StockError):
        stock.apply(Movement(stock.product_id, "adjust", -6, 0), NOW)


def test_low_stock_is_crossed_only_from_above() -> None:
    above, at, below = _stock(6, threshold=5), _stock(5, threshold=5), _stock(4, threshold=5)
    assert crossed_low(above, at) and crossed_low(above, below)
    assert not crossed_low(at, below) and not crossed_low(below, above) and not crossed_low(above, above)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 5)), min_size=1, max_size=10))
def test_lines_merge_per_product_in_lock_order(pairs: list[tuple[int, int]]) -> None:
    ids = [uuid.UUID(int=i + 1) for i in range(4)]
    merged = merge_lines(ReservationLine(product_id=ids[i], quantity=q) for i, q in pairs)
    assert [line.product_id for line in merged] == sorted({ids[i] for i, _ in pairs})
    assert sum(line.quantity for line in merged) == sum(q for _, q in pairs)


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 5)), min_size=1, max_size=6, unique_by=lambda p: p[0]))
def test_a_reservation_is_all_or_nothing(wanted: list[tuple[int, int]]) -> None:
    stocks = {
        uuid.UUID(int=i + 1): Stock(uuid.UUID(int=i + 1), uuid.UUID(int=i + 1), SELLER, i, 0, 0, NOW, NOW)
        for i in range(4)
    }
    lines = merge_lines(ReservationLine(product_id=uuid.UUID(int=i + 1), quantity=q) for i, q in wanted)
    reservation = Reservation.decide(uuid.uuid4(), lines, stocks, ttl_seconds=60, now=NOW)
    short = [
        line for line in lines if line.product_id not in stocks or stocks[line.product_id].available < line.quantity
    ]
    assert {f.product_id for f in reservation.failed} == {line.product_id for line in short}
    if short:
        assert reservation.status == "failed" and reservation.expires_at is None
    else:
        assert reservation.status == "reserved" and reservation.expires_at == NOW + timedelta(seconds=60)
        moved = {m.variant_id: m for m in reservation.movements("reserve")}
        assert all(stocks[p].apply(m, NOW).available >= 0 for p, m in moved.items())
    assert shortfalls(lines, stocks) == reservation.failed


def test_reservation_transitions() -> None:
    product = uuid.uuid4()
    stocks = {product: Stock(product, product, SELLER, 3, 0, 0, NOW, NOW)}
    lines = (ReservationLine(product_id=product, quantity=2),)
    held = Reservation.decide(uuid.uuid4(), lines, stocks, ttl_seconds=None, now=NOW)
    assert held.expires_at == NOW + timedelta(seconds=900)
    assert [(m.delta_available, m.delta_reserved) for m in held.movements("reserve")] == [(-2, 2)]
    assert [(m.delta_available, m.delta_reserved) for m in held.movements("commit")] == [(0, -2)]

    released = held.release(NOW)
    assert released is not None and released.status == "released"
    assert released.release(NOW) is None  # a second release changes nothing
    with pytest.raises(StockError):
        released.commit(NOW)

    expired = held.release(NOW, expired=True)
    assert expired is not None and expired.status == "expired"
    # Committed after it expired: sold from what is available again.
    assert [(m.delta_available, m.delta_reserved) for m in expired.movements("commit")] == [(-2, 0)]

    committed = held.commit(NOW)
    assert committed is not None and committed.status == "committed"
    assert committed.commit(NOW) is None and committed.release(NOW) is None

    # A cancelled order's committed stock comes back once, as available stock.
    assert held.give_back(NOW) is None and released.give_back(NOW) is None  # nothing was sold
    assert [(m.delta_available, m.delta_reserved) for m in committed.movements("return")] == [(2, 0)]
    returned = committed.give_back(NOW)
    assert returned is not None and returned.status == "returned"
    assert returned.give_back(NOW) is None and returned.commit(NOW) is None and returned.release(NOW) is None

    barred = Reservation.barred(uuid.uuid4(), NOW)
    assert barred.status == "released" and barred.lines == () and barred.release(NOW) is None
