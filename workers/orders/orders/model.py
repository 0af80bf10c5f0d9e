"""The orders domain: pure rules, no I/O. The saga's own rules are in saga.py.

An `Order` is what was bought, at which prices, for whom, and its saga (which holds
the status). Here: pricing a request from the product read model, who may see an
order, who may move it to which status, and the request hash behind idempotency.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from contracts.errors import FieldError
from contracts.inventory import ReservationLine
from contracts.money import to_amount
from contracts.orders import (
    HistoryEntry,
    OrderItem,
    OrderLine,
    OrderPlaced,
    OrderStatus,
    OrderStatusChanged,
    OrderView,
    PlaceOrder,
)
from contracts.users import Address
from kernel.tokens import Actor
from workers.orders.carts.model import CART_ROLES, Cart
from workers.orders.orders import saga
from workers.orders.orders.saga import Cancel, Deliver, Message, Saga, Send, Ship
from workers.orders.products.model import ProductSnapshot, needs_variant, refuse_without_variant

# A partner scope that lets a partner place an order for a member (`on_behalf_of`).
ON_BEHALF_SCOPE = "orders:members"
# Who may place orders: people, and partner systems (their scopes are checked by the runtime).
PLACING_ROLES = frozenset({"member", "seller", "admin", "partner"})


class OrderRefused(Exception):
    """A request the rules refuse; `code` is the error code the handler answers with."""

    def __init__(self, code: str, detail: str, errors: tuple[FieldError, ...] = ()) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.errors = errors


@dataclass(frozen=True)
class Line:
    product_id: UUID
    seller_id: UUID
    name: str
    quantity: int
    unit_price_minor: int
    # The variant sold; left out, the product's default variant (whose id is the product's).
    variant_id: UUID = None  # type: ignore[assignment]
    sku: str | None = None
    variant_label: str = ""

    def __post_init__(self) -> None:
        if self.variant_id is None:
            object.__setattr__(self, "variant_id", self.product_id)


@dataclass(frozen=True)
class OrderHead:
    """An order as a saga step needs it (one row read): whose it is, and its saga, which
    holds the id, amount, currency, reservation lines and status."""

    user_id: UUID
    saga: Saga

    def status_event(self, saga: Saga, at: datetime) -> OrderStatusChanged:
        """The event for the order's new status, `saga` being the saga after the step."""
        return OrderStatusChanged(
            order_id=saga.order_id,
            user_id=self.user_id,
            status=saga.status,
            payment_status=saga.payment_status,
            cancel_reason=saga.cancel_reason,
            total_minor=saga.amount_minor,
            currency=saga.currency,
            at=at,
        )


@dataclass(frozen=True)
class Order:
    order_id: UUID
    user_id: UUID
    placed_by: UUID
    request_hash: str
    currency: str
    total_minor: int
    shipping_address: Address | None  # None once the customer's account was erased
    lines: tuple[Line, ...]
    saga: Saga
    history: tuple[HistoryEntry, ...]
    created_at: datetime
    updated_at: datetime

    def view(self) -> OrderView:
        return OrderView(
            order_id=self.order_id,
            user_id=self.user_id,
            status=self.saga.status,
            items=tuple(
                OrderLine(
                    product_id=x.product_id,
                    variant_id=x.variant_id,
                    sku=x.sku,
                    variant=x.variant_label,
                    quantity=x.quantity,
                    price=to_amount(x.unit_price_minor, self.currency),
                )
                for x in self.lines
            ),
            total_amount=to_amount(self.total_minor, self.currency),
            currency=self.currency,
            shipping_address=self.shipping_address,
            payment_status=self.saga.payment_status,
            cancel_reason=self.saga.cancel_reason,
            history=self.history,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )

    def placed_event(self) -> OrderPlaced:
        view = self.view()
        return OrderPlaced(
            order_id=self.order_id,
            user_id=self.user_id,
            items=view.items,
            total_minor=self.total_minor,
            currency=self.currency,
            at=self.created_at,
        )

    @property
    def head(self) -> OrderHead:
        return OrderHead(self.user_id, self.saga)

    def sellers(self) -> frozenset[UUID]:
        return frozenset(x.seller_id for x in self.lines)


