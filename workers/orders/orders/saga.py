"""The order saga (architecture §7) as a pure transition function: no I/O, no clock.

`transition(saga, message, now, config)` → `(saga after, commands to send)`. The
handlers load the saga row, call this, save with an optimistic version check and
put the commands in the outbox; the sweeper feeds `Timeout`s through the same function.

Steps: reserving → authorizing → (confirm: the point of no return) → completing
(commit the reservation and capture the payment, retried until done) → done; or, on
failure, timeout or cancel, compensating (release, void) → done. A declined or
unanswered authorization does not cancel at once: the order waits in
awaiting_payment, its stock still held (and a possible authorization voided), until
the pay-again window's end (`pay_by`); paid again (`Pay`), it goes back to authorizing
with a new attempt and token; at the window's end it compensates as a failed payment
always did (payment_declined, or payment_timeout). A cancel after the
point of no return lets commit and capture finish, then refunds and, unless the order
has shipped, returns the committed stock (completing again → done). Replies that do not
answer what the saga is waiting for now (another step, an older attempt, a
duplicate) change nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from contracts.base import Contract
from contracts.inventory import (
    COMMIT_STOCK,
    RELEASE_STOCK,
    RESERVE_STOCK,
    RETURN_STOCK,
    CommitStock,
    ReleaseStock,
    ReservationLine,
    ReservationStatus,
    ReserveStock,
    ReturnStock,
)
from contracts.orders import CancelReason, OrderStatus, PaymentStatus
from contracts.payments import (
    AUTHORIZE_PAYMENT,
    CAPTURE_PAYMENT,
    REFUND_PAYMENT,
    VOID_PAYMENT,
    AuthorizePayment,
    CapturePayment,
    RefundPayment,
    VoidPayment,
)
from contracts.topology import CommandSpec

Step = Literal["reserving", "authorizing", "awaiting_payment", "completing", "compensating", "done"]
ReservationState = Literal[
    "requested", "reserved", "failed", "releasing", "released", "committing", "committed", "returning", "returned"
]
PaymentState = Literal[
    "none",
    "authorizing",
    "authorized",
    "declined",
    "voiding",
    "voided",
    "capturing",
    "captured",
    "refunding",
    "refunded",
]
PaymentStep = Literal["authorize", "capture", "void", "refund"]


class IllegalTransition(Exception):
    """The order cannot go to that status from where it is (the handler answers 409)."""


@dataclass(frozen=True)
class SagaConfig:
    reserve_deadline: timedelta = timedelta(seconds=30)
    reserve_attempts: int = 5
    payment_deadline: timedelta = timedelta(seconds=60)
    # Commit, capture, release, void and refund are resent this long after the last try
    # (times the attempt, up to 10 times) until they are answered.
    retry_after: timedelta = timedelta(seconds=5)
    # How long after a failed authorization the order may be paid again.
    pay_again: timedelta = timedelta(seconds=900)
    # The last resort if the orchestrator dies: a reservation outlives the longest a
    # pending order can hold its stock by this much (`reservation_ttl`).
    reservation_ttl_seconds: int = 900

    @property
    def reservation_ttl(self) -> int:
        """The TTL a reservation is made with, in seconds: the longest a pending order holds
        its stock (its first authorization, the pay-again window, and one more
        authorization begun at the window's very end), and the last-resort margin beyond."""
        held = self.payment_deadline * 2 + self.pay_again
        return self.reservation_ttl_seconds + math.ceil(held.total_seconds())


@dataclass(frozen=True)
class Send:
    """A command for another service, to go out through the outbox."""

    spec: CommandSpec
    payload: Contract


@dataclass(frozen=True)
class Saga:
    order_id: UUID
    lines: tuple[ReservationLine, ...]
    amount_minor: int
    currency: str
    payment_token: str
    status: OrderStatus
    cancel_reason: CancelReason | None
    step: Step
    attempt: int
    deadline: datetime | None
    reservation: ReservationState
    payment: PaymentState
    # When the provider last authorized, and last voided (from the payment events):
    # an authorization later than the last void is still live and must be voided.
    authorized_at: datetime | None = None
    voided_at: datetime | None = None
    # Cancelled after the point of no return but before shipping: once the reservation
    # is committed, its stock goes back on sale. (Shipped goods are not on the shelf.)
    restock: bool = False
    # The end of the pay-again window, set when the first authorization failed and never
    # moved after: paying again and failing again does not extend it.
    pay_by: datetime | None = None
    version: int = 0

    @property
    def terminal(self) -> bool:
        """Nothing more will ever happen to it."""
        return self.step == "done" and self.status in ("cancelled", "delivered")

    @property
    def payment_due_by(self) -> datetime | None:
        """While the order waits to be paid again: until when it may be."""
        return self.pay_by if self.step == "awaiting_payment" else None

    @property
    def payment_status(self) -> PaymentStatus:
        """The payment as the API tells it."""
        if self.step == "awaiting_payment":
            return "failed"
        match self.payment:
            case "none" | "authorizing":
                return "none"
            case "declined":
                return "failed"
            case "authorized" | "capturing":
                return "authorized"
            case "voiding":
                return "authorized" if self.authorized_at is not None else "none"
            case "captured" | "refunding":
                return "captured"
            case "voided":
                return "voided"
            case "refunded":
                return "refunded"


# --- messages -------------------------------------------------------------------------


@dataclass(frozen=True)
class ReservationReply:
    """An inventory reservation event for the order."""

    status: ReservationStatus


@dataclass(frozen=True)
class PaymentReply:
    """A payments event for the order."""

    step: PaymentStep
    outcome: str
    attempt: int
    at: datetime


@dataclass(frozen=True)
class Timeout:
    """The sweeper found the saga past its deadline."""


@dataclass(frozen=True)
class Cancel:
    reason: CancelReason


@dataclass(frozen=True)
class Pay:
    """Pay again, with another token: only an order awaiting payment."""

    payment_token: str


@dataclass(frozen=True)
class Ship:
    pass


@dataclass(frozen=True)
class Deliver:
    pass


Message = ReservationReply | PaymentReply | Timeout | Cancel | Pay | Ship | Deliver
Decision = tuple[Saga, tuple[Send, ...]]


# --- starting ---------------------------------------------------------------------------


def start(
    order_id: UUID,
    lines: tuple[ReservationLine, ...],
    amount_minor: int,
    currency: str,
    payment_token: str,
    now: datetime,
    config: SagaConfig,
) -> Decision:
    saga = Saga(
        order_id=order_id,
        lines=lines,
        amount_minor=amount_minor,
        currency=currency,
        payment_token=payment_token,
        status="pending",
        cancel_reason=None,
        step="reserving",
        attempt=1,
        deadline=now + config.reserve_deadline,
        reservation="requested",
        payment="none",
    )
    return saga, (_reserve(saga, config),)


def noted(before: Saga, after: Saga) -> bool:
    """Whether a step is an entry of the order's history: a new status, or (still pending)
    a payment that failed or was made again."""
    awaiting = (before.step == "awaiting_payment", after.step == "awaiting_payment")
    return after.status != before.status or awaiting[0] != awaiting[1]


def payment_failed(before: Saga, after: Saga) -> bool:
    """Whether a step is an order's payment failing: it starts waiting to be paid again."""
    return after.step == "awaiting_payment" and before.step != "awaiting_payment"


# --- the transition function ------------------------------------------------------------


def transition(saga: Saga, message: Message, now: datetime, config: SagaConfig) -> Decision:
    if saga.terminal and isinstance(message, ReservationReply | PaymentReply | Timeout):
        # A finished saga sends nothing more. A late authorization cannot be live here:
        # the payments worker voids everything the order holds at the provider and
        # refuses to authorize once the order was voided (docs/decisions.md).
        return saga, ()
    match message:
        case ReservationReply():
            return _on_reservation(saga, message, now, config)
        case PaymentReply():
            return _on_payment(saga, message, now, config)
        case Timeout():
            return _on_timeout(saga, now, config)
        case Cancel():
            return _cancel(saga, message.reason, now, config)
        case Pay():
            return _pay_again(saga, message.payment_token, now, config)
        case Ship():
            if saga.status == "shipped":
                return saga, ()  # the same request again (a retry): done already
            if saga.status != "confirmed":
                raise IllegalTransition(f"a {saga.status} order cannot be shipped")
            return replace(saga, status="shipped"), ()
        case Deliver():
            if saga.status == "delivered":
                return saga, ()
            if saga.status != "shipped":
                raise IllegalTransition(f"a {saga.status} order cannot be delivered")
            return replace(saga, status="delivered"), ()


def _on_reservation(saga: Saga, reply: ReservationReply, now: datetime, config: SagaConfig) -> Decision:
    status = reply.status
    if saga.step == "reserving" and saga.reservation == "requested":
        if status == "reserved":
            authorizing = replace(
                saga,
                step="authorizing",
                reservation="reserved",
                payment="authorizing",
                attempt=1,
                deadline=now + config.payment_deadline,
            )
            return authorizing, (_authorize(authorizing),)
        if status == "failed":
            # Nothing is held and nothing was authorized: nothing to undo.
            return replace(
                saga, step="done", reservation="failed", status="cancelled", cancel_reason="out_of_stock", deadline=None
            ), ()
        if status in ("released", "expired"):
            # Barred or gone before it was ours: as good as out of stock.
            return replace(
                saga,
                step="done",
                reservation="released",
                status="cancelled",
                cancel_reason="out_of_stock",
                deadline=None,
            ), ()
        return saga, ()
    if saga.reservation == "releasing" and status in ("released", "expired", "failed"):
        return _settle(replace(saga, reservation="released" if status != "failed" else "failed"), now, config)
    if saga.reservation == "committing" and status == "committed":
        return _settle(replace(saga, reservation="committed"), now, config)
    if saga.reservation == "returning" and status == "returned":
        return _settle(replace(saga, reservation="returned"), now, config)
    return saga, ()


def _on_payment(saga: Saga, reply: PaymentReply, now: datetime, config: SagaConfig) -> Decision:
    # Whatever the saga is doing, an authorization is money held: remember the latest.
    if (
        reply.step == "authorize"
        and reply.outcome == "authorized"
        and (saga.authorized_at is None or reply.at > saga.authorized_at)
    ):
        saga = replace(saga, authorized_at=reply.at)
    current = reply.attempt == saga.attempt
    match reply.step:
        case "authorize" if saga.step == "authorizing" and saga.payment == "authorizing" and current:
            if reply.outcome == "authorized":
                return _confirm(saga, now, config)
            if reply.outcome == "declined":
                return _await_payment(replace(saga, payment="declined"), now, config)
            # `failed`: the payments worker retried the provider and got no answer; the
            # authorization may exist. Like the saga's own deadline: void it and wait.
            return _await_payment(saga, now, config)
        case "capture" if saga.payment == "capturing" and current:
            if reply.outcome == "captured":
                return _settle(replace(saga, payment="captured"), now, config)
            return replace(saga, deadline=_retry_at(saga, now, config)), ()
        case "void" if saga.payment == "voiding" and current:
            if reply.outcome == "voided":
                return _settle(replace(saga, payment="voided", voided_at=reply.at), now, config)
            return replace(saga, deadline=_next_look(saga, now, config)), ()
        case "refund" if saga.payment == "refunding" and current:
            if reply.outcome == "refunded":
                return _settle(replace(saga, payment="refunded"), now, config)
            return replace(saga, deadline=_retry_at(saga, now, config)), ()
    if saga.payment == "voided" and _live_authorization(saga):
        # An authorization that came after the void (a slow provider): void it too.
        return _settle(saga, now, config)
    return saga, ()


def _on_timeout(saga: Saga, now: datetime, config: SagaConfig) -> Decision:
    if saga.deadline is None or now < saga.deadline:
        return saga, ()
    match saga.step:
        case "reserving":
            if saga.attempt < config.reserve_attempts:
                retry = replace(saga, attempt=saga.attempt + 1, deadline=now + config.reserve_deadline)
                return retry, (_reserve(retry, config),)
            return _compensate(saga, "out_of_stock", now, config)
        case "authorizing":
            return _await_payment(saga, now, config)
        case "awaiting_payment":
            if saga.pay_by is None or now >= saga.pay_by:
                return _compensate(saga, _payment_failure(saga), now, config)
            if saga.payment != "voiding":
                return replace(saga, deadline=saga.pay_by), ()
            # Before the window's end only a void is awaited (no answer yet): send it again.
            again = replace(saga, attempt=saga.attempt + 1)
            return replace(again, deadline=_next_look(again, now, config)), _pending(again)
        case "completing" | "compensating":
            again = replace(saga, attempt=saga.attempt + 1)
            return replace(again, deadline=_retry_at(again, now, config)), _pending(again)
    return saga, ()


def _cancel(saga: Saga, reason: CancelReason, now: datetime, config: SagaConfig) -> Decision:
    if saga.status in ("cancelled", "delivered"):
        raise IllegalTransition(f"a {saga.status} order cannot be cancelled")
    if saga.status == "pending":
        return _compensate(saga, reason, now, config)
    # Confirmed or shipped: past the point of no return. Commit and capture finish (if
    # they have not), then the payment is refunded and, unless the goods have shipped,
    # the committed stock returned (`_settle` starts each when its turn comes).
    cancelled = replace(saga, status="cancelled", cancel_reason=reason, restock=saga.status == "confirmed")
    return _settle(cancelled, now, config)


def _pay_again(saga: Saga, token: str, now: datetime, config: SagaConfig) -> Decision:
    if saga.status == "pending" and saga.step == "authorizing" and saga.payment_token == token:
        return saga, ()  # the same request again while its authorization is under way
    if saga.step != "awaiting_payment":
        if saga.status == "pending":
            raise IllegalTransition("this order is not waiting for a payment: its payment is under way")
        raise IllegalTransition(f"a {saga.status} order cannot be paid")
    if saga.payment == "voiding":
        # The failed attempt's authorization may still be live: a new one waits for its void.
        raise IllegalTransition("the failed payment is still being voided: try again in a moment")
    authorizing = replace(
        saga,
        step="authorizing",
        payment="authorizing",
        payment_token=token,
        attempt=saga.attempt + 1,
        deadline=now + config.payment_deadline,
    )
    return authorizing, (_authorize(authorizing),)


# --- moves ------------------------------------------------------------------------------


def _await_payment(saga: Saga, now: datetime, config: SagaConfig) -> Decision:
    """An authorization failed (declined, unanswered, past its deadline): the order stays
    pending with its stock held until the pay-again window's end, and an authorization
    that may exist (no answer came) is voided."""
    pay_by = saga.pay_by or now + config.pay_again
    if now >= pay_by:  # paid again at the window's very end, and failed after it
        return _compensate(saga, _payment_failure(saga), now, config)
    waiting = replace(saga, step="awaiting_payment", pay_by=pay_by)
    if saga.payment in ("authorizing", "authorized"):
        voiding = replace(waiting, payment="voiding", attempt=saga.attempt + 1)
        return replace(voiding, deadline=_next_look(voiding, now, config)), (_void(voiding),)
    return replace(waiting, deadline=pay_by), ()


def _payment_failure(saga: Saga) -> CancelReason:
    """Why an order whose pay-again window passed is cancelled: its last authorization's failure."""
    return "payment_declined" if saga.payment == "declined" else "payment_timeout"


def _confirm(saga: Saga, now: datetime, config: SagaConfig) -> Decision:
    confirmed = replace(
        saga,
        status="confirmed",
        step="completing",
        reservation="committing",
        payment="capturing",
        attempt=1,
        deadline=now + config.retry_after,
    )
    return confirmed, _pending(confirmed)


def _compensate(saga: Saga, reason: CancelReason, now: datetime, config: SagaConfig) -> Decision:
    """Cancel a pending order: release the reservation (a release before any reserve
    bars it) and void an authorization that may exist or be on its way."""
    payment: PaymentState = "voiding" if saga.payment in ("authorizing", "authorized") else saga.payment
    compensating = replace(
        saga,
        status="cancelled",
        cancel_reason=reason,
        step="compensating",
        reservation="releasing",
        payment=payment,
        attempt=saga.attempt + 1,
    )
    compensating = replace(compensating, deadline=_retry_at(compensating, now, config))
    return compensating, _pending(compensating)


def _settle(saga: Saga, now: datetime, config: SagaConfig) -> Decision:
    """After a reply (or a late cancel): start what follows from it, or end the saga when
    nothing is left."""
    sends: list[Send] = []
    if saga.status == "cancelled" and saga.payment == "captured":
        saga = replace(saga, payment="refunding", attempt=saga.attempt + 1)
        sends.append(_refund(saga))
    if saga.restock and saga.reservation == "committed":
        saga = replace(saga, reservation="returning")
        sends.append(_return(saga))
    if sends:
        return replace(saga, step="completing", deadline=_retry_at(saga, now, config)), tuple(sends)
    if saga.payment == "voided" and _live_authorization(saga):
        step: Step = "compensating" if saga.step == "done" else saga.step
        voiding = replace(saga, payment="voiding", step=step, attempt=saga.attempt + 1)
        voiding = replace(voiding, deadline=_next_look(voiding, now, config))
        return voiding, (_void(voiding),)
    if saga.reservation in ("committing", "releasing", "returning") or saga.payment in (
        "capturing",
        "voiding",
        "refunding",
        "authorizing",
    ):
        return saga, ()
    if saga.step == "awaiting_payment":  # the failed attempt is voided: wait for a payment
        return replace(saga, deadline=saga.pay_by), ()
    return replace(saga, step="done", deadline=None), ()


def _pending(saga: Saga) -> tuple[Send, ...]:
    """Every command the saga is waiting on an answer to, for this attempt."""
    sends: list[Send] = []
    if saga.reservation == "committing":
        sends.append(Send(COMMIT_STOCK, CommitStock(order_id=saga.order_id)))
    if saga.reservation == "releasing":
        sends.append(Send(RELEASE_STOCK, ReleaseStock(order_id=saga.order_id, reason=_why(saga))))
    if saga.reservation == "returning":
        sends.append(_return(saga))
    if saga.payment == "capturing":
        sends.append(_capture(saga))
    if saga.payment == "voiding":
        sends.append(_void(saga))
    if saga.payment == "refunding":
        sends.append(_refund(saga))
    return tuple(sends)


def _live_authorization(saga: Saga) -> bool:
    return saga.authorized_at is not None and (saga.voided_at is None or saga.voided_at < saga.authorized_at)


def _retry_at(saga: Saga, now: datetime, config: SagaConfig) -> datetime:
    return now + config.retry_after * min(max(saga.attempt - 1, 1), 10)


def _next_look(saga: Saga, now: datetime, config: SagaConfig) -> datetime:
    """When to resend what is unanswered: at the retry time, but while the order awaits
    payment no later than the window's end (which then cancels it)."""
    retry = _retry_at(saga, now, config)
    return min(retry, saga.pay_by) if saga.step == "awaiting_payment" and saga.pay_by is not None else retry


def _why(saga: Saga) -> str:
    return f"order {saga.cancel_reason}" if saga.cancel_reason else "order cancelled"


def _key(saga: Saga, step: PaymentStep) -> str:
    # One key per order and step: every attempt is the same operation to the provider;
    # but paying again is another authorization, keyed by its attempt (the first keeps
    # the key it always had).
    if step == "authorize" and saga.attempt > 1:
        return f"{saga.order_id}:authorize:{saga.attempt}"
    return f"{saga.order_id}:{step}"


def _reserve(saga: Saga, config: SagaConfig) -> Send:
    return Send(
        RESERVE_STOCK,
        ReserveStock(order_id=saga.order_id, lines=saga.lines, ttl_seconds=config.reservation_ttl),
    )


def _return(saga: Saga) -> Send:
    return Send(RETURN_STOCK, ReturnStock(order_id=saga.order_id, reason=_why(saga)))


def _authorize(saga: Saga) -> Send:
    return Send(
        AUTHORIZE_PAYMENT,
        AuthorizePayment(
            order_id=saga.order_id,
            attempt=saga.attempt,
            idempotency_key=_key(saga, "authorize"),
            amount_minor=saga.amount_minor,
            currency=saga.currency,
            payment_token=saga.payment_token,
        ),
    )


def _capture(saga: Saga) -> Send:
    payload = CapturePayment(order_id=saga.order_id, attempt=saga.attempt, idempotency_key=_key(saga, "capture"))
    return Send(CAPTURE_PAYMENT, payload)


def _void(saga: Saga) -> Send:
    payload = VoidPayment(order_id=saga.order_id, attempt=saga.attempt, idempotency_key=_key(saga, "void"))
    return Send(VOID_PAYMENT, payload)


def _refund(saga: Saga) -> Send:
    payload = RefundPayment(order_id=saga.order_id, attempt=saga.attempt, idempotency_key=_key(saga, "refund"))
    return Send(REFUND_PAYMENT, payload)
