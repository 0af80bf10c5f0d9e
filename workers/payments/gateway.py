"""The payment gateway: what the payments worker needs of a payment service provider.

`PaymentGateway` is the interface the handlers use; `StripeGateway` speaks Stripe's
PaymentIntents API through the official `stripe` library (its async methods, over its
aiohttp client: one pooled session, keep-alive), at AGORA_PAYMENT_API_URL: Stripe itself
(`https://api.stripe.com`) or the sandbox that speaks the same protocol
(sandboxes/payment_sandbox.py). Every write carries an idempotency key, so a retried call
never charges twice. An authorization is a PaymentIntent created and confirmed at once
with `capture_method=manual` and the test token as `payment_method_data[card][token]`;
a void cancels it, a refund is a Refund of the intent for an amount.

Failures come in three kinds, because the handlers treat them differently:
- a decline is an answer (`ProviderAuthorization.status == "declined"`: Stripe's 402
  `card_error`, whose body carries the intent), not an error;
- `ProviderRefused`: the provider answered definitely no (Stripe's 400/404
  `invalid_request_error`, such as a capture of a canceled intent or an unknown id, an
  `idempotency_error`, a 402 outside an authorization): retrying cannot change it;
- `ProviderUnavailable`: no answer (connection refused, timeout, 5xx, 429, a 409 "same key
  still in progress") after a few quick retries, or a key the provider does not accept
  (401/403: an operator's mistake that retrying after the fix repairs): the outcome is
  unknown. It is a `ConnectionError`, so the runtime retries the command (workers/runtime/failures.py).
A timeout is not retried here: the provider may still be working on the first request,
and the saga's deadline, not this client, decides how long an order waits. The library's
own retries are off (`max_network_retries=0`) so that rule holds, and so is its telemetry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast
from uuid import UUID

import aiohttp
import stripe

log = logging.getLogger("agora.payments.gateway")
# stripe-python logs every request and answer at INFO: two log lines per provider call,
# a third of the client's CPU per call when measured. Its warnings still come through.
logging.getLogger("stripe").setLevel(logging.WARNING)

# Quick retries of a call that failed without an answer (not of a timeout).
ATTEMPTS = 3
BACKOFF_SECONDS = (0.2, 0.5)
# Stripe's PaymentIntent statuses in the gateway's words.
_STATUSES = {
    "requires_capture": "authorized",
    "succeeded": "captured",
    "canceled": "voided",
    "requires_payment_method": "declined",
}
T = TypeVar("T")


class ProviderUnavailable(ConnectionError):
    """No definite answer from the provider: the call may or may not have taken effect."""


class ProviderRefused(Exception):
    """The provider said no to a capture, void or refund (or to the request itself)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        # A card decline at authorization (Stripe's 402): the declined intent, an answer.
        self.declined: ProviderAuthorization | None = None


@dataclass(frozen=True)
class ProviderAuthorization:
    """An authorization (a PaymentIntent) as the provider reports it."""

    id: str
    status: str  # authorized, declined, captured, voided, pending (anything else: 3-D Secure, processing)
    amount: int
    currency: str
    amount_captured: int = 0

    @classmethod
    def from_intent(cls, intent: stripe.PaymentIntent) -> ProviderAuthorization:
        return cls(
            id=intent.id,
            status=_STATUSES.get(intent.status, "pending"),
            amount=intent.amount,
            currency=intent.currency.upper(),
            amount_captured=intent.amount_received,
        )


@dataclass(frozen=True)
class ProviderRefund:
    """A refund as the provider reports it."""

    id: str
    amount: int


