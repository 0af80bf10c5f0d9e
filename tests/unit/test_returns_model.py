"""Returns and refunds, decided without I/O (workers/orders/returns/model.py)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.orders import HistoryEntry, OrderItem, PlaceOrder, ShippingAddress
from contracts.returns import RefundLineChoice, RefundOrder, RefundReturn, RequestReturn, ReturnItem, UpdateReturn
from kernel.tokens import Actor
from workers.orders.orders import model as orders
from workers.orders.orders.model import OrderRefused
from workers.orders.orders.saga import SagaConfig
from workers.orders.products.model import ProductSnapshot
from workers.orders.returns import model

DELIVERED = datetime(2026, 1, 10, tzinfo=UTC)
WINDOW = timedelta(days=30)
SHIRTS, CAPS = uuid.uuid4(), uuid.uuid4()
MEMBER = Actor(uuid.uuid4(), "member")
ADMIN = Actor(uuid.uuid4(), "admin")
ADDRESS = ShippingAddress(line1="1 Main St", city="Springfield", postal_code="12345", country="US")
SHIRT = ProductSnapshot(uuid.uuid4(), SHIRTS, "shirt", 2000, "USD", False)
CAP = ProductSnapshot(uuid.uuid4(), CAPS, "cap", 1500, "USD", False)


def delivered_order(shirts: int = 3, *, tax: int = 0) -> orders.Order:
    """A delivered order of `shirts` shirts (the shirt line taxed `tax`, added on top) and one cap."""
    cmd = PlaceOrder(
        order_id=uuid.uuid4(),
        items=[
            OrderItem(product_id=SHIRT.product_id, quantity=shirts),
            OrderItem(product_id=CAP.product_id, quantity=1),
        ],
        shipping_address=ADDRESS,
        payment_token="tok_visa",
    )
    products = {p.product_id: p for p in (SHIRT, CAP)}
    order = orders.place(cmd, MEMBER, MEMBER.user_id, None, products, DELIVERED, SagaConfig()).order
    lines = tuple(replace(x, tax_minor=tax) if x.product_id == SHIRT.product_id else x for x in order.lines)
    return replace(
        order,
        lines=lines,
        total_minor=order.total_minor + tax,
        saga=replace(order.saga, status="delivered", step="done", payment="captured"),
        history=(*order.history, HistoryEntry(status="delivered", at=DELIVERED)),
    )


def ask(order: orders.Order, *items: tuple[ProductSnapshot, int]) -> RequestReturn:
    return RequestReturn(
        return_id=uuid.uuid4(),
        order_id=order.order_id,
        items=tuple(ReturnItem(product_id=p.product_id, quantity=q) for p, q in items),
        reason="too small",
    )


def received(order: orders.Order, *items: tuple[ProductSnapshot, int]) -> model.Return:
    ret = model.request(ask(order, *items), order, MEMBER, (), WINDOW, DELIVERED)
    ret = replace(ret, status="approved")
    moved = model.move(ret, UpdateReturn(return_id=ret.return_id, status="received"), ADMIN, DELIVERED)
    assert moved is not None
    return moved


def test_a_return_is_asked_of_a_delivered_orders_lines_within_the_window() -> None:
    order = delivered_order()
    ret = model.request(ask(order, (SHIRT, 2)), order, MEMBER, (), WINDOW, DELIVERED + WINDOW)
    assert [(x.product_id, x.seller_id, x.quantity) for x in ret.lines] == [(SHIRT.product_id, SHIRTS, 2)]
    assert ret.view(order).items[0].refund == "40.00"

    with pytest.raises(OrderRefused) as late:
        model.request(ask(order, (SHIRT, 1)), order, MEMBER, (), WINDOW, DELIVERED + WINDOW + timedelta(seconds=1))
    assert late.value.code == "validation_failed" and "window" in late.value.detail
    with pytest.raises(OrderRefused) as shipped:
        model.request(
            ask(order, (SHIRT, 1)),
            replace(order, saga=replace(order.saga, status="shipped")),
            MEMBER,
            (),
            WINDOW,
            DELIVERED,
        )
    assert [e.field for e in shipped.value.errors] == ["order_id"]
    # What earlier returns hold (refused ones hold nothing) is not returned twice.
    with pytest.raises(OrderRefused) as twice:
        model.request(ask(order, (SHIRT, 2)), order, MEMBER, (ret,), WINDOW, DELIVERED)
    assert [e.field for e in twice.value.errors] == ["items.0.quantity"]
    model.request(ask(order, (SHIRT, 2)), order, MEMBER, (replace(ret, status="refused"),), WINDOW, DELIVERED)
    with pytest.raises(OrderRefused) as stranger:
        model.request(ask(order, (SHIRT, 1)), order, Actor(uuid.uuid4(), "seller"), (), WINDOW, DELIVERED)
    assert stranger.value.code == "forbidden"


def test_only_the_seller_of_every_line_or_an_admin_moves_a_return_and_only_forward() -> None:
    order = delivered_order()
    ret = model.request(ask(order, (SHIRT, 1), (CAP, 1)), order, MEMBER, (), WINDOW, DELIVERED)
    approve = UpdateReturn(return_id=ret.return_id, status="approved")
    with pytest.raises(OrderRefused) as one_of_two:
        model.move(ret, approve, Actor(SHIRTS, "seller"), DELIVERED)
    assert one_of_two.value.code == "forbidden"
    approved = model.move(ret, approve, ADMIN, DELIVERED)
    assert approved is not None and approved.status == "approved" and approved.decided_by == ADMIN.user_id
    assert model.move(approved, approve, ADMIN, DELIVERED) is None  # asked again: as it is
    with pytest.raises(OrderRefused) as backwards:
        model.move(approved, UpdateReturn(return_id=ret.return_id, status="refused", note="no"), ADMIN, DELIVERED)
    assert backwards.value.code == "conflict"
    cap_only = UpdateReturn(
        return_id=ret.return_id,
        status="received",
        resaleable=True,
        lines=[{"variant_id": CAP.product_id, "resaleable": False}],
    )
    back = model.move(approved, cap_only, ADMIN, DELIVERED)
    assert back is not None
    assert [x.product_id for x in model.resaleable(back)] == [SHIRT.product_id]


def test_a_return_is_refunded_per_line_never_beyond_what_was_paid_nor_captured() -> None:
    order = delivered_order(3, tax=300)  # shirts: 60.00 + 3.00 tax added on top; cap 15.00
    ret = received(order, (SHIRT, 2))
    refund = model.refund_return(RefundReturn(return_id=ret.return_id), ret, order, (), ADMIN, uuid.uuid4(), DELIVERED)
    assert (refund.amount_minor, [x.amount_minor for x in refund.lines]) == (4200, [4200])  # 2/3 of 63.00
    assert refund.idempotency_key == f"{order.order_id}:refund:{refund.refund_id}"
    assert model.refund_of(refund.reference) == refund.refund_id and model.refund_of(None) is None

    # The last shirt takes the rest of the line: 63.00 in all, to the cent.
    last = received(order, (SHIRT, 1))
    rest = model.refund_return(
        RefundReturn(return_id=last.return_id), last, order, (refund,), ADMIN, uuid.uuid4(), DELIVERED
    )
    assert rest.amount_minor == 2100 and refund.amount_minor + rest.amount_minor == 6300
    # A failed refund gave nothing back: it holds nothing either.
    failed = replace(refund, status="failed")
    again = model.refund_return(
        RefundReturn(return_id=ret.return_id), ret, order, (failed,), ADMIN, uuid.uuid4(), DELIVERED
    )
    assert again.amount_minor == 4200
    # More shirts than came back, or than the line has left unrefunded.
    with pytest.raises(OrderRefused) as more:
        cmd = RefundReturn(return_id=ret.return_id, lines=[RefundLineChoice(variant_id=SHIRT.product_id, quantity=3)])
        model.refund_return(cmd, ret, order, (), ADMIN, uuid.uuid4(), DELIVERED)
    assert more.value.code == "validation_failed"
    with pytest.raises(OrderRefused) as twice:
        model.refund_return(
            RefundReturn(return_id=ret.return_id), ret, order, (refund, rest), ADMIN, uuid.uuid4(), DELIVERED
        )
    assert twice.value.code == "conflict"
    # Not received, or the order refunded whole by a cancel: nothing to refund.
    with pytest.raises(OrderRefused):
        model.refund_return(
            RefundReturn(return_id=ret.return_id),
            replace(ret, status="approved"),
            order,
            (),
            ADMIN,
            uuid.uuid4(),
            DELIVERED,
        )
    refunded = replace(order, saga=replace(order.saga, payment="refunded"))
    with pytest.raises(OrderRefused):
        model.refund_return(RefundReturn(return_id=ret.return_id), ret, refunded, (), ADMIN, uuid.uuid4(), DELIVERED)


def test_a_direct_refund_is_an_admins_and_within_what_is_left_captured() -> None:
    order = delivered_order(1)  # 20.00 + 15.00
    cmd = RefundOrder(refund_id=uuid.uuid4(), order_id=order.order_id, amount="30.00", reason="sorry")
    goodwill = model.refund_order(cmd, 3000, order, (), ADMIN, DELIVERED)
    assert model.refundable(order, (goodwill,)) == 500
    with pytest.raises(OrderRefused) as beyond:
        model.refund_order(cmd, 501, order, (goodwill,), ADMIN, DELIVERED)
    assert beyond.value.code == "conflict"
    with pytest.raises(OrderRefused) as member:
        model.refund_order(cmd, 100, order, (), MEMBER, DELIVERED)
    assert member.value.code == "forbidden"
    # The shirt's own refund no longer fits in what is left.
    ret = received(order, (SHIRT, 1))
    with pytest.raises(OrderRefused):
        model.refund_return(
            RefundReturn(return_id=ret.return_id), ret, order, (goodwill,), ADMIN, uuid.uuid4(), DELIVERED
        )
    settled = model.settle(goodwill, True, None, DELIVERED)
    assert settled is not None and settled.status == "refunded" and model.settle(settled, True, None, DELIVERED) is None
    assert model.refunded_total((settled,)) == 3000


@given(
    quantity=st.integers(1, 50),
    paid=st.integers(0, 10**9),
    parts=st.lists(st.integers(1, 50), min_size=1, max_size=10),
)
def test_shares_of_a_line_never_add_up_to_more_than_it_cost_and_all_of_it_to_exactly_that(
    quantity: int, paid: int, parts: list[int]
) -> None:
    before, total = 0, 0
    for part in parts:
        part = min(part, quantity - before)
        if part == 0:
            break
        total += model.share(paid, quantity, before, part)
        before += part
        assert total <= paid
    if before == quantity:
        assert total == paid


def test_an_unanswered_refund_is_asked_for_again_under_its_key_ever_later() -> None:
    order = delivered_order(1)
    cmd = RefundOrder(refund_id=uuid.uuid4(), order_id=order.order_id, amount="5.00", reason="sorry")
    refund = replace(model.refund_order(cmd, 500, order, (), ADMIN, DELIVERED), retry_at=DELIVERED)
    minute = timedelta(minutes=1)
    again = model.ask_again(refund, DELIVERED, minute)
    assert again is not None
    assert (again.attempt, again.retry_at, again.idempotency_key) == (2, DELIVERED + 2 * minute, refund.idempotency_key)
    tenth = model.ask_again(replace(again, attempt=20), DELIVERED, minute)
    assert tenth is not None and tenth.retry_at == DELIVERED + 10 * minute
    # Never once the provider may have forgotten its key: a second refund could follow.
    assert model.ask_again(again, refund.requested_at + model.RESEND_FOR - minute, minute) is not None
    assert model.ask_again(again, refund.requested_at + model.RESEND_FOR, minute) is None
    settled = model.settle(again, False, "card closed", DELIVERED)
    assert settled is not None and (settled.status, settled.failure, settled.retry_at) == (
        "failed",
        "card closed",
        None,
    )
    assert model.refundable(order, (settled,)) == order.total_minor  # a failed refund holds nothing


def test_a_seller_refunds_their_lines_but_not_the_shipping_of_an_order_with_other_sellers_goods() -> None:
    order = delivered_order()  # shirts and a cap: two sellers
    ret = received(order, (SHIRT, 1))
    seller = Actor(SHIRTS, "seller")
    refund = model.refund_return(RefundReturn(return_id=ret.return_id), ret, order, (), seller, uuid.uuid4(), DELIVERED)
    assert refund.amount_minor == 2000
    with pytest.raises(OrderRefused) as refused:
        model.refund_return(
            RefundReturn(return_id=ret.return_id, shipping=True), ret, order, (), seller, uuid.uuid4(), DELIVERED
        )
    assert refused.value.code == "forbidden"
    # An admin may give the shipping back.
    model.refund_return(
        RefundReturn(return_id=ret.return_id, shipping=True), ret, order, (), ADMIN, uuid.uuid4(), DELIVERED
    )