def reservation_lines(lines: tuple[Line, ...]) -> tuple[ReservationLine, ...]:
    return tuple(ReservationLine(product_id=x.product_id, variant_id=x.variant_id, quantity=x.quantity) for x in lines)


# --- placing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """What placing an order decided: the order (its saga started), the cart it empties,
    the event that announces it, and the saga's first commands."""

    order: Order
    empties_cart: UUID | None
    event: OrderPlaced
    sends: tuple[Send, ...]


def place(
    cmd: PlaceOrder,
    actor: Actor,
    user_id: UUID,
    cart: Cart | None,
    products: Mapping[UUID, ProductSnapshot],
    now: datetime,
    config: saga.SagaConfig,
) -> Placed:
    """A new order for `user_id` from the command's items or (without them) `cart`, priced
    from `products` (the read model of what `ordered_products` names); `OrderRefused`
    if it cannot be placed."""
    items = cmd.items if cmd.items is not None else cart_items(cart, products)
    lines, currency, total = price(items, products)
    started, sends = saga.start(cmd.order_id, reservation_lines(lines), total, currency, cmd.payment_token, now, config)
    order = Order(
        order_id=cmd.order_id,
        user_id=user_id,
        placed_by=actor.user_id,
        request_hash=request_hash(cmd),
        currency=currency,
        total_minor=total,
        shipping_address=cmd.shipping_address,
        lines=lines,
        saga=started,
        history=(HistoryEntry(status=started.status, at=now),),
        created_at=now,
        updated_at=now,
    )
    return Placed(order, cart.cart_id if cart is not None else None, order.placed_event(), sends)


def ordered_products(cmd: PlaceOrder, cart: Cart | None) -> set[UUID]:
    """The products an order from this command (or this cart) would be made of."""
    ordered = cmd.items if cmd.items is not None else cart.lines if cart is not None else ()
    return {x.product_id for x in ordered}


def refuse_closed(account_closed: bool) -> None:
    if account_closed:
        # Erased or disabled: a member's own tokens were revoked; this stops a partner.
        raise OrderRefused("forbidden", "this account is closed: no order can be placed for it")


def same_request(order: Order, cmd: PlaceOrder, actor: Actor) -> None:
    """A repeat of the request that placed `order` (its idempotency key) answers that
    order; the key with another caller or another body is refused."""
    if order.placed_by != actor.user_id:
        raise OrderRefused("conflict", "this order_id belongs to another order")
    if order.request_hash != request_hash(cmd):
        raise OrderRefused(
            "validation_failed",
            "this Idempotency-Key (order_id) was used for another request",
            (FieldError(field="Idempotency-Key", message="was used with another body"),),
        )


def customer(cmd: PlaceOrder, actor: Actor) -> UUID:
    """Whom the order is for: the caller, or for a partner allowed to, the member it names."""
    if actor.role not in PLACING_ROLES:
        raise OrderRefused("forbidden", "this account may not place orders")
    if cmd.on_behalf_of is None:
        return actor.user_id
    if actor.role != "partner" or ON_BEHALF_SCOPE not in actor.scopes:
        raise OrderRefused("forbidden", f"only partners with the {ON_BEHALF_SCOPE} scope may place orders for a member")
    return cmd.on_behalf_of


def orders_cart(cmd: PlaceOrder, actor: Actor) -> bool:
    """Whether the order is the actor's own cart (no `items`): only people have carts."""
    if cmd.items is not None:
        return False
    if cmd.on_behalf_of is not None or actor.role not in CART_ROLES:
        raise OrderRefused(
            "validation_failed",
            "items are required: only a person's own cart can be ordered without them",
            (FieldError(field="items", message="required"),),
        )
    return True


def cart_items(cart: Cart | None, products: Mapping[UUID, ProductSnapshot]) -> tuple[OrderItem, ...]:
    """The items of an order placed from a cart: its lines still on sale, as the cart shows them
    (a withdrawn product is neither shown nor counted there, so it is not ordered either)."""
    items = tuple(
        OrderItem(product_id=line.product_id, variant_id=line.variant_id, quantity=line.quantity)
        for line in (cart.lines if cart is not None else ())
        if (product := products.get(line.product_id)) is not None and product.variant(line.variant_id) is not None
    )
    if not items:
        # The request is valid; the cart's state is what refuses it (a 409, not a 422).
        raise OrderRefused(
            "conflict",
            "the cart is empty: add items to it or send `items`",
            (FieldError(field="items", message="the cart is empty"),),
        )
    return items


