"""Orders service contracts: placing orders, reading them, moving them along, and their events.

An order is placed once per `order_id`: the edge derives it from the caller and the
`Idempotency-Key` header, a partner on the broker chooses it. The order saga
(architecture §7) then drives inventory and payments; the order's `status` tells
where it stands: pending → confirmed → shipped → delivered, or cancelled (with a
`cancel_reason`). A pending order whose payment failed (`payment_status` `failed`) may
be paid again with another token until `payment_due_by`, its stock held meanwhile.
Prices come from the orders service's own copy of the catalog's prices, and each line
keeps the price it was sold at.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, model_validator

from contracts.base import WHOLE, Contract, IsoDate
from contracts.errors import invalid_input
from contracts.inventory import MAX_QUANTITY
from contracts.money import CurrencyCode
from contracts.payments import PaymentToken
from contracts.privacy import export_spec
from contracts.returns import RefundView, ReturnView
from contracts.topology import CommandSpec, EventSpec
from contracts.users import Address, Phone

OrderStatus = Literal["pending", "confirmed", "shipped", "delivered", "cancelled"]
CancelReason = Literal["out_of_stock", "payment_declined", "payment_timeout", "customer_request", "admin"]
PaymentStatus = Literal["none", "authorized", "captured", "voided", "refunded", "failed"]
MAX_LINES = 100
# A request hash: hex SHA-256.
RequestHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
RecipientName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"\S")]


class ShippingAddress(Address):
    """Where an order goes and to whom. `recipient` and `phone` are optional, and left out
    of the order's view when not given, so a body written before they existed means (and
    hashes, for its Idempotency-Key) what it did."""

    recipient: RecipientName | None = Field(
        default=None, exclude_if=lambda v: v is None, description="Who receives the parcel, as the carrier needs it"
    )
    phone: Phone | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The recipient's phone for the carrier, E.164 (`+31612345678`)",
    )


class OrderItem(Contract):
    product_id: UUID
    variant_id: UUID | None = Field(
        default=None,
        description="The variant; absent: the product's default variant (a product with options needs one: "
        "without it the order is refused)",
    )
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY), WHOLE]


def _bounded_lines(items: tuple[OrderItem, ...] | None) -> tuple[OrderItem, ...] | None:
    """A variant on several lines is reserved as one: its lines summed must be within
    MAX_QUANTITY too, or the reservation the saga sends would be invalid (checked here,
    before anything is reserved, rather than fail inside the handler)."""
    totals: dict[UUID, int] = {}
    for item in items or ():
        key = item.variant_id or item.product_id
        totals[key] = totals.get(key, 0) + item.quantity
        if totals[key] > MAX_QUANTITY:
            raise ValueError(
                f"product {item.product_id}: at most {MAX_QUANTITY} of a variant in all of an order's lines"
            )
    return items


OrderItems = Annotated[tuple[OrderItem, ...], AfterValidator(_bounded_lines)]


# Left out of the body when absent (not null), so a body written before it existed means,
# and hashes for its idempotency key, what it did.
ShippingMethodChoice = Annotated[
    UUID | None,
    Field(
        exclude_if=lambda v: v is None,
        description="A shipping method serving the address's country with a price in the order's currency "
        "(`GET /api/shipping-methods`): its price, free from its threshold, is added to the total. Absent: "
        "no shipping is charged",
    ),
]


# Left out of the body when absent, like the shipping method (the same idempotency hash).
VoucherChoice = Annotated[
    str | None,
    StringConstraints(min_length=1, max_length=32),
    Field(
        exclude_if=lambda v: v is None,
        description="A voucher's code, whatever its case: its discount is spread over the lines it applies to. "
        "One that does not exist, is not active or valid now, applies to none of the items, whose minimum spend "
        "is not met, or has no use left (for this customer) is a 422 on `voucher_code`",
    ),
]


class PlaceOrderBody(Contract):
    """`POST /api/orders`: without `items`, the caller's cart is ordered."""

    # The documented example works as it is sent (tests/integration/test_documented_examples.py):
    # the caller's cart, a real address, the sandbox's card that is always approved.
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "shipping_address": {
                        "recipient": "Ada Lovelace",
                        "phone": "+14155552671",
                        "line1": "1 Market St",
                        "city": "San Francisco",
                        "region": "CA",
                        "postal_code": "94105",
                        "country": "US",
                    },
                    "payment_token": "tok_visa",
                }
            ]
        }
    )

    items: OrderItems | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_LINES,
        description="Absent: the caller's cart, at today's prices; the ordered lines leave it once the order "
        "is confirmed",
    )
    shipping_address: ShippingAddress
    payment_token: PaymentToken = Field(description="A payment provider's token (`tok_visa`), never card data")
    shipping_method_id: ShippingMethodChoice = None
    voucher_code: VoucherChoice = None


