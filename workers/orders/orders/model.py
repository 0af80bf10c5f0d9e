"""The orders domain: pure rules, no I/O. The saga's own rules are in saga.py.

An `Order` is what was bought, at which prices, for whom, and its saga (which holds
the status). Its lines and its customer are snapshots taken at placement: what the
product and the account were then, whatever became of them since. Here: pricing a
request from the product read model, who may see an order, who may move it to which
status, and the request hash behind idempotency.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from contracts.errors import FieldError
from contracts.inventory import ReservationLine
from contracts.money import to_amount
from contracts.orders import (
    HistoryEntry,
    OrderCustomer,
    OrderItem,
    OrderLine,
    OrderPlaced,
    OrderShipping,
    OrderStatus,
    OrderStatusChanged,
    OrderTaxLine,
    OrderView,
    PlaceOrder,
    ShippingAddress,
    Tracking,
)
from contracts.taxes import DEFAULT_TAX_CLASS
from kernel.tokens import Actor
from workers.orders.carts.model import CART_ROLES, Cart
from workers.orders.orders import saga
from workers.orders.orders.saga import Cancel, Deliver, Message, Pay, Saga, Send, Ship
from workers.orders.products.model import ProductSnapshot, needs_variant, refuse_without_variant
from workers.orders.shipping.model import ShippingMethod
from workers.orders.taxes.model import NO_TAXES, Taxes, TaxLine, TaxRate, percent_text, tax_lines
from workers.orders.vouchers.model import Voucher, VoucherRefused

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
    image_url: str | None = None
    # In minor units of the order's currency: the line's tax (in its price, or added to it,
    # as the order's `prices_include_tax` says), on its total less its share of the
    # voucher's discount.
    tax_minor: int = 0
    discount_minor: int = 0

    @property
    def total_minor(self) -> int:
        return self.unit_price_minor * self.quantity

    def __post_init__(self) -> None:
        if self.variant_id is None:
            object.__setattr__(self, "variant_id", self.product_id)


@dataclass(frozen=True)
class ShippingCharge:
    """The shipping method an order was placed with, as it was then."""

    method_id: UUID
    name: str
    price_minor: int
    min_days: int
    max_days: int
    tax_minor: int = 0

    def view(self, currency: str) -> OrderShipping:
        return OrderShipping(
            method_id=self.method_id,
            name=self.name,
            price=to_amount(self.price_minor, currency),
            min_days=self.min_days,
            max_days=self.max_days,
            tax=to_amount(self.tax_minor, currency),
        )


@dataclass(frozen=True)
class Taxed:
    """An order's lines and shipping with their tax, the tax per rate, and whether prices include it."""

    lines: tuple[Line, ...]
    shipping: ShippingCharge | None
    tax_lines: tuple[TaxLine, ...]
    prices_include_tax: bool

    @property
    def tax_minor(self) -> int:
        return sum(x.amount_minor for x in self.tax_lines)


def taxed(
    lines: tuple[Line, ...],
    shipping: ShippingCharge | None,
    products: Mapping[UUID, ProductSnapshot],
    address: ShippingAddress,
    taxes: Taxes,
) -> Taxed:
    """Each line's tax at the rate for its product's tax class at the address, and the
    shipping's at the standard class's (taxes.py: carved out of included prices, else added)."""
    charged: list[tuple[TaxRate | None, int]] = []
    taxed_lines = []
    for line in lines:
        rate = taxes.rate_for(address.country, address.region, products[line.product_id].tax_class)
        tax = taxes.tax_on(line.total_minor - line.discount_minor, rate)
        charged.append((rate, tax))
        taxed_lines.append(replace(line, tax_minor=tax))
    if shipping is not None:
        rate = taxes.rate_for(address.country, address.region, DEFAULT_TAX_CLASS)  # shipping: the standard class
        shipping = replace(shipping, tax_minor=taxes.tax_on(shipping.price_minor, rate))
        charged.append((rate, shipping.tax_minor))
    return Taxed(tuple(taxed_lines), shipping, tax_lines(charged), taxes.prices_include_tax)