def request_hash(cmd: PlaceOrder) -> str:
    """The edge's hash of the HTTP body, or a hash of what the order is made of."""
    if cmd.request_hash is not None:
        return cmd.request_hash
    fields = cmd.model_dump(mode="json", exclude={"order_id", "request_hash"})
    for item in fields["items"] or ():
        if item["variant_id"] is None:  # as the hash was before variants: a repeat still matches
            del item["variant_id"]
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def price(items: tuple[OrderItem, ...], products: Mapping[UUID, ProductSnapshot]) -> tuple[tuple[Line, ...], str, int]:
    """The lines (one per variant, in product then variant order) at today's prices, the
    currency and the total.

    Every variant must be on sale, and all in one currency (an order is one payment). An
    item that names no variant is the product's default variant; of a product with
    options, it is malformed (a validation error: on the broker, dead-lettered).
    """
    refuse_without_variant(
        "PlaceOrder",
        [
            ("items", index, "variant_id")
            for index, item in enumerate(items)
            if needs_variant(products.get(item.product_id), item.variant_id)
        ],
    )
    quantities: dict[tuple[UUID, UUID], int] = {}
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        product = products.get(item.product_id)
        variant = product.variant(item.variant_id) if product is not None else None
        if product is None or not product.on_sale:
            errors.append(FieldError(field=f"items.{index}.product_id", message="no such product on sale"))
        elif variant is None:
            errors.append(FieldError(field=f"items.{index}.variant_id", message="no such variant on sale"))
        else:
            key = (item.product_id, variant.variant_id)
            quantities[key] = quantities.get(key, 0) + item.quantity
    if errors:
        raise OrderRefused("validation_failed", "some items cannot be ordered", tuple(errors))
    lines = []
    for (pid, vid), qty in sorted(quantities.items()):
        product = products[pid]
        variant = product.variant(vid)
        assert variant is not None
        lines.append(
            Line(pid, product.seller_id, product.name, qty, variant.price_minor, vid, variant.sku, variant.label)
        )
    currencies = {products[x.product_id].currency for x in lines}
    if len(currencies) > 1:
        raise OrderRefused(
            "validation_failed",
            "all items of an order must be priced in one currency",
            (FieldError(field="items", message=f"mixes currencies {', '.join(sorted(currencies))}"),),
        )
    return tuple(lines), currencies.pop(), sum(x.quantity * x.unit_price_minor for x in lines)


# --- reading and moving ------------------------------------------------------------------


def may_see(order: Order, actor: Actor) -> bool:
    """The owner, admins, a seller of one of its lines, the partner that placed it."""
    return (
        actor.role == "admin"
        or actor.user_id in (order.user_id, order.placed_by)
        or (actor.role == "seller" and actor.user_id in order.sellers())
    )


def status_change(order: Order, actor: Actor, status: OrderStatus) -> Message:
    """What a request for `status` means for the saga, if this caller may ask for it.

    The owner cancels before the order ships; an admin cancels before it is delivered;
    the seller of every line, or an admin, ships and then delivers it. Whether the move
    is possible from where the order stands is the saga's to say (409 otherwise).
    """
    admin = actor.role == "admin"
    if status == "cancelled":
        if actor.user_id == order.user_id and not admin:
            if order.saga.status in ("shipped", "delivered"):
                raise OrderRefused("conflict", f"a {order.saga.status} order can no longer be cancelled")
            return Cancel("customer_request")
        if admin:
            return Cancel("customer_request" if actor.user_id == order.user_id else "admin")
        raise OrderRefused("forbidden", "only the customer or an admin may cancel an order")
    if not (admin or (actor.role == "seller" and order.sellers() == {actor.user_id})):
        raise OrderRefused("forbidden", "only the seller of every line, or an admin, ships and delivers an order")
    return Ship() if status == "shipped" else Deliver()
