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
from typing import Annotated, Any, Literal
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
    """Refund some or all of what was captured. Several refunds per payment, each with an
    idempotency key of its own (`<order_id>:refund` for the saga's cancel after capture,
    `<order_id>:refund:<refund_id>` for a return): the same key twice is one refund."""

    order_id: UUID
    attempt: int = Field(ge=1)
    idempotency_key: IdempotencyKey
    amount_minor: int | None = Field(
        default=None, gt=0, description="How much to refund; null: everything still captured (a cancel after capture)"
    )
    reference: str | None = Field(
        default=None, min_length=1, max_length=200, description="What the refund is for (`return:<uuid>`); echoed back"
    )


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
    """What became of one payment step of one order (the body of every payments event).
    For a refund, `amount_minor` is the amount of this refund (0 if it failed)."""

    order_id: UUID
    attempt: int
    step: Literal["authorize", "capture", "void", "refund"]
    outcome: PaymentOutcome
    amount_minor: int
    currency: str
    provider_reference: str | None = None
    reason: str | None = Field(default=None, description="Why a step did not succeed, in words")
    at: datetime
    amount_refunded_minor: int = Field(default=0, description="The payment's total refunded so far")
    reference: str | None = Field(default=None, description="A refund's `reference`, echoed back")


class ProviderWebhookEvent(Contract):
    """What a payment provider POSTs to Agora's webhook endpoint: a Stripe event object (for
    the document; the edge forwards the body as it came, unparsed, for its signature)."""

    id: str = Field(description="The event's id (`evt_…`): each is applied once")
    object: Literal["event"] = Field(description="Always `event`")
    type: str = Field(description="What happened: `payment_intent.succeeded`, `charge.refunded`, …")
    created: int = Field(description="When, in Unix seconds")
    api_version: str | None = Field(default=None, description="The provider's API version the event is written in")
    livemode: bool = Field(default=False, description="False for test keys and the sandbox")
    data: dict[str, Any] = Field(description='`{"object": …}`: the payment intent, charge or refund as it is now')


class ReceiveProviderEvent(Contract):
    """A webhook event of the payment provider, as the edge received it: the raw body and
    its signature header, verified by the payments worker (which alone holds the secret)."""

    payload: str = Field(min_length=2, max_length=256 * 1024, description="The request body, byte for byte")
    signature: str = Field(min_length=1, max_length=2000, description="The `Stripe-Signature` header")


class ProviderEventReceipt(Contract):
    received: bool = Field(description="True: the event is recorded (now, or already)")
    event_id: str
    type: str
    duplicate: bool = Field(description="True: this event was received before, and was not applied again")


def _command(name: str, payload: type[Contract], summary: str) -> CommandSpec:
    return CommandSpec("payments", name, 1, payload, None, requires_actor=True, summary=summary)


AUTHORIZE_PAYMENT = _command("authorize_payment", AuthorizePayment, "Authorize an order's payment (saga step).")
CAPTURE_PAYMENT = _command("capture_payment", CapturePayment, "Capture an authorized payment (saga step).")
VOID_PAYMENT = _command("void_payment", VoidPayment, "Void an authorization (saga compensation).")
REFUND_PAYMENT = _command(
    "refund_payment", RefundPayment, "Refund all or part of a captured payment (cancel after capture, a return)."
)

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

RECEIVE_PROVIDER_EVENT = CommandSpec(
    "payments",
    "receive_provider_event",
    1,
    ReceiveProviderEvent,
    ProviderEventReceipt,
    summary="A payment provider's webhook event, from the edge: verified by its signature (a bad one is "
    "dead-lettered), recorded once by its id, and set beside the payment it is about.",
)

COMMANDS = (
    AUTHORIZE_PAYMENT,
    CAPTURE_PAYMENT,
    VOID_PAYMENT,
    REFUND_PAYMENT,
    CHECK_PAYMENT_TOKEN,
    RECEIVE_PROVIDER_EVENT,
)
EVENTS = (PAYMENT_AUTHORIZED, PAYMENT_FAILED, PAYMENT_CAPTURED, PAYMENT_VOIDED, PAYMENT_REFUNDED)
