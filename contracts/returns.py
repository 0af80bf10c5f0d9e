"""Returns and refunds (issue 18): a member sends goods back, a seller or admin takes them
back, and money goes back through the payments service.

The orders service owns both (they are about its orders' lines), so their commands are
`orders.*`. A member asks to return some lines (and quantities) of a delivered order of
theirs within the return window, with a reason: the return is `requested`. The seller
of every line in it, or an admin, `approved` or `refused` it (with a note), and once the
parcel is back marks it `received`, each line resaleable (back on sale) or not. Then the
return is refunded: each line's share of what was paid for it (its price times the
quantity returned, less its share of the discount, plus its tax when that was added on
top), and the shipping if asked; the return is `refunded` once the payment provider has
refunded it. An admin may also refund an amount of a captured order directly (goodwill,
or a partial refund without a return). No line is ever refunded beyond what was paid for
it, and an order's refunds never beyond what was captured.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import Field, StringConstraints, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from contracts.base import WHOLE, WORDS, Contract, not_null
from contracts.errors import invalid_input
from contracts.inventory import MAX_QUANTITY
from contracts.topology import CommandSpec, EventSpec

ReturnStatus = Literal["requested", "approved", "refused", "received", "refunded"]
RefundStatus = Literal["pending", "refunded", "failed"]
# As many lines as an order may have.
MAX_RETURN_LINES = 100
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500, pattern=WORDS)]
# Up to 12 digits and 3 decimals; how many decimals an amount may have is its currency's.
RefundAmount = Annotated[
    str,
    StringConstraints(max_length=32, pattern=r"^\d{1,12}(?:\.\d{1,3})?$"),
    Field(description='A decimal string in the order\'s currency, e.g. `"5.00"`', examples=["5.00"]),
]
Cursor = Annotated[str, StringConstraints(max_length=512)]


class ReturnItem(Contract):
    """A line of the order to send back, and how many of it."""

    product_id: UUID
    variant_id: UUID | None = Field(default=None, description="The line's variant; absent: the product's default one")
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY), WHOLE]


class RequestReturnBody(Contract):
    """`POST /api/orders/{orderId}/returns`."""

    items: tuple[ReturnItem, ...] = Field(min_length=1, max_length=MAX_RETURN_LINES)
    reason: Reason = Field(description="Why the goods go back, in the customer's words")


class RequestReturn(RequestReturnBody):
    """Ask to return lines of a delivered order, once per `return_id`: a repeat answers the
    same return. The order's customer (or an admin for them), within the return window."""

    return_id: UUID = Field(description="Derived by the edge from the Idempotency-Key (a new one without it)")
    order_id: UUID


class GetReturn(Contract):
    return_id: UUID


class ListReturnsQuery(Contract):
    """The query string of `GET /api/returns` and `GET /api/orders/{orderId}/returns`."""

    status: ReturnStatus | None = Field(default=None, description="Only returns in this status")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Cursor | None = None


class ListReturns(ListReturnsQuery):
    """Returns, newest first: an admin's all, a seller's those with a line of theirs, a
    member's their own; of one order with `order_id`."""

    order_id: UUID | None = None


class ReceivedLine(Contract):
    variant_id: UUID
    resaleable: bool = Field(description="Back on sale (its stock goes up), or not (damaged, used)")


class UpdateReturn(Contract):
    """Approve or refuse a requested return, or mark an approved one received (the seller
    of every line in it, or an admin). Asking for the status it has already is answered
    with the return as it is."""

    return_id: UUID
    status: Literal["approved", "refused", "received"]
    note: Reason | SkipJsonSchema[None] = Field(
        default=None, description="For the customer: required to refuse (why), optional otherwise"
    )
    resaleable: bool | SkipJsonSchema[None] = Field(
        default=None, description="With `received`: every line back on sale or not (by default: back on sale)"
    )
    lines: Annotated[tuple[ReceivedLine, ...], Field(max_length=MAX_RETURN_LINES)] | SkipJsonSchema[None] = Field(
        default=None,
        description="With `received`: per line, whether it goes back on sale (overrides `resaleable`)",
    )

    _not_null = field_validator("note", "resaleable", "lines")(not_null)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[tuple[str, ...], str]] = []
        if self.status == "refused" and self.note is None:
            problems.append((("note",), "is required to refuse a return"))
        if self.status != "received":
            problems += [
                ((name,), "is given only with received")
                for name in ("resaleable", "lines")
                if getattr(self, name) is not None
            ]
        if problems:
            raise invalid_input("UpdateReturn", problems)
        return self


class RefundLineChoice(Contract):
    variant_id: UUID
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY), WHOLE]


class RefundReturnBody(Contract):
    """`POST /api/returns/{returnId}/refund`."""

    lines: (
        Annotated[tuple[RefundLineChoice, ...], Field(min_length=1, max_length=MAX_RETURN_LINES)] | SkipJsonSchema[None]
    ) = Field(default=None, description="The lines and quantities to refund; absent: every line of the return, whole")
    shipping: bool = Field(default=False, description="Refund the order's shipping too (what is left of it)")

    _not_null = field_validator("lines")(not_null)


class RefundReturn(RefundReturnBody):
    """Refund a received return (the seller of every line in it, or an admin), once: while
    its refund is pending or done, a repeat answers that refund."""

    return_id: UUID


class RefundOrderBody(Contract):
    """`POST /api/orders/{orderId}/refunds`."""

    amount: RefundAmount
    reason: Reason = Field(description="Why, for the customer and the books")


