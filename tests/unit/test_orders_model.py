"""Placing an order, decided without I/O (workers/orders/orders/model.py `place`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts.inventory import RESERVE_STOCK, ReserveStock
from contracts.orders import OrderCustomer, OrderItem, OrderLine, OrderPlaced, PlaceOrder, ShippingAddress
from kernel.tokens import Actor
from workers.orders.carts.model import Cart, Line
from workers.orders.orders import model
from workers.orders.orders.saga import SagaConfig
from workers.orders.products.model import ProductSnapshot

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = SagaConfig(
    reserve_deadline=timedelta(seconds=10), payment_deadline=timedelta(seconds=20), retry_after=timedelta(seconds=5)
)
SELLER = uuid.uuid4()
MEMBER = Actor(uuid.uuid4(), "member")
ADDRESS = ShippingAddress(line1="1 Main St", city="Springfield", postal_code="12345", country="US")


def product(price: int, currency: str = "USD", *, deleted: bool = False) -> ProductSnapshot:
    return ProductSnapshot(uuid.uuid4(), SELLER, f"p{price}", price, currency, deleted)


def order_of(*items: tuple[ProductSnapshot, int]) -> PlaceOrder:
    return PlaceOrder(
        order_id=uuid.uuid4(),
        items=[OrderItem(product_id=p.product_id, quantity=q) for p, q in items] if items else None,
        shipping_address=ADDRESS,
        payment_token="tok_visa",
    )


def test_an_order_is_priced_announced_and_its_saga_asks_for_the_stock() -> None:
    lamp, rug = product(1999), product(5000)
    cmd = order_of((lamp, 2), (rug, 1), (lamp, 1))

    placed = model.place(cmd, MEMBER, MEMBER.user_id, None, {p.product_id: p for p in (lamp, rug)}, NOW, CONFIG)

    order = placed.order
    assert order.total_minor == 3 * 1999 + 5000 and order.currency == "USD"
    wanted = sorted([(lamp.product_id, 3), (rug.product_id, 1)])
    assert sorted((x.product_id, x.quantity) for x in order.lines) == wanted
    assert (order.saga.status, order.saga.step, order.history[0].status) == ("pending", "reserving", "pending")
    assert not placed.order.from_cart and not placed.order.head.from_cart
    assert (placed.event.order_id, placed.event.total_minor, placed.event.at) == (cmd.order_id, 10997, NOW)
    [send] = placed.sends
    assert send.spec == RESERVE_STOCK and isinstance(send.payload, ReserveStock)
    assert sorted((x.product_id, x.quantity) for x in send.payload.lines) == wanted


def test_an_order_from_the_cart_takes_what_is_on_sale_and_leaves_the_cart_until_confirmed() -> None:
    lamp, gone = product(1999), product(700, deleted=True)
    cart = Cart(uuid.uuid4(), MEMBER.user_id, (Line(lamp.product_id, 2, NOW), Line(gone.product_id, 1, NOW)))
    cmd = order_of()
    assert model.ordered_products(cmd, cart) == {lamp.product_id, gone.product_id}

    placed = model.place(cmd, MEMBER, MEMBER.user_id, cart, {p.product_id: p for p in (lamp, gone)}, NOW, CONFIG)

    assert [(x.product_id, x.quantity) for x in placed.order.lines] == [(lamp.product_id, 2)]
    assert placed.order.from_cart and placed.order.head.from_cart  # its lines leave the cart once confirmed


def test_an_order_in_two_currencies_or_of_a_withdrawn_product_is_refused() -> None:
    dollars, euros, gone = product(100), product(100, "EUR"), product(100, deleted=True)
    products = {p.product_id: p for p in (dollars, euros, gone)}
    with pytest.raises(model.OrderRefused) as mixed:
        model.place(order_of((dollars, 1), (euros, 1)), MEMBER, MEMBER.user_id, None, products, NOW, CONFIG)
    assert mixed.value.code == "validation_failed"
    with pytest.raises(model.OrderRefused) as withdrawn:
        model.place(order_of((gone, 1)), MEMBER, MEMBER.user_id, None, products, NOW, CONFIG)
    assert [e.field for e in withdrawn.value.errors] == ["items.0.product_id"]


def test_a_repeat_answers_the_order_but_another_body_or_caller_is_refused() -> None:
    lamp = product(1999)
    cmd = order_of((lamp, 1))
    order = model.place(cmd, MEMBER, MEMBER.user_id, None, {lamp.product_id: lamp}, NOW, CONFIG).order

    model.same_request(order, cmd, MEMBER)  # the same request: no refusal
    with pytest.raises(model.OrderRefused) as other_body:
        model.same_request(order, cmd.model_copy(update={"payment_token": "tok_mastercard"}), MEMBER)
    assert other_body.value.code == "validation_failed"
    with pytest.raises(model.OrderRefused) as other_caller:
        model.same_request(order, cmd, Actor(uuid.uuid4(), "member"))
    assert other_caller.value.code == "conflict"


def test_a_closed_account_places_nothing() -> None:
    model.refuse_closed(False)
    with pytest.raises(model.OrderRefused) as refused:
        model.refuse_closed(True)
    assert refused.value.code == "forbidden"


# Snapshots (issue 18): what the lines and the customer were at placement.


def test_lines_and_customer_are_kept_as_they_were_at_placement() -> None:
    lamp = ProductSnapshot(uuid.uuid4(), SELLER, "Desk lamp", 1999, "USD", False, image_url="https://img.example/l.jpg")
    who = OrderCustomer(email="ann@example.com", name="ann")
    address = ShippingAddress(**ADDRESS.model_dump(), recipient="Ann Lee", phone="+31612345678")
    cmd = order_of((lamp, 3)).model_copy(update={"shipping_address": address})

    placed = model.place(cmd, MEMBER, MEMBER.user_id, None, {lamp.product_id: lamp}, NOW, CONFIG, who)

    view = placed.order.view()
    [line] = view.items
    assert (line.name, line.image_url, line.price, line.quantity) == (
        "Desk lamp",
        "https://img.example/l.jpg",
        "19.99",
        3,
    )
    assert (line.line_total, line.tax, line.discount) == ("59.97", "0.00", "0.00")
    assert view.customer == who
    assert view.shipping_address is not None and (view.shipping_address.recipient, view.shipping_address.phone) == (
        "Ann Lee",
        "+31612345678",
    )
    # The event carries the lines, never the customer's personal data.
    assert placed.event.items == view.items and "ann@example.com" not in placed.event.model_dump_json()
    # Unknown customer (a partner ordering for itself, an account older than the read model).
    assert (
        model.place(cmd, MEMBER, MEMBER.user_id, None, {lamp.product_id: lamp}, NOW, CONFIG).order.view().customer
        is None
    )


def test_a_line_of_an_older_event_gets_its_total_and_zero_tax_and_discount() -> None:
    event = {"product_id": str(uuid.uuid4()), "quantity": 2, "price": "19.99"}
    line = OrderLine.model_validate(event)
    assert (line.name, line.image_url, line.line_total, line.tax, line.discount) == ("", None, "39.98", "0.00", "0.00")
    assert OrderLine.model_validate({**event, "price": "1500", "quantity": 3}).line_total == "4500"  # yen: no decimals
    older = {"order_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "items": [event]}
    placed = OrderPlaced.model_validate({**older, "total_minor": 3998, "currency": "USD", "at": NOW.isoformat()})
    assert placed.items[0].line_total == "39.98"


def test_an_address_without_recipient_or_phone_means_and_hashes_what_it_did() -> None:
    lamp = product(1999)
    cmd = order_of((lamp, 1))
    as_before = cmd.model_dump(mode="json", exclude={"order_id", "request_hash"})
    assert set(as_before["shipping_address"]) == {"line1", "line2", "city", "region", "postal_code", "country"}
    with_recipient = cmd.model_copy(
        update={"shipping_address": ShippingAddress(**ADDRESS.model_dump(), recipient="Ann Lee")}
    )
    assert model.request_hash(with_recipient) != model.request_hash(cmd)
