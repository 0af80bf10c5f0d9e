"""The payments domain: one payment per order and what each saga step may do to it. No I/O.

A step either needs the provider (the plan is `None`: call the gateway, then apply its
answer) or is answered from the payment as it stands (an `Outcome`): a repeated step
gets the outcome it got the first time, and a step the payment's state rules out gets
`failed` without bothering the provider.

Statuses: `unknown` (an authorization was asked for and no answer came: it may exist at
the provider), `authorized`, `declined`, `captured`, `voided`, `refunded`. A captured
payment may be refunded in parts, each under its own idempotency key (`Refund`), up to
what was captured; it stays `captured`, with `amount_refunded_minor` growing, until all of
it is refunded. A void that finds no payment leaves a `voided` one behind (amount 0,
currency XXX), so an authorization that arrives later is never made.

Paying an order again is the exception, told apart by the saga's attempt: after a
decline or a void, an authorization of a later attempt than any authorization or void
this payment has seen is a new one (`paid_again`). The saga pays again only once the
failed attempt's void was answered, so nothing it left can still be live. A void older
than the latest authorization (a late copy) leaves that authorization alone (`void_plan`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal
from uuid import UUID

from contracts.payments import PaymentOutcome

PaymentStatus = Literal["unknown", "authorized", "declined", "captured", "voided", "refunded"]
Step = Literal["authorize", "capture", "void", "refund"]
# ISO 4217's "no currency": a void that found no payment knows no amount.
NO_CURRENCY = "XXX"


@dataclass(frozen=True)
class Outcome:
    outcome: PaymentOutcome
    reason: str | None = None


@dataclass(frozen=True)
class ProviderAnswer:
    """The part of the provider's answer the model needs (None where it gave none)."""

    authorization_id: str
    status: str


@dataclass(frozen=True)
class Refund:
    """One refund made, kept under the idempotency key it was asked with."""

    order_id: UUID
    idempotency_key: str
    amount_minor: int
    reference: str | None
    provider_refund_id: str | None
    at: datetime


@dataclass(frozen=True)
class RefundPlan:
    """A refund command decided: `outcome` None means refund `amount_minor` at the
    provider; else the answer, and the amount it reports."""

    amount_minor: int
    outcome: Outcome | None