class RefundOrder(RefundOrderBody):
    """An admin refunds an amount of a captured order directly (goodwill, a partial refund
    without a return), once per `refund_id`."""

    refund_id: UUID = Field(description="Derived by the edge from the Idempotency-Key (a new one without it)")
    order_id: UUID


# --- views -----------------------------------------------------------------------------------


class ReturnLineView(Contract):
    product_id: UUID
    variant_id: UUID
    name: str = Field(description="The product's name when ordered")
    variant: str = Field(description='The variant\'s option values when ordered, e.g. `"M / Red"`')
    sku: str | None
    seller_id: UUID
    quantity: int = Field(description="How many go back")
    refund: str = Field(description="What refunding this quantity gives back (its share of what was paid)")
    resaleable: bool | None = Field(description="Once received: back on sale or not; null before")


class ReturnView(Contract):
    return_id: UUID
    order_id: UUID
    user_id: UUID = Field(description="The order's customer")
    status: ReturnStatus
    reason: str
    note: str | None = Field(description="The seller's or admin's note (why it was refused)")
    items: tuple[ReturnLineView, ...]
    currency: str
    requested_at: datetime
    decided_at: datetime | None = Field(description="When it was approved or refused")
    received_at: datetime | None
    refunded_at: datetime | None
    updated_at: datetime


class ReturnPage(Contract):
    items: tuple[ReturnView, ...]
    next_cursor: str | None


class RefundLineView(Contract):
    variant_id: UUID
    quantity: int
    amount: str


class RefundView(Contract):
    refund_id: UUID
    order_id: UUID
    return_id: UUID | None = Field(description="The return refunded; null: an admin's direct refund")
    status: RefundStatus = Field(description="`pending` until the payment provider has refunded it (or failed to)")
    amount: str = Field(description="The whole refund, shipping included")
    shipping: str = Field(description="The part of `amount` that is the shipping's")
    currency: str
    reason: str | None
    lines: tuple[RefundLineView, ...]
    failure: str | None = Field(description="Why the provider did not refund it (`failed`)")
    requested_at: datetime
    settled_at: datetime | None


# --- events ----------------------------------------------------------------------------------


class ReturnChanged(Contract):
    """The body of every return event: the return as it stands now."""

    return_id: UUID
    order_id: UUID
    user_id: UUID
    status: ReturnStatus
    items: tuple[ReturnLineView, ...]
    currency: str
    note: str | None = None
    at: datetime


class RefundIssued(Contract):
    refund_id: UUID
    order_id: UUID
    user_id: UUID
    return_id: UUID | None
    amount_minor: int
    currency: str
    refunded_total_minor: int = Field(description="Everything refunded of the order so far, this included")
    at: datetime


def _command(
    name: str, payload: type[Contract], reply: type[Contract], summary: str, *, query: bool = False
) -> CommandSpec:
    return CommandSpec(
        "orders", name, 1, payload, reply, kind="query" if query else "command", requires_actor=True, summary=summary
    )


REQUEST_RETURN = _command(
    "request_return",
    RequestReturn,
    ReturnView,
    "Ask to return lines of a delivered order within the return window (its customer, or an admin for them).",
)
GET_RETURN = _command(
    "get_return",
    GetReturn,
    ReturnView,
    "Read a return: the order's customer, a seller with a line in it, an admin.",
    query=True,
)
LIST_RETURNS = _command(
    "list_returns",
    ListReturns,
    ReturnPage,
    "Returns, newest first, by status (and order): an admin's all, a seller's with a line of theirs, a member's own.",
    query=True,
)
UPDATE_RETURN = _command(
    "update_return",
    UpdateReturn,
    ReturnView,
    "Approve, refuse or receive a return (the seller of every line in it, or an admin).",
)
REFUND_RETURN = _command(
    "refund_return",
    RefundReturn,
    RefundView,
    "Refund a received return through the payments service (the seller of every line in it, or an admin).",
)
REFUND_ORDER = _command(
    "refund_order",
    RefundOrder,
    RefundView,
    "Admin: refund an amount of a captured order directly, through the payments service.",
)

RETURN_REQUESTED = EventSpec("orders", "return_requested", 1, ReturnChanged, summary="A member asked to return goods.")
RETURN_APPROVED = EventSpec("orders", "return_approved", 1, ReturnChanged, summary="A return was approved.")
RETURN_REFUSED = EventSpec("orders", "return_refused", 1, ReturnChanged, summary="A return was refused (see `note`).")
RETURN_RECEIVED = EventSpec("orders", "return_received", 1, ReturnChanged, summary="A return's goods are back.")
REFUND_ISSUED = EventSpec(
    "orders",
    "refund_issued",
    1,
    RefundIssued,
    summary="The payment provider refunded money of an order (a return's, or an admin's direct refund).",
)

RETURN_EVENTS: dict[str, EventSpec] = {
    "requested": RETURN_REQUESTED,
    "approved": RETURN_APPROVED,
    "refused": RETURN_REFUSED,
    "received": RETURN_RECEIVED,
}

COMMANDS: tuple[CommandSpec, ...] = (
    REQUEST_RETURN,
    GET_RETURN,
    LIST_RETURNS,
    UPDATE_RETURN,
    REFUND_RETURN,
    REFUND_ORDER,
)
EVENTS = (RETURN_REQUESTED, RETURN_APPROVED, RETURN_REFUSED, RETURN_RECEIVED, REFUND_ISSUED)