class PaymentGateway(Protocol):
    async def authorize(
        self, *, order_id: UUID, amount_minor: int, currency: str, token: str, idempotency_key: str
    ) -> ProviderAuthorization: ...

    async def capture(self, authorization_id: str, *, idempotency_key: str) -> ProviderAuthorization: ...

    async def void(self, authorization_id: str, *, idempotency_key: str) -> ProviderAuthorization: ...

    async def refund(self, authorization_id: str, *, amount_minor: int, idempotency_key: str) -> ProviderRefund:
        """Refund `amount_minor` of what was captured (one of several refunds, each its own key)."""
        ...

    async def authorizations_for(self, order_id: UUID) -> list[ProviderAuthorization]:
        """Every authorization the provider holds for an order (found by its metadata),
        including one whose answer never reached us."""
        ...

    async def token_known(self, token: str) -> bool:
        """Whether the provider knows a payment token (`ProviderUnavailable`: it did not say)."""
        ...

    async def close(self) -> None: ...


class StripeGateway:
    """Stripe's PaymentIntents API through `stripe.StripeClient`, with a timeout on every call."""

    def __init__(self, api_url: str, secret_key: str, *, timeout: float) -> None:
        stripe.enable_telemetry = False  # no usage reports to the provider, no file in the home directory
        self._http = stripe.AIOHTTPClient(timeout=aiohttp.ClientTimeout(total=timeout, connect=2.0))
        self._stripe = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_url.rstrip("/")},
            http_client=self._http,
            max_network_retries=0,
        )

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]  # untyped in stripe 16

    async def authorize(
        self, *, order_id: UUID, amount_minor: int, currency: str, token: str, idempotency_key: str
    ) -> ProviderAuthorization:
        # The typed parameters leave out `payment_method_data[card][token]`, which Stripe
        # accepts for a card token (its "tokens with PaymentIntents" migration path).
        params: dict[str, Any] = {
            "amount": amount_minor,
            "currency": currency.lower(),
            "confirm": True,
            "capture_method": "manual",
            "payment_method_types": ["card"],
            "payment_method_data": {"type": "card", "card": {"token": token}},
            "metadata": {"order_id": str(order_id)},
        }
        intents = self._stripe.v1.payment_intents
        try:
            intent = await self._call(
                "authorize",
                lambda: intents.create_async(cast(Any, params), {"idempotency_key": idempotency_key}),
            )
        except ProviderRefused as refused:
            if refused.declined is None:
                raise
            return refused.declined
        return ProviderAuthorization.from_intent(intent)

    async def capture(self, authorization_id: str, *, idempotency_key: str) -> ProviderAuthorization:
        intents = self._stripe.v1.payment_intents
        intent = await self._call(
            "capture", lambda: intents.capture_async(authorization_id, options={"idempotency_key": idempotency_key})
        )
        return ProviderAuthorization.from_intent(intent)

    async def void(self, authorization_id: str, *, idempotency_key: str) -> ProviderAuthorization:
        intents = self._stripe.v1.payment_intents
        intent = await self._call(
            "void", lambda: intents.cancel_async(authorization_id, options={"idempotency_key": idempotency_key})
        )
        return ProviderAuthorization.from_intent(intent)

    async def refund(self, authorization_id: str, *, amount_minor: int, idempotency_key: str) -> ProviderRefund:
        refunds = self._stripe.v1.refunds
        made = await self._call(
            "refund",
            lambda: refunds.create_async(
                {"payment_intent": authorization_id, "amount": amount_minor}, {"idempotency_key": idempotency_key}
            ),
        )
        return ProviderRefund(id=made.id, amount=made.amount)

    async def authorizations_for(self, order_id: UUID) -> list[ProviderAuthorization]:
        intents = self._stripe.v1.payment_intents
        query = f"metadata['order_id']:'{order_id}'"
        found = await self._call("search", lambda: intents.search_async({"query": query, "limit": 100}))
        return [ProviderAuthorization.from_intent(intent) for intent in found.data]

    async def token_known(self, token: str) -> bool:
        tokens = self._stripe.v1.tokens
        try:
            await self._call("token", lambda: tokens.retrieve_async(token))
        except ProviderRefused as refused:
            if refused.code == "resource_missing":
                return False
            raise
        return True

    async def _call(self, what: str, request: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(ATTEMPTS):
            last = attempt == ATTEMPTS - 1
            try:
                return await request()
            except stripe.APIConnectionError as exc:
                if isinstance(exc.__cause__, TimeoutError):  # aiohttp's timeouts are TimeoutErrors
                    raise ProviderUnavailable(f"the provider did not answer {what} in time") from exc
                if last:
                    raise ProviderUnavailable(f"the provider is unreachable: {exc.__cause__!r}") from exc
                log.warning("provider unreachable; retrying", extra={"call": what, "attempt": attempt + 1})
            except (stripe.APIError, stripe.RateLimitError) as exc:
                # 5xx, 429, and 409: the same key still in progress, or a lock at the provider.
                if last:
                    raise ProviderUnavailable(f"the provider answered {exc.http_status} to {what}") from exc
                log.warning("provider answered %s; retrying", exc.http_status, extra={"call": what})
            except (stripe.AuthenticationError, stripe.PermissionError) as exc:
                log.error("the provider refused Agora's API key: check AGORA_STRIPE_SECRET_KEY", extra={"call": what})
                raise ProviderUnavailable(f"the provider refused the API key ({exc.http_status})") from exc
            except stripe.StripeError as exc:  # 400, 402, 404: a definite no
                raise _refused(exc) from exc
            await asyncio.sleep(BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)])
        raise AssertionError("unreachable")


