"""Returns and refunds: pure rules, no I/O.

A `Return` is lines of a delivered order going back; a `Refund` is money going back
through the payments service, a return's (per line) or an admin's direct one. What a
line refunds is its share of what was paid for it: its price times its quantity, less
its discount, plus its tax when that was added on top of the prices (when prices include
tax it is already in them). A share of a quantity is cut so that refunding a line in
parts never gives back more (nor, once all of it is refunded, less) than it cost:
`paid * (before + q) // quantity - paid * before // quantity`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from uuid import UUID

from contracts.errors import FieldError
from contracts.money import for_people, to_amount
from contracts.returns import (
    RefundLineView,
    RefundOrder,
    RefundReturn,
    RefundStatus,
    RefundView,
    RequestReturn,
    ReturnChanged,
    ReturnLineView,
    ReturnStatus,
    ReturnView,
    UpdateReturn,
)
from kernel.tokens import Actor
from workers.orders.orders.model import Line, Order, OrderRefused

# --- what was paid -----------------------------------------------------------------------


def line_paid(line: Line, prices_include_tax: bool) -> int:
    """What the customer paid for a whole line, in minor units."""
    paid = line.unit_price_minor * line.quantity - line.discount_minor
    return paid if prices_include_tax else paid + line.tax_minor


def shipping_paid(order: Order) -> int:
    if order.shipping is None:
        return 0
    return order.shipping.price_minor + (0 if order.prices_include_tax else order.shipping.tax_minor)


def share(paid: int, quantity: int, before: int, more: int) -> int:
    """What `more` units of a line of `quantity` units that cost `paid` give back, `before`
    units of it having been refunded already."""
    return paid * (before + more) // quantity - paid * before // quantity


def delivered_at(order: Order) -> datetime | None:
    """When the order was delivered (its history's entry), or None if it was not."""
    return next((h.at for h in reversed(order.history) if h.status == "delivered"), None)


# --- returns -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnLine:
    variant_id: UUID
    product_id: UUID
    seller_id: UUID
    quantity: int
    resaleable: bool | None = None


@dataclass(frozen=True)
class Return:
    return_id: UUID
    order_id: UUID
    user_id: UUID
    requested_by: UUID
    status: ReturnStatus
    reason: str
    currency: str
    lines: tuple[ReturnLine, ...]
    requested_at: datetime
    updated_at: datetime
    note: str | None = None
    decided_by: UUID | None = None
    decided_at: datetime | None = None
    received_at: datetime | None = None
    refunded_at: datetime | None = None

    def sellers(self) -> frozenset[UUID]:
        return frozenset(x.seller_id for x in self.lines)

    @property
    def live(self) -> bool:
        """Holds its quantities of the order's lines (not refused)."""
        return self.status != "refused"

    def view(self, order: Order) -> ReturnView:
        """The return, its lines named as the order sold them and each with what it refunds
        (its share as if nothing else of the line had been refunded)."""
        sold = {x.variant_id: x for x in order.lines}
        return ReturnView(
            return_id=self.return_id,
            order_id=self.order_id,
            user_id=self.user_id,
            status=self.status,
            reason=self.reason,
            note=self.note,
            items=tuple(_line_view(x, sold[x.variant_id], order) for x in self.lines),
            currency=self.currency,
            requested_at=self.requested_at,
            decided_at=self.decided_at,
            received_at=self.received_at,
            refunded_at=self.refunded_at,
            updated_at=self.updated_at,
        )

    def event(self, order: Order, at: datetime) -> ReturnChanged:
        view = self.view(order)
        return ReturnChanged(
            return_id=self.return_id,
            order_id=self.order_id,
            user_id=self.user_id,
            status=self.status,
            items=view.items,
            currency=self.currency,
            note=self.note,
            at=at,
        )


def _line_view(line: ReturnLine, sold: Line, order: Order) -> ReturnLineView:
    refund = share(line_paid(sold, order.prices_include_tax), sold.quantity, 0, line.quantity)
    return ReturnLineView(
        product_id=line.product_id,
        variant_id=line.variant_id,
        name=sold.name,
        variant=sold.variant_label,
        sku=sold.sku,
        seller_id=line.seller_id,
        quantity=line.quantity,
        refund=to_amount(refund, order.currency),
        resaleable=line.resaleable,
    )


def may_see(ret: Return, order: Order, actor: Actor) -> bool:
    """The order's customer (or the partner that placed it), admins, a seller of one of its lines."""
    return (
        actor.role == "admin"
        or actor.user_id in (order.user_id, order.placed_by)
        or (actor.role == "seller" and actor.user_id in ret.sellers())
    )


def may_handle(ret: Return, actor: Actor) -> bool:
    """Who approves, refuses, receives and refunds it: the seller of every line, or an admin."""
    return actor.role == "admin" or (actor.role == "seller" and ret.sellers() == {actor.user_id})


def request(
    cmd: RequestReturn,
    order: Order,
    actor: Actor,
    earlier: Sequence[Return],
    window: timedelta,
    now: datetime,
) -> Return:
    """A new return of the order's lines, if the rules allow it: asked by its customer (or
    an admin for them), of a delivered order within `window` of its delivery, of lines it
    has, in quantities its earlier returns (but refused ones) leave."""
    if not (actor.role == "admin" or actor.user_id == order.user_id):
        raise OrderRefused("forbidden", "only the order's customer (or an admin) may return its goods")
    delivered = delivered_at(order)
    if order.saga.status != "delivered" or delivered is None:
        raise OrderRefused(
            "validation_failed",
            f"only a delivered order's goods can be returned; this order is {order.saga.status}",
            (FieldError(field="order_id", message="is not delivered"),),
        )
    if now > delivered + window:
        raise OrderRefused(
            "validation_failed",
            f"the return window closed on {(delivered + window).date().isoformat()}",
            (FieldError(field="order_id", message=f"was delivered more than {window.days} days ago"),),
        )
    sold = {x.variant_id: x for x in order.lines}
    taken = _quantities(x for r in earlier if r.live for x in r.lines)
    asked: dict[UUID, int] = {}
    errors: list[FieldError] = []
    for index, item in enumerate(cmd.items):
        variant_id = item.variant_id or item.product_id
        line = sold.get(variant_id)
        if line is None or line.product_id != item.product_id:
            errors.append(FieldError(field=f"items.{index}.product_id", message="is not a line of this order"))
            continue
        asked[variant_id] = asked.get(variant_id, 0) + item.quantity
        left = line.quantity - taken.get(variant_id, 0)
        if asked[variant_id] > left:
            errors.append(
                FieldError(field=f"items.{index}.quantity", message=f"at most {left} of this line can be returned")
            )
    if errors:
        raise OrderRefused("validation_failed", "some items cannot be returned", tuple(errors))
    lines = tuple(
        ReturnLine(variant_id, sold[variant_id].product_id, sold[variant_id].seller_id, quantity)
        for variant_id, quantity in sorted(asked.items())
    )
    return Return(
        return_id=cmd.return_id,
        order_id=order.order_id,
        user_id=order.user_id,
        requested_by=actor.user_id,
        status="requested",
        reason=cmd.reason,
        currency=order.currency,
        lines=lines,
        requested_at=now,
        updated_at=now,
    )


def same_request(ret: Return, cmd: RequestReturn, actor: Actor) -> None:
    """A repeat of the request that made `ret` answers it; its id with another order or
    caller is refused."""
    if ret.order_id != cmd.order_id or ret.requested_by != actor.user_id:
        raise OrderRefused("conflict", "this return_id (Idempotency-Key) belongs to another return")


def _quantities(lines: Iterable[ReturnLine | RefundLine]) -> dict[UUID, int]:
    totals: dict[UUID, int] = {}
    for x in lines:
        totals[x.variant_id] = totals.get(x.variant_id, 0) + x.quantity
    return totals


# Which status each move asks for leads from.
_MOVES: dict[str, ReturnStatus] = {"approved": "requested", "refused": "requested", "received": "approved"}


def move(ret: Return, cmd: UpdateReturn, actor: Actor, now: datetime) -> Return | None:
    """The return after a seller's or admin's move, or None if it is already there (a
    repeat). `OrderRefused` if this caller may not, or the return is elsewhere (409)."""
    if not may_handle(ret, actor):
        raise OrderRefused("forbidden", "only the seller of every line in the return, or an admin, handles it")
    if ret.status == cmd.status:
        return None
    if ret.status != _MOVES[cmd.status]:
        raise OrderRefused("conflict", f"a {ret.status} return cannot be {cmd.status}")
    if cmd.status == "received":
        chosen = {x.variant_id: x.resaleable for x in cmd.lines or ()}
        unknown = sorted(str(v) for v in set(chosen) - {x.variant_id for x in ret.lines})
        if unknown:
            raise OrderRefused(
                "validation_failed",
                "some lines are not in this return",
                tuple(FieldError(field="lines", message=f"{v} is not a line of this return") for v in unknown),
            )
        default = cmd.resaleable if cmd.resaleable is not None else True
        lines = tuple(replace(x, resaleable=chosen.get(x.variant_id, default)) for x in ret.lines)
        return replace(ret, status="received", lines=lines, received_at=now, updated_at=now, note=cmd.note or ret.note)
    return replace(ret, status=cmd.status, note=cmd.note, decided_by=actor.user_id, decided_at=now, updated_at=now)


def resaleable(ret: Return) -> tuple[ReturnLine, ...]:
    """The lines that go back on sale."""
    return tuple(x for x in ret.lines if x.resaleable)


# --- refunds -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundLine:
    variant_id: UUID
    quantity: int
    amount_minor: int


@dataclass(frozen=True)
class Refund:
    refund_id: UUID
    order_id: UUID
    return_id: UUID | None
    user_id: UUID
    status: RefundStatus
    amount_minor: int
    shipping_minor: int
    currency: str
    requested_by: UUID
    requested_at: datetime
    lines: tuple[RefundLine, ...] = ()
    reason: str | None = None
    failure: str | None = None
    settled_at: datetime | None = None
    # While pending: how many times the payments service was asked, and when to ask again.
    attempt: int = 1
    retry_at: datetime | None = None

    @property
    def live(self) -> bool:
        """Counts against what may still be refunded: pending or done (a failed one gave nothing back)."""
        return self.status != "failed"

    @property
    def reference(self) -> str:
        """What the payments service echoes back, so its answer finds this refund."""
        return f"{REFERENCE_PREFIX}{self.refund_id}"

    @property
    def idempotency_key(self) -> str:
        return f"{self.order_id}:refund:{self.refund_id}"

    def view(self) -> RefundView:
        return RefundView(
            refund_id=self.refund_id,
            order_id=self.order_id,
            return_id=self.return_id,
            status=self.status,
            amount=to_amount(self.amount_minor, self.currency),
            shipping=to_amount(self.shipping_minor, self.currency),
            currency=self.currency,
            reason=self.reason,
            lines=tuple(
                RefundLineView(
                    variant_id=x.variant_id, quantity=x.quantity, amount=to_amount(x.amount_minor, self.currency)
                )
                for x in self.lines
            ),
            failure=self.failure,
            requested_at=self.requested_at,
            settled_at=self.settled_at,
        )


REFERENCE_PREFIX = "refund:"


def refund_of(reference: str | None) -> UUID | None:
    """The refund a payments event's `reference` names, or None (the saga's own steps carry none)."""
    if reference is None or not reference.startswith(REFERENCE_PREFIX):
        return None
    try:
        return UUID(reference.removeprefix(REFERENCE_PREFIX))
    except ValueError:
        return None


def refundable(order: Order, refunds: Sequence[Refund]) -> int:
    """What of the order's captured payment no refund (pending or done) has taken yet."""
    if order.saga.payment != "captured":
        return 0
    return order.total_minor - sum(r.amount_minor for r in refunds if r.live)


def refunded_total(refunds: Sequence[Refund]) -> int:
    return sum(r.amount_minor for r in refunds if r.status == "refunded")


def _require_captured(order: Order) -> None:
    if order.saga.payment != "captured":
        what = {"refunding": "being refunded whole", "refunded": "refunded whole"}.get(
            order.saga.payment, "not captured"
        )
        raise OrderRefused("conflict", f"this order's payment is {what}: nothing to refund")


def refund_return(
    cmd: RefundReturn,
    ret: Return,
    order: Order,
    refunds: Sequence[Refund],
    actor: Actor,
    refund_id: UUID,
    now: datetime,
) -> Refund:
    """A refund of a received return's lines (by default every line, whole) and, if asked,
    of what is left of the order's shipping; never more of a line than was paid for it, nor
    of the order than was captured."""
    if not may_handle(ret, actor):
        raise OrderRefused("forbidden", "only the seller of every line in the return, or an admin, refunds it")
    if ret.status != "received":
        raise OrderRefused("conflict", f"a {ret.status} return cannot be refunded: only a received one")
    _require_captured(order)
    returned = {x.variant_id: x.quantity for x in ret.lines}
    wanted = {x.variant_id: x.quantity for x in cmd.lines} if cmd.lines is not None else dict(returned)
    errors = [
        FieldError(field="lines", message=f"{variant_id}: at most {returned.get(variant_id, 0)} of it came back")
        for variant_id, quantity in wanted.items()
        if quantity > returned.get(variant_id, 0)
    ]
    if errors:
        raise OrderRefused("validation_failed", "some lines cannot be refunded", tuple(errors))
    sold = {x.variant_id: x for x in order.lines}
    before = _quantities(x for r in refunds if r.live for x in r.lines)
    lines = []
    for variant_id, quantity in sorted(wanted.items()):
        line = sold[variant_id]
        if before.get(variant_id, 0) + quantity > line.quantity:
            raise OrderRefused("conflict", f"line {variant_id} was refunded already")
        amount = share(line_paid(line, order.prices_include_tax), line.quantity, before.get(variant_id, 0), quantity)
        lines.append(RefundLine(variant_id, quantity, amount))
    shipping = 0
    if cmd.shipping:
        # The shipping carried every seller's goods: only an admin, or the seller of every
        # line of the order, gives it back.
        if actor.role != "admin" and order.sellers() != {actor.user_id}:
            raise OrderRefused("forbidden", "only an admin refunds the shipping of an order with other sellers' goods")
        shipping = shipping_paid(order) - sum(r.shipping_minor for r in refunds if r.live)
    amount = sum(x.amount_minor for x in lines) + shipping
    return _within_captured(
        Refund(
            refund_id=refund_id,
            order_id=order.order_id,
            return_id=ret.return_id,
            user_id=order.user_id,
            status="pending",
            amount_minor=amount,
            shipping_minor=shipping,
            currency=order.currency,
            requested_by=actor.user_id,
            requested_at=now,
            lines=tuple(lines),
            reason=ret.reason,
        ),
        order,
        refunds,
    )


def refund_order(
    cmd: RefundOrder, amount_minor: int, order: Order, refunds: Sequence[Refund], actor: Actor, now: datetime
) -> Refund:
    """An admin's direct refund of an amount of a captured order (goodwill, or partial
    without a return): any time after capture, never beyond what is left captured."""
    if actor.role != "admin":
        raise OrderRefused("forbidden", "only admins refund an order directly")
    _require_captured(order)
    refund = Refund(
        refund_id=cmd.refund_id,
        order_id=order.order_id,
        return_id=None,
        user_id=order.user_id,
        status="pending",
        amount_minor=amount_minor,
        shipping_minor=0,
        currency=order.currency,
        requested_by=actor.user_id,
        requested_at=now,
        reason=cmd.reason,
    )
    return _within_captured(refund, order, refunds)


def _within_captured(refund: Refund, order: Order, refunds: Sequence[Refund]) -> Refund:
    left = refundable(order, refunds)
    if refund.amount_minor <= 0:
        raise OrderRefused("conflict", "nothing is left to refund of these lines")
    if refund.amount_minor > left:
        raise OrderRefused(
            "conflict",
            f"{for_people(refund.amount_minor, order.currency)} is more than is left to refund of this order "
            f"({for_people(left, order.currency)} of {for_people(order.total_minor, order.currency)})",
        )
    return refund


def same_refund(refund: Refund, cmd: RefundOrder, amount_minor: int) -> None:
    if refund.order_id != cmd.order_id or refund.return_id is not None or refund.amount_minor != amount_minor:
        raise OrderRefused("conflict", "this refund_id (Idempotency-Key) belongs to another refund")


def settle(refund: Refund, refunded: bool, failure: str | None, at: datetime) -> Refund | None:
    """The refund after the payments service's answer, or None if it was settled already (a repeat)."""
    if refund.status != "pending":
        return None
    if refunded:
        return replace(refund, status="refunded", settled_at=at, retry_at=None)
    failure = failure or "the payment provider did not refund it"
    return replace(refund, status="failed", failure=failure, settled_at=at, retry_at=None)


# How long a refund is asked for again under its key: a provider keeps an idempotency key
# about a day (Stripe: 24 hours), so a retry after that could refund a second time.
RESEND_FOR = timedelta(hours=20)


def ask_again(refund: Refund, now: datetime, retry_after: timedelta) -> Refund | None:
    """An unanswered refund asked for again (under its key: never a second refund), the
    next look further off each time (up to ten times `retry_after`); None once RESEND_FOR
    has passed since it was asked for: it stays pending, for a person to check at the
    provider, and is never asked for again (`retry_at` cleared)."""
    if now - refund.requested_at >= RESEND_FOR:
        return None
    attempt = refund.attempt + 1
    return replace(refund, attempt=attempt, retry_at=now + retry_after * min(attempt, 10))


def live_refund(refunds: Sequence[Refund], return_id: UUID) -> Refund | None:
    """The return's refund pending or done, if it has one (a repeat answers it)."""
    return next((r for r in refunds if r.return_id == return_id and r.live), None)