@dataclass(frozen=True)
class Payment:
    order_id: UUID
    status: PaymentStatus
    amount_minor: int
    currency: str
    authorization_id: str | None
    created_at: datetime
    updated_at: datetime
    amount_refunded_minor: int = 0
    # The provider's own view, from its webhook events (`reconciled`).
    provider_status: str | None = None
    provider_status_at: datetime | None = None
    provider_disagreement: str | None = None

    @classmethod
    def requested(cls, order_id: UUID, amount_minor: int, currency: str, now: datetime) -> Payment:
        """A payment whose authorization is about to be asked for."""
        return cls(order_id, "unknown", amount_minor, currency, None, now, now)

    @classmethod
    def unseen(cls, order_id: UUID, now: datetime) -> Payment:
        """The payment of an order whose authorization this service never saw: a void
        looks for one at the provider all the same."""
        return cls(order_id, "unknown", 0, NO_CURRENCY, None, now, now)

    def _to(self, status: PaymentStatus, now: datetime, authorization_id: str | None = None) -> Payment:
        return replace(self, status=status, authorization_id=authorization_id or self.authorization_id, updated_at=now)

    # --- authorize ------------------------------------------------------------------

    @property
    def may_be_paid_again(self) -> bool:
        """Declined or voided: a later attempt may authorize anew (`paid_again`)."""
        return self.status in ("declined", "voided")

    def paid_again(self, attempt: int, latest: int, amount_minor: int, currency: str, now: datetime) -> Payment:
        """The payment for an authorization of `attempt`, `latest` being the latest attempt
        of an authorization or void it has seen: a new authorization to ask for if the
        attempt is later, else the payment as it stands (a late copy of an older one)."""
        if not self.may_be_paid_again or attempt <= latest:
            return self
        return replace(
            self, status="unknown", amount_minor=amount_minor, currency=currency, authorization_id=None, updated_at=now
        )

    def authorize_plan(self) -> Outcome | None:
        if self.status == "unknown":
            return None  # first try, or the last one had no answer: ask again, same key
        if self.status in ("authorized", "captured", "refunded"):
            return Outcome("authorized")
        if self.status == "declined":
            return Outcome("declined", "the card was declined")
        return Outcome("failed", "the payment was voided")

    def authorized(self, answer: ProviderAnswer | None, now: datetime, reason: str | None) -> tuple[Payment, Outcome]:
        """Apply the provider's answer to an authorization (None: no answer came)."""
        if answer is None:
            return self._to("unknown", now), Outcome("failed", reason or "the payment provider did not answer")
        if answer.status == "declined":
            return self._to("declined", now, answer.authorization_id), Outcome("declined", "the card was declined")
        if answer.status != "authorized":
            # Not authorized, not declined: a card that wants 3-D Secure, which a checkout
            # paying by token cannot give. No money is held; another card may pay.
            reason = f"the payment provider left the payment {answer.status}: pay with another card"
            return self._to("declined", now, answer.authorization_id), Outcome("declined", reason)
        return self._to("authorized", now, answer.authorization_id), Outcome("authorized")

    def refused(self, now: datetime, reason: str) -> tuple[Payment, Outcome]:
        """The provider refused the authorization request itself (an unknown token): a decline."""
        return self._to("declined", now), Outcome("declined", reason)

    # --- capture --------------------------------------------------------------------

    def capture_plan(self) -> Outcome | None:
        if self.status == "authorized":
            return None
        if self.status in ("captured", "refunded"):
            return Outcome("captured")
        return Outcome("failed", f"cannot capture a payment that is {self.status}")

    def captured(self, now: datetime) -> tuple[Payment, Outcome]:
        return self._to("captured", now), Outcome("captured")

    # --- void -----------------------------------------------------------------------

    def void_plan(self, attempt: int, latest_authorization: int) -> Outcome | None:
        if attempt < latest_authorization:
            # A late copy of a void older than the order's latest authorization (it was paid
            # again since): that authorization is not this void's to cancel.
            return Outcome("failed", "a later authorization of the order superseded this void")
        if self.status == "voided":
            return Outcome("voided")
        if self.status in ("captured", "refunded"):
            return Outcome("failed", f"cannot void a payment that is {self.status}: refund it")
        # unknown, authorized or declined: void whatever the provider holds for the order.
        return None

    def voided(self, now: datetime) -> tuple[Payment, Outcome]:
        return self._to("voided", now), Outcome("voided")

    # --- refund ---------------------------------------------------------------------

    @property
    def refundable_minor(self) -> int:
        """What is still captured and may be refunded."""
        return self.amount_minor - self.amount_refunded_minor if self.status in ("captured", "refunded") else 0

    def refund_plan(self, requested: int | None, earlier: Refund | None) -> RefundPlan:
        """How much to refund for a command asking `requested` (None: all that is left),
        `earlier` being the refund already made under the command's key, if any."""
        if earlier is not None:  # the same key again: the same refund, never a second one
            if requested is not None and requested != earlier.amount_minor:
                reason = f"this idempotency key was used for a refund of {earlier.amount_minor}, not {requested}"
                return RefundPlan(0, Outcome("failed", reason))
            return RefundPlan(earlier.amount_minor, Outcome("refunded"))
        if self.status not in ("captured", "refunded"):
            reason = f"cannot refund a payment that is {self.status}: nothing was captured"
            return RefundPlan(0, Outcome("failed", reason))
        left = self.refundable_minor
        if requested is None:
            # Everything still captured: a cancel after capture. Nothing left: it all was.
            return RefundPlan(left, None if left > 0 else Outcome("refunded"))
        if requested > left:
            reason = f"cannot refund {requested}: {left} of the {self.amount_minor} captured is left to refund"
            return RefundPlan(0, Outcome("failed", reason))
        return RefundPlan(requested, None)

    def refunded(self, amount_minor: int, now: datetime) -> tuple[Payment, Outcome]:
        """The provider refunded `amount_minor`: the payment is `refunded` once all of it is."""
        total = self.amount_refunded_minor + amount_minor
        status: PaymentStatus = "refunded" if total >= self.amount_minor else "captured"
        return replace(self._to(status, now), amount_refunded_minor=total), Outcome("refunded")

    # --- the provider's view (webhook events) ------------------------------------------

    def reconciled(self, view: ProviderView) -> Payment | None:
        """The payment with the provider's view of an intent of its order beside ours, and
        a disagreement (in words) if the two cannot both be true; None: nothing to change
        (an event older than the view already kept).

        Events come late and out of order, so being behind is no disagreement: an intent
        still `requires_capture` for a payment already captured, voided or refunded is an
        older event. An intent the payment does not point at (a timed-out authorization,
        an older attempt's) matters only while it holds money: then it is a disagreement,
        until an event says it was canceled."""
        if view.intent_id != self.authorization_id:
            if view.status == "requires_capture":
                who = "never got an answer for" if self.authorization_id is None else "does not point at"
                held = f"the provider holds an authorization ({view.intent_id}) this payment {who}"
                return replace(self, provider_disagreement=held)
            if view.status == "canceled" and view.intent_id in (self.provider_disagreement or ""):
                return replace(self, provider_disagreement=None)
            return None
        if self.provider_status_at is not None and (
            view.at < self.provider_status_at
            # Events carry whole seconds: within one, the later state in an intent's life wins.
            or (
                view.at == self.provider_status_at
                and _RANK.get(view.status, 0) < _RANK.get(self.provider_status or "", 0)
            )
        ):
            return None
        agrees = self.status in _AGREEING.get(view.status, ())
        disagreement: str | None = None if agrees else f"the provider says {view.status}, Agora says {self.status}"
        if agrees and view.amount_refunded is not None and view.amount_refunded > self.amount_refunded_minor:
            disagreement = (
                f"the provider refunded {view.amount_refunded}, Agora knows of {self.amount_refunded_minor}: "
                "a refund made outside Agora?"
            )
        return replace(
            self, provider_status=view.status, provider_status_at=view.at, provider_disagreement=disagreement
        )