class BadSignature(Exception):
    """A webhook whose signature does not verify with the endpoint's secret (or is no event)."""


@dataclass(frozen=True)
class ProviderEvent:
    """A webhook event, verified: what it says about which payment intent of which order."""

    id: str
    type: str
    created: datetime
    object_id: str | None
    order_id: UUID | None
    intent_id: str | None  # the payment intent it is about (a charge's or refund's too)
    intent_status: str | None  # Stripe's status of that intent, where the event tells it
    amount_refunded: int | None  # a charge's total refunded, on charge events


def verify_event(payload: str, signature: str, secret: str) -> ProviderEvent:
    """Check a webhook's `Stripe-Signature` (HMAC-SHA256 with the endpoint's secret, within
    Stripe's five-minute tolerance) with the library's own check, and read the event."""
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except stripe.SignatureVerificationError as exc:
        raise BadSignature(f"the signature does not verify: {exc.user_message or exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise BadSignature("the payload is not a provider event") from exc
    # Read as plain JSON: the library's objects are not dicts (its `to_dict` makes one).
    data = event.to_dict().get("data")
    found = data.get("object") if isinstance(data, dict) else None
    obj: dict[str, Any] = found if isinstance(found, dict) else {}
    kind = obj.get("object")
    intent_id = obj.get("id") if kind == "payment_intent" else obj.get("payment_intent")
    status: str | None = None
    if kind == "payment_intent":
        status = obj.get("status")
    elif kind == "charge" and obj.get("captured"):
        status = "succeeded"  # a captured charge is a succeeded intent
    metadata = obj.get("metadata") or {}
    try:
        order_id = UUID(str(metadata["order_id"])) if "order_id" in metadata else None
    except ValueError:
        order_id = None  # not one of Agora's payments
    refunded = obj.get("amount_refunded") if kind == "charge" else None
    return ProviderEvent(
        id=event.id,
        type=event.type,
        created=datetime.fromtimestamp(event.created, UTC),
        object_id=obj.get("id"),
        order_id=order_id,
        intent_id=str(intent_id) if intent_id else None,
        intent_status=str(status) if status else None,
        amount_refunded=int(refunded) if isinstance(refunded, int) else None,
    )


def _refused(exc: stripe.StripeError) -> ProviderRefused:
    """Stripe's error as a refusal; a card decline keeps the intent it left behind."""
    error = exc.json_body.get("error") if isinstance(exc.json_body, dict) else None
    error = error if isinstance(error, dict) else {}
    refused = ProviderRefused(str(error.get("code") or exc.code or "provider_error"), str(error.get("message") or exc))
    intent = error.get("payment_intent")
    if isinstance(exc, stripe.CardError) and isinstance(intent, dict) and "id" in intent:
        refused.declined = ProviderAuthorization(
            id=str(intent["id"]),
            status="declined",
            amount=int(intent.get("amount", 0)),
            currency=str(intent.get("currency", "")).upper(),
        )
    return refused
