"""The payments domain: one payment per order and what each saga step may do to it. No I/O.

A step either needs the provider (the plan is `None`: call the gateway, then apply its
answer) or is answered from the payment as it stands (an `Outcome`): a repeated step
gets the outcome it got the first time, and a step the payment's state rules out gets
`failed` without bothering the provider.

Statuses: `unknown` (an authorization was asked for and no answer came: it may exist at
the provider), `authorized`, `declined`, `captured`, `voided`, `refunded`. A void that
finds no payment leaves a `voided` one behind (amount 0, currency XXX), so an
authorization that arrives later is never made.

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
class Payment:
    order_id: UUID
    status: PaymentStatus
    amount_minor: int
    currency: str
    authorization_id: str | None
    created_at: datetime
    updated_at: datetime

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

    def refund_plan(self) -> Outcome | None:
        if self.status == "captured":
            return None
        if self.status == "refunded":
            return Outcome("refunded")
        return Outcome("failed", f"cannot refund a payment that is {self.status}: nothing was captured")

    def refunded(self, now: datetime) -> tuple[Payment, Outcome]:
        return self._to("refunded", now), Outcome("refunded")


def no_payment(step: Step) -> Outcome:
    """Capture or refund of an order that has no payment."""
    return Outcome("failed", f"cannot {step}: the order has no payment")