def shipping_charge(
    cmd: PlaceOrder, method: ShippingMethod | None, currency: str, subtotal_minor: int
) -> ShippingCharge | None:
    """The shipping the command chose, priced for these goods; `OrderRefused` if the method
    does not exist (any more), or serves neither the address's country nor the currency."""
    if cmd.shipping_method_id is None:
        return None
    problem = None
    if method is None:
        problem = "no such shipping method"
    elif cmd.shipping_address.country not in method.countries:
        problem = f"does not ship to {cmd.shipping_address.country}"
    elif currency not in method.prices:
        problem = f"is not offered for orders in {currency}"
    if problem is not None or method is None:
        raise OrderRefused(
            "validation_failed",
            f"shipping method: {problem}",
            (FieldError(field="shipping_method_id", message=problem or ""),),
        )
    return ShippingCharge(
        method.method_id, method.name, method.price_for(currency, subtotal_minor), method.min_days, method.max_days
    )


def discounted(
    lines: tuple[Line, ...],
    voucher: Voucher | None,
    code: str | None,
    products: Mapping[UUID, ProductSnapshot],
    currency: str,
    now: datetime,
) -> tuple[Line, ...]:
    """The lines with their share of the discount of the voucher `code` names (`voucher`,
    if it exists); `OrderRefused` on `voucher_code` if it does not apply. Shipping is
    not discounted."""
    if code is None:
        return lines
    try:
        if voucher is None:
            raise VoucherRefused("no such voucher")
        eligible = [(voucher.applies_to(x.seller_id, products[x.product_id].category), x.total_minor) for x in lines]
        shares = voucher.discounts(currency, eligible, now)
    except VoucherRefused as exc:
        raise voucher_refused(str(exc)) from None
    return tuple(replace(x, discount_minor=share) for x, share in zip(lines, shares, strict=True))


def voucher_refused(problem: str) -> OrderRefused:
    return OrderRefused(
        "validation_failed", f"voucher_code: {problem}", (FieldError(field="voucher_code", message=problem),)
    )


@dataclass(frozen=True)
class OrderHead:
    """An order as a saga step needs it (one row read): whose it is, and its saga, which
    holds the id, amount, currency, reservation lines and status."""

    user_id: UUID
    saga: Saga
    # Placed from the member's cart: its ordered lines leave the cart once confirmed.
    from_cart: bool = False
    # Placed with a voucher: its use is redeemed or released as the order moves.
    voucher_code: str | None = None

    def status_event(self, saga: Saga, at: datetime, tracking: Tracking | None = None) -> OrderStatusChanged:
        """The event for the order's new status, `saga` being the saga after the step; a
        shipped one carries the parcel's `tracking` when the shipper gave it."""
        return OrderStatusChanged(
            order_id=saga.order_id,
            user_id=self.user_id,
            status=saga.status,
            payment_status=saga.payment_status,
            cancel_reason=saga.cancel_reason,
            payment_due_by=saga.payment_due_by,
            tracking_number=tracking.number if tracking is not None else None,
            carrier=tracking.carrier if tracking is not None else None,
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
    shipping_address: ShippingAddress | None  # None once the customer's account was erased
    lines: tuple[Line, ...]
    saga: Saga
    history: tuple[HistoryEntry, ...]
    created_at: datetime
    updated_at: datetime
    # As the account was at placement; None when unknown, and once it was erased.
    customer: OrderCustomer | None = None
    # The method chosen at checkout, priced then; None: no shipping charged.
    shipping: ShippingCharge | None = None
    # The parcel's, as the seller gave them when shipping.
    tracking_number: str | None = None
    carrier: str | None = None
    # Placed from the member's cart: its ordered lines leave the cart once confirmed.
    from_cart: bool = False
    # Taxes as computed at placement: included in the prices or added, and per rate.
    prices_include_tax: bool = False
    tax_lines: tuple[TaxLine, ...] = ()
    # The voucher applied at checkout (its discount is on the lines); None: none.
    voucher_code: str | None = None

    @property
    def subtotal_minor(self) -> int:
        return sum(x.unit_price_minor * x.quantity for x in self.lines)

    @property
    def discount_minor(self) -> int:
        return sum(x.discount_minor for x in self.lines)

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
                    name=x.name,
                    image_url=x.image_url,
                    line_total=to_amount(x.unit_price_minor * x.quantity, self.currency),
                    tax=to_amount(x.tax_minor, self.currency),
                    discount=to_amount(x.discount_minor, self.currency),
                )
                for x in self.lines
            ),
            subtotal=to_amount(self.subtotal_minor, self.currency),
            shipping=self.shipping.view(self.currency) if self.shipping is not None else None,
            prices_include_tax=self.prices_include_tax,
            tax_total=to_amount(sum(t.amount_minor for t in self.tax_lines), self.currency),
            taxes=tuple(
                OrderTaxLine(name=t.name, rate=percent_text(t.rate), amount=to_amount(t.amount_minor, self.currency))
                for t in self.tax_lines
            ),
            tracking=Tracking(carrier=self.carrier, number=self.tracking_number)
            if self.tracking_number is not None or self.carrier is not None
            else None,
            voucher_code=self.voucher_code,
            discount_total=to_amount(self.discount_minor, self.currency),
            total_amount=to_amount(self.total_minor, self.currency),
            currency=self.currency,
            shipping_address=self.shipping_address,
            customer=self.customer,
            payment_status=self.saga.payment_status,
            cancel_reason=self.saga.cancel_reason,
            payment_due_by=self.saga.payment_due_by,
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
            subtotal_minor=self.subtotal_minor,
            discount_minor=self.discount_minor,
            voucher_code=self.voucher_code,
            shipping_minor=self.shipping.price_minor if self.shipping is not None else 0,
            shipping_method=self.shipping.name if self.shipping is not None else None,
            tax_minor=sum(t.amount_minor for t in self.tax_lines),
            taxes=view.taxes,
            prices_include_tax=self.prices_include_tax,
        )

    @property
    def head(self) -> OrderHead:
        return OrderHead(self.user_id, self.saga, self.from_cart, self.voucher_code)

    def sellers(self) -> frozenset[UUID]:
        return frozenset(x.seller_id for x in self.lines)