class PlaceOrder(Contract):
    """Place an order, once per `order_id`: a repeat with the same body answers the same
    order, with another body it is refused (`validation_failed`)."""

    order_id: UUID = Field(description="Chosen by the client (partners) or derived from the Idempotency-Key (edge)")
    items: OrderItems | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_LINES,
        description="Absent or null: the actor's own cart, whose ordered lines leave it once the order is "
        "confirmed (people only; partners send items)",
    )
    shipping_address: ShippingAddress
    payment_token: PaymentToken
    shipping_method_id: ShippingMethodChoice = None
    voucher_code: VoucherChoice = None
    on_behalf_of: UUID | None = Field(
        default=None, description="Partners with the `orders:members` scope: the member the order is for"
    )
    request_hash: RequestHash | None = Field(
        default=None, description="The edge's hash of the HTTP body; otherwise the order's fields are hashed"
    )


class GetOrder(Contract):
    order_id: UUID


class PayOrderBody(Contract):
    """`POST /api/orders/{orderId}/payment`."""

    payment_token: PaymentToken = Field(description="Another payment provider's token (`tok_visa`), never card data")


class PayOrder(Contract):
    """Pay again an order whose payment failed, with another token, before its
    `payment_due_by`: its saga authorizes again (the order's owner, an admin, or the
    partner that placed it). A repeat while that authorization is under way answers the
    order as it is; an order not awaiting payment is refused (`conflict`)."""

    order_id: UUID
    payment_token: PaymentToken


# No surrounding spaces (refused, not trimmed: the document's pattern says so).
TrackingText = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S(?:.*\S)?$")]


class UpdateOrderStatus(Contract):
    """Cancel, ship or deliver. Shipping (or delivering) an order that already is answers
    it as it is: a repeated request is not an error. With `shipped`, the parcel's tracking
    number and carrier may be given (again later, to correct them)."""

    order_id: UUID
    status: Literal["cancelled", "shipped", "delivered"]
    tracking_number: TrackingText | None = Field(default=None, description="With `shipped`: the carrier's number")
    carrier: TrackingText | None = Field(default=None, description="With `shipped`: who carries it (`DHL`, `UPS`…)")

    @model_validator(mode="after")
    def _tracking_when_shipped(self) -> Self:
        if self.status != "shipped" and (self.tracking_number is not None or self.carrier is not None):
            raise invalid_input(
                "UpdateOrderStatus", [(("tracking_number",), "is given only when the order is shipped")]
            )
        return self


class ListUserOrders(Contract):
    user_id: UUID
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Annotated[str, StringConstraints(max_length=512)] | None = None


class ListUserOrdersQuery(Contract):
    """The query string of `GET /api/orders/user/{userId}`."""

    limit: int = Field(default=20, ge=1, le=100)
    cursor: Annotated[str, StringConstraints(max_length=512)] | None = None


class ListSellerOrdersQuery(Contract):
    """The query string of `GET /api/sellers/{sellerId}/orders`."""

    status: OrderStatus = Field(default="confirmed", description="`confirmed` (the default): the orders to ship")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Annotated[str, StringConstraints(max_length=512)] | None = None