@dataclass(frozen=True)
class ProviderView:
    """What a provider's event says about one payment intent of an order."""

    intent_id: str
    status: str  # Stripe's: requires_capture, succeeded, canceled, requires_payment_method, ...
    at: datetime
    amount_refunded: int | None = None  # a charge's, when the event is about its refunds


# Where each of an intent's statuses stands in its life: of two events made in the same
# second, the one further on is the newer.
_RANK = {
    "requires_payment_method": 1,
    "requires_confirmation": 2,
    "requires_action": 3,
    "processing": 4,
    "requires_capture": 5,
    "succeeded": 6,
    "canceled": 6,
}

# The payment's statuses that agree with an intent's (or are ahead of it: a later step
# answered whose event has not come yet).
_AGREEING: dict[str, frozenset[str]] = {
    "requires_capture": frozenset({"authorized", "captured", "refunded", "voided"}),
    "succeeded": frozenset({"captured", "refunded"}),
    "canceled": frozenset({"voided", "declined"}),
    "requires_payment_method": frozenset({"declined", "voided"}),
    "requires_action": frozenset({"declined", "voided"}),
    "requires_confirmation": frozenset({"unknown", "declined", "voided"}),
    "processing": frozenset({"unknown", "declined", "voided"}),
}


def no_payment(step: Step) -> Outcome:
    """Capture or refund of an order that has no payment."""
    return Outcome("failed", f"cannot {step}: the order has no payment")
