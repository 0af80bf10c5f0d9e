"""Payments service contracts: the saga's payment steps, and what the payments worker reports.

Every command carries an idempotency key the orders saga derives from the order
(`<order_id>:authorize`, `<order_id>:capture`, ...): the payments worker passes it to the
provider, so a retried or duplicated step never charges twice, and a timed-out
authorization can still be voided by the order it belongs to. Commands are sent by the
saga through its outbox (service identity) and answered by events, never by replies.
Paying an order again is another authorization, keyed by its attempt
(`<order_id>:authorize:<attempt>`). One query is answered over RPC: whether the provider
knows a payment token, which the edge asks before an order is placed or paid again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StringConstraints

from contracts.base import Contract
from contracts.topology import CommandSpec, EventSpec

IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# A PSP token (`tok_visa`), never card data.
PaymentToken = Annotated[str, StringConstraints(pattern=r"^tok_[A-Za-z0-9_]{1,60}$")]


class AuthorizePayment(Contract):
    order_id: UUID
    attempt: int = Field(ge=1, description="The saga's attempt; events echo it so stale ones are ignored")
    amount_minor: int = Field(gt=0)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    payment_token: PaymentToken
    idempotency_key: IdempotencyKey


class CapturePayment(Contract):
    order_id: UUID
    attempt: int = Field(ge=1)
    idempotency_key: IdempotencyKey


class VoidPayment(Contract):
    order_id: UUID
    attempt: int = Field(ge=1)
    idempotency_key: IdempotencyKey


class RefundPayment(Contract):
    order_id: UUID
    attempt: int = Field(ge=1)
    idempotency_key: IdempotencyKey


class CheckPaymentToken(Contract):
    payment_token: PaymentToken


class PaymentTokenCheck(Contract):
    payment_token: str
    known: bool | None = Field(
        description="Whether the payment provider knows the token; null: it could not be asked (no answer), and "
        "the authorization will tell"
    )


PaymentOutcome = Literal["authorized", "declined", "failed", "captured", "voided", "refunded"]


class PaymentResult(Contract):
    """What became of one payment step of one order (the body of every payments event)."""

    order_id: UUID
    attempt: int
    step: Literal["authorize", "capture", "void", "refund"]
    outcome: PaymentOutcome
    amount_minor: int
    currency: str
    provider_reference: str | None = None
    reason: str | None = Field(default=None, description="Why a step did not succeed, in words")
    at: datetime


def _command(name: str, payload: type[Contract], summary: str) -> CommandSpec:
    return CommandSpec("payments", name, 1, payload, None, requires_actor=True, summary=summary)


AUTHORIZE_PAYMENT = _command("authorize_payment", AuthorizePayment, "Authorize an order's payment (saga step).")
CAPTURE_PAYMENT = _command("capture_payment", CapturePayment, "Capture an authorized payment (saga step).")
VOID_PAYMENT = _command("void_payment", VoidPayment, "Void an authorization (saga compensation).")
REFUND_PAYMENT = _command("refund_payment", RefundPayment, "Refund a captured payment (cancel after capture).")

CHECK_PAYMENT_TOKEN = CommandSpec(
    "payments",
    "check_payment_token",
    1,
    CheckPaymentToken,
    PaymentTokenCheck,
    kind="query",
    summary="Whether the payment provider knows a token: the edge asks before it places an order or pays one "
    "again, so an unknown token is refused before anything is reserved.",
)

PAYMENT_AUTHORIZED = EventSpec("payments", "payment_authorized", 1, PaymentResult, summary="The provider authorized.")
PAYMENT_FAILED = EventSpec(
    "payments", "payment_failed", 1, PaymentResult, summary="A payment step failed (declined, provider error, timeout)."
)
PAYMENT_CAPTURED = EventSpec("payments", "payment_captured", 1, PaymentResult, summary="The money was captured.")
PAYMENT_VOIDED = EventSpec("payments", "payment_voided", 1, PaymentResult, summary="An authorization was voided.")
PAYMENT_REFUNDED = EventSpec("payments", "payment_refunded", 1, PaymentResult, summary="A capture was refunded.")

COMMANDS = (AUTHORIZE_PAYMENT, CAPTURE_PAYMENT, VOID_PAYMENT, REFUND_PAYMENT, CHECK_PAYMENT_TOKEN)
EVENTS = (PAYMENT_AUTHORIZED, PAYMENT_FAILED, PAYMENT_CAPTURED, PAYMENT_VOIDED, PAYMENT_REFUNDED)