class ListSellerOrders(ListSellerOrdersQuery):
    """The orders with a line of this seller's, newest first (the seller or an admin)."""

    seller_id: UUID


class OrderLine(Contract):
    """What was bought, as it was when the order was placed: a withdrawn or renamed product
    still shows here as it was sold."""

    product_id: UUID
    # Optional for events published before variants (the default variant's id is the product's).
    variant_id: UUID | None = None
    sku: str | None = None
    variant: str = Field(default="", description='The variant\'s option values when ordered, e.g. `"M / Red"`')
    quantity: int
    price: str = Field(description="The unit price charged, a decimal string in the order's currency")
    # Defaults and the validator below: for events published before issue 18.
    name: str = Field(default="", description="The product's name when ordered")
    image_url: str | None = Field(default=None, description="The product's main image when ordered; null: none")
    line_total: str = Field(description="`price` times `quantity`, a decimal string in the order's currency")
    tax: str = Field(
        description='The tax on the line, a decimal string in the order\'s currency; "0.00" (zero) until Agora '
        "computes taxes"
    )
    discount: str = Field(
        description="The discount on the line (its share of the voucher's), a decimal string in the order's "
        "currency; the line's tax is on its total less this"
    )

    @model_validator(mode="before")
    @classmethod
    def _amounts_of_older_events(cls, data: Any) -> Any:
        """An event published before lines had totals: the total is price times quantity, and
        there was neither tax nor discount (zero, written with the price's decimals)."""
        if isinstance(data, dict) and "line_total" not in data and "price" in data and "quantity" in data:
            with contextlib.suppress(ArithmeticError, TypeError, ValueError):
                price = Decimal(str(data["price"]))
                zero = str(price * 0)
                data = {"line_total": str(price * int(data["quantity"])), "tax": zero, "discount": zero, **data}
        return data


class OrderCustomer(Contract):
    """Who ordered, as their account was when the order was placed."""

    email: str
    name: str = Field(description="The account's username")


class OrderShipping(Contract):
    """The shipping method chosen at checkout, as it was then."""

    method_id: UUID
    name: str
    price: str = Field(description="What shipping cost (`0.00` when the goods reached its free threshold)")
    min_days: int = Field(description="Delivery estimate, in days after shipping: at the soonest")
    max_days: int
    tax: str = Field(default="0.00", description="The tax on shipping (the destination's standard rate)")


class OrderTaxLine(Contract):
    """One rate's share of the order's tax, as a receipt lists it."""

    name: str = Field(examples=["VAT"])
    rate: str = Field(description="The percentage", examples=["19"])
    amount: str


class Tracking(Contract):
    carrier: str | None
    number: str | None


class HistoryEntry(Contract):
    """A status the order took, or (status still `pending`) a payment that failed or a
    payment made again; null payment fields: an entry older than them."""

    status: OrderStatus
    at: datetime
    payment_status: PaymentStatus | None = None
    cancel_reason: CancelReason | None = None
    payment_due_by: datetime | None = Field(
        default=None, description="With a failed payment: until when the order may be paid again"
    )