def reservation_lines(lines: tuple[Line, ...]) -> tuple[ReservationLine, ...]:
    return tuple(ReservationLine(product_id=x.product_id, variant_id=x.variant_id, quantity=x.quantity) for x in lines)


# --- placing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """What placing an order decided: the order (its saga started), the event that
    announces it, and the saga's first commands. An order from the cart leaves the cart
    as it is: its lines leave it when the order is confirmed (`Order.from_cart`)."""

    order: Order
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
    customer: OrderCustomer | None = None,
    shipping_method: ShippingMethod | None = None,
    taxes: Taxes = NO_TAXES,
    voucher: Voucher | None = None,
) -> Placed:
    """A new order for `user_id` from the command's items or (without them) `cart`, priced
    from `products` (the read model of what `ordered_products` names), keeping what
    `customer` (the read model's account, if known) was, with the shipping of
    `shipping_method` (the one the command names, if it exists) and the discount of
    `voucher` (the one its code names, if it exists: its use is reserved by the handler);
    `OrderRefused` if it cannot be placed. The free-shipping threshold and the tax are
    on the goods less the discount."""
    items = cmd.items if cmd.items is not None else cart_items(cart, products)
    priced, currency, subtotal = price(items, products)
    priced = discounted(priced, voucher, cmd.voucher_code, products, currency, now)
    discount = sum(x.discount_minor for x in priced)
    shipping_price = shipping_charge(cmd, shipping_method, currency, subtotal - discount)
    tax = taxed(priced, shipping_price, products, cmd.shipping_address, taxes)
    lines, shipping = tax.lines, tax.shipping
    total = subtotal - discount + (shipping.price_minor if shipping is not None else 0)
    if not tax.prices_include_tax:
        total += tax.tax_minor
    if total <= 0:  # a payment is authorized for every order: there is no free one
        raise voucher_refused("it would make the order free, and every order is paid for")
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
        customer=customer,
        shipping=shipping,
        from_cart=cart is not None,
        prices_include_tax=tax.prices_include_tax,
        tax_lines=tax.tax_lines,
        voucher_code=voucher.code if voucher is not None and cmd.voucher_code is not None else None,
    )
    return Placed(order, order.placed_event(), sends)


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
            Line(
                pid,
                product.seller_id,
                product.name,
                qty,
                variant.price_minor,
                vid,
                variant.sku,
                variant.label,
                product.image_url,
            )
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


def pay_again(order: Order, actor: Actor, payment_token: str) -> Message:
    """What paying the order again means for the saga, if this caller may: the customer,
    an admin, or the partner that placed it (a seller who can see it may not). Whether the
    order is waiting for a payment is the saga's to say (409 otherwise)."""
    if not (actor.role == "admin" or actor.user_id in (order.user_id, order.placed_by)):
        raise OrderRefused("forbidden", "only the customer, an admin or the partner that placed it may pay an order")
    return Pay(payment_token)


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