class OrderView(Contract):
    order_id: UUID
    user_id: UUID
    status: OrderStatus
    items: tuple[OrderLine, ...]
    subtotal: str = Field(description="The lines' total (their prices as listed), before shipping")
    shipping: OrderShipping | None = Field(description="Null: no shipping charged (none chosen)")
    prices_include_tax: bool = Field(
        default=False, description="The prices include tax (it is part of them), or it was added on top"
    )
    tax_total: str = Field(default="0.00", description="The tax of the lines and shipping, included or added")
    taxes: tuple[OrderTaxLine, ...] = Field(default=(), description="The tax per rate")
    tracking: Tracking | None = Field(default=None, description="Given by the seller when shipping")
    voucher_code: str | None = Field(default=None, description="The voucher applied at checkout; null: none")
    discount_total: str = Field(default="0.00", description="The voucher's discount: the lines' `discount` summed")
    total_amount: str = Field(
        description="What the customer pays: the subtotal less the discount, shipping, and the tax when prices "
        "exclude it"
    )
    currency: str
    shipping_address: ShippingAddress | None = Field(description="Null once the customer's account was erased")
    customer: OrderCustomer | None = Field(
        default=None,
        description="The customer's email and name when the order was placed; null when unknown (an account "
        "older than this field, a partner ordering for itself) and once the account was erased",
    )
    payment_status: PaymentStatus
    cancel_reason: CancelReason | None
    payment_due_by: datetime | None = Field(
        default=None,
        description="While the payment has failed and the order is pending: until when it may be paid again "
        "(`POST /api/orders/{orderId}/payment`); then it is cancelled. Null otherwise",
    )
    history: tuple[HistoryEntry, ...]
    returns: tuple[ReturnView, ...] = Field(default=(), description="Its returns, oldest first")
    refunds: tuple[RefundView, ...] = Field(
        default=(), description="Its refunds (of returns, and admins' direct ones), oldest first"
    )
    refunded_total: str | None = Field(
        default=None,
        description="What its `refunds` gave back so far (those `refunded`); null: none. A cancel's refund of "
        "everything is `payment_status` `refunded`",
    )
    created_at: datetime
    updated_at: datetime


class OrderPage(Contract):
    items: tuple[OrderView, ...]
    next_cursor: str | None


# --- events ------------------------------------------------------------------------------


class OrderPlaced(Contract):
    order_id: UUID
    user_id: UUID
    items: tuple[OrderLine, ...]
    total_minor: int
    currency: str
    at: datetime
    # What the total is made of, in minor units of `currency`, as the order view shows it.
    # Defaults: an event published before these fields (receivers first).
    subtotal_minor: int = Field(
        default=0, description="The lines' total at their listed prices; 0: not given (an older publisher)"
    )
    discount_minor: int = Field(default=0, description="The voucher's discount over the lines")
    voucher_code: str | None = Field(default=None, description="The voucher applied at checkout; null: none")
    shipping_minor: int = Field(default=0, description="What shipping cost (0 also when free)")
    shipping_method: str | None = Field(default=None, description="The shipping method's name; null: none chosen")
    tax_minor: int = Field(default=0, description="The tax of the lines and shipping, included or added")
    taxes: tuple[OrderTaxLine, ...] = Field(default=(), description="The tax per rate, as the order view's `taxes`")
    prices_include_tax: bool = Field(default=False, description="The prices include tax, or it was added on top")


class OrderStatusChanged(Contract):
    """The body of every later order event: where the order stands now."""

    order_id: UUID
    user_id: UUID
    status: OrderStatus
    payment_status: PaymentStatus
    cancel_reason: CancelReason | None = None
    payment_due_by: datetime | None = Field(
        default=None, description="`orders.payment_failed`: until when the order may be paid again"
    )
    tracking_number: str | None = Field(default=None, description="`orders.order_shipped`: the carrier's number")
    carrier: str | None = Field(default=None, description="`orders.order_shipped`: who carries the parcel")
    total_minor: int
    currency: str
    at: datetime


# --- the sales report -------------------------------------------------------------------

Granularity = Literal["day", "week", "month"]
# One report covers at most this many days (about three years, by day ten years by month).
MAX_REPORT_DAYS = 3700
MAX_REPORT_PERIODS = 1200


class SalesReportQuery(Contract):
    """The query string of `GET /api/sellers/{sellerId}/reports/sales`."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True)

    # `to` first: `from`'s default is counted back from it.
    end: IsoDate = Field(
        default_factory=lambda: datetime.now(UTC).date(),
        alias="to",
        description="Last day, UTC, included (YYYY-MM-DD); by default today",
    )
    start: IsoDate = Field(
        # (An invalid `to` is refused on its own: `from` then needs no default that means anything.)
        default_factory=lambda data: data.get("end", datetime.now(UTC).date()) - timedelta(days=29),
        alias="from",
        description="First day, UTC (YYYY-MM-DD); by default 29 days before `to`",
    )
    granularity: Granularity = "day"
    currency: CurrencyCode | None = Field(
        default=None, description="Sales in this currency; by default the currency most of the seller's sales use"
    )
    format: Literal["json", "csv"] = Field(default="json", description="`csv` (or `Accept: text/csv`) for a download")

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.end < self.start:
            raise ValueError("`to` must not be before `from`")
        if (self.end - self.start).days > MAX_REPORT_DAYS:
            raise ValueError(f"a report covers at most {MAX_REPORT_DAYS} days")
        if self.granularity == "day" and (self.end - self.start).days >= MAX_REPORT_PERIODS:
            raise ValueError(f"at most {MAX_REPORT_PERIODS} days by day: ask by week or month")
        return self


class SalesReport(Contract):
    seller_id: UUID
    start: date
    end: date
    granularity: Granularity = "day"
    currency: str | None = None


class SalesPeriod(Contract):
    start: date = Field(description="The period's first day (weeks start on Monday)")
    orders: int
    units: int
    revenue: str
    tax: str = Field(default="0.00", description="The tax of those sales (in the revenue or added to it)")


class TopProduct(Contract):
    product_id: UUID
    variant_id: UUID | None = None
    name: str = Field(description="The product's name when it was sold")
    variant: str = Field(default="", description='The variant\'s option values when sold, e.g. `"M / Red"`')
    units: int
    revenue: str


class SalesTotals(Contract):
    orders: int
    units: int
    revenue: str
    tax: str = "0.00"


class SalesReportView(Contract):
    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    seller_id: UUID
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    granularity: Granularity
    currency: str
    periods: tuple[SalesPeriod, ...] = Field(description="Every period of the range, those without sales as zeros")
    top_products: tuple[TopProduct, ...] = Field(description="Up to 10, by revenue")
    totals: SalesTotals


# --- admin views -------------------------------------------------------------------------


class ListOrders(Contract):
    """All orders (admins), newest first; also the query string of `GET /api/admin/orders`."""

    status: OrderStatus | None = None
    q: Annotated[str, StringConstraints(max_length=320)] | None = Field(
        default=None,
        description="Search: an order id, whole or its first 8+ hex digits; a customer's email, whole (any "
        "case); or part of a customer's name. Orders matching any of these; blank: every order",
    )
    start: IsoDate | None = Field(default=None, alias="from", description="Placed on or after this day (UTC)")
    end: IsoDate | None = Field(default=None, alias="to", description="Placed on or before this day (UTC)")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Annotated[str, StringConstraints(max_length=512)] | None = None

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )


class SalesOverview(Contract):
    days: int = Field(default=14, ge=1, le=366)
    currency: CurrencyCode = "USD"


class DaySales(Contract):
    date: date
    orders: int = Field(description="Orders confirmed that day (UTC) and not cancelled since")
    revenue: str


class SalesOverviewView(Contract):
    currency: str
    days: tuple[DaySales, ...]


PLACE_ORDER = CommandSpec(
    "orders",
    "place_order",
    1,
    PlaceOrder,
    OrderView,
    requires_actor=True,
    summary="Place an order (members; partners with `orders:write`). Answered at once with the pending order; "
    "the outcome follows as `order_confirmed` or `order_cancelled`.",
)
GET_ORDER = CommandSpec(
    "orders",
    "get_order",
    1,
    GetOrder,
    OrderView,
    kind="query",
    requires_actor=True,
    summary="Read an order: its owner, an admin, a seller of one of its lines, the partner that placed it.",
)
PAY_ORDER = CommandSpec(
    "orders",
    "pay_order",
    1,
    PayOrder,
    OrderView,
    requires_actor=True,
    summary="Pay again, with another token, an order whose payment failed, before its `payment_due_by` (its "
    "owner, an admin, the partner that placed it). Answered at once with the pending order; the outcome follows "
    "as `order_confirmed`, or `payment_failed` again.",
)
UPDATE_ORDER_STATUS = CommandSpec(
    "orders",
    "update_order_status",
    1,
    UpdateOrderStatus,
    OrderView,
    requires_actor=True,
    summary="Cancel, ship or deliver an order (who may do what: see the HTTP API).",
)
LIST_USER_ORDERS = CommandSpec(
    "orders",
    "list_user_orders",
    1,
    ListUserOrders,
    OrderPage,
    kind="query",
    requires_actor=True,
    summary="A member's orders, newest first, in keyset pages (the member or an admin).",
)

SALES_REPORT = CommandSpec(
    "orders",
    "sales_report",
    1,
    SalesReport,
    SalesReportView,
    kind="query",
    requires_actor=True,
    summary="A seller's sales by day, week or month, from confirmed orders not cancelled since (the seller or an "
    "admin).",
)
LIST_SELLER_ORDERS = CommandSpec(
    "orders",
    "list_seller_orders",
    1,
    ListSellerOrders,
    OrderPage,
    kind="query",
    requires_actor=True,
    summary="The orders with a line of a seller's, by status (by default those to ship), newest first, in keyset "
    "pages (the seller or an admin).",
)
LIST_ORDERS = CommandSpec(
    "orders",
    "list_orders",
    1,
    ListOrders,
    OrderPage,
    kind="query",
    requires_actor=True,
    summary="Every order, newest first, by status and day placed, in keyset pages (admins).",
)
SALES_OVERVIEW = CommandSpec(
    "orders",
    "sales_overview",
    1,
    SalesOverview,
    SalesOverviewView,
    kind="query",
    requires_actor=True,
    summary="Confirmed orders and revenue per day over the last days (admins).",
)

ORDER_PLACED = EventSpec("orders", "order_placed", 1, OrderPlaced, summary="An order was placed (pending).")
ORDER_CONFIRMED = EventSpec(
    "orders", "order_confirmed", 1, OrderStatusChanged, summary="Stock reserved and payment authorized."
)
ORDER_CANCELLED = EventSpec(
    "orders", "order_cancelled", 1, OrderStatusChanged, summary="An order was cancelled; `cancel_reason` says why."
)
ORDER_PAYMENT_FAILED = EventSpec(
    "orders",
    "payment_failed",
    1,
    OrderStatusChanged,
    summary="An order's payment failed (declined, or unanswered): it stays pending, its stock held, and may be paid "
    "again until `payment_due_by`; then it is cancelled.",
)
ORDER_SHIPPED = EventSpec("orders", "order_shipped", 1, OrderStatusChanged, summary="An order was shipped.")
ORDER_DELIVERED = EventSpec("orders", "order_delivered", 1, OrderStatusChanged, summary="An order was delivered.")

STATUS_EVENTS: dict[str, EventSpec] = {
    "confirmed": ORDER_CONFIRMED,
    "cancelled": ORDER_CANCELLED,
    "shipped": ORDER_SHIPPED,
    "delivered": ORDER_DELIVERED,
}

EXPORT_USER_DATA = export_spec("orders")

COMMANDS: tuple[CommandSpec, ...] = (
    PLACE_ORDER,
    GET_ORDER,
    PAY_ORDER,
    UPDATE_ORDER_STATUS,
    LIST_USER_ORDERS,
    LIST_SELLER_ORDERS,
    SALES_REPORT,
    LIST_ORDERS,
    SALES_OVERVIEW,
    EXPORT_USER_DATA,
)
EVENTS = (ORDER_PLACED, ORDER_CONFIRMED, ORDER_CANCELLED, ORDER_PAYMENT_FAILED, ORDER_SHIPPED, ORDER_DELIVERED)
