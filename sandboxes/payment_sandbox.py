"""Sandbox payment provider: Stripe's PaymentIntents API, local, for development and tests.

Run with ``python -m sandboxes.payment_sandbox``. It plays Stripe for the payments worker
(workers/payments/gateway.py), which talks to it with the official ``stripe`` client
pointed at AGORA_PAYMENT_API_URL, as the SMS sandbox plays Twilio. It never sees a card
number, only Stripe's own test tokens:

    tok_visa, tok_mastercard   approve
    tok_chargeDeclined         decline: 402 card_error `card_declined`, the payment intent
                               left in `requires_payment_method` with its last_payment_error
    tok_timeout                authorize at once, but answer only after
                               AGORA_SANDBOX_TIMEOUT_DELAY_SECONDS (default 30 s)
    tok_flaky                  answer 503 twice per idempotency key, then approve

Stripe's API as stripe-python calls it (form-encoded bodies, `Authorization: Bearer
<secret key>`: a missing or wrong key is 401; Stripe's JSON objects and error bodies):
    POST /v1/payment_intents                 amount, currency, confirm, capture_method,
                                             payment_method_data[type]=card,
                                             payment_method_data[card][token], metadata[...]
    POST /v1/payment_intents/{id}/confirm    (payment_method_data as above)
    POST /v1/payment_intents/{id}/capture    [amount_to_capture]; only `requires_capture`
    POST /v1/payment_intents/{id}/cancel     not once `succeeded` or `canceled`
    GET  /v1/payment_intents/{id}
    GET  /v1/payment_intents[?limit=]        newest first
    GET  /v1/payment_intents/search?query=metadata['order_id']:'…'
    POST /v1/refunds                         payment_intent, [amount] (default: all that is
                                             left), [reason], [metadata]; several, up to
                                             what was captured
    GET  /v1/refunds/{id}
    GET  /v1/tokens/{id}                     a test token (any other: 404 resource_missing)
    GET  /v1/events[?type=&limit=], /v1/events/{id}

Idempotency as Stripe has it: every POST takes an ``Idempotency-Key``; the same key with the
same parameters returns the stored response (header ``Idempotent-Replayed: true``), never a
second payment intent, capture or refund; with other parameters or on another endpoint it
is 400 `idempotency_error`; while the first request is still being answered, 409
`idempotency_key_in_use`. 5xx answers are not stored, so a retry after one does the work.

Webhooks as Stripe sends them: every change makes an event (`payment_intent.created`,
`payment_intent.amount_capturable_updated`, `payment_intent.payment_failed`,
`payment_intent.succeeded`, `payment_intent.canceled`, `charge.refunded`, `refund.created`),
listed at /v1/events; those the endpoint subscribes to (AGORA_PAYMENT_SANDBOX_WEBHOOK_EVENTS,
comma-separated; by default the five Agora reconciles, as docs/operations.md registers them
at Stripe) are POSTed to AGORA_PAYMENT_SANDBOX_WEBHOOK_URL (none: not sent) with
``Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of "t.payload" with
AGORA_STRIPE_WEBHOOK_SECRET>`` and retried a few times with backoff until it answers 2xx.

The sandbox's own API (JSON, no auth):
    GET    /v1/ledger                        totals, and every order's payment intents in
                                             Agora's words (authorized, declined, captured,
                                             voided, refunded)
    GET    /v1/ledger/orders/{order_id}
    GET    /v1/ledger/webhooks               each event and how its delivery went
    POST   /v1/ledger/webhooks {"paused": b}  stop or resume sending events (as an endpoint
                                             disabled in Stripe's dashboard; started paused
                                             with AGORA_PAYMENT_SANDBOX_WEBHOOKS=paused)
    DELETE /v1/ledger                        forget everything (a test's fresh start)
    GET    /healthz, /readyz

State (payment intents, refunds, stored responses) is kept in memory, and every change is
appended as one JSON line to ``$AGORA_RUN_DIR/payment_sandbox/journal.jsonl``, which is
replayed at start, so a restarted sandbox keeps its ledger (a change costs the same
whatever the ledger's size: issue 14's chaos runs make tens of thousands). Events are kept
in memory only (the last 10,000). A journal of the sandbox's earlier home-made protocol is
set aside (``journal.jsonl.pre-stripe``), not replayed. Configured by
AGORA_PAYMENT_SANDBOX_HOST (default AGORA_HOST, else 127.0.0.1), AGORA_PAYMENT_SANDBOX_PORT
(1090), AGORA_STRIPE_SECRET_KEY (the key it accepts), AGORA_STRIPE_WEBHOOK_SECRET,
AGORA_PAYMENT_SANDBOX_WEBHOOK_URL, AGORA_PAYMENT_SANDBOX_WEBHOOK_EVENTS, AGORA_PAYMENT_SANDBOX_WEBHOOKS,
AGORA_SANDBOX_TIMEOUT_DELAY_SECONDS and AGORA_RUN_DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import string
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

log = logging.getLogger("agora.payment_sandbox")

API_VERSION = "2026-10-28.endive"
APPROVE = frozenset({"tok_visa", "tok_mastercard", "tok_timeout", "tok_flaky"})
DECLINE = frozenset({"tok_chargeDeclined"})
# What each test token stands for (a provider describes its tokens; no card number here).
CARDS = {
    "tok_visa": ("Visa", "4242"),
    "tok_mastercard": ("MasterCard", "4444"),
    "tok_chargeDeclined": ("Visa", "0002"),
    "tok_timeout": ("Visa", "4242"),
    "tok_flaky": ("Visa", "4242"),
}
FLAKY_FAILURES = 2
STORE_NAME = "journal.jsonl"
KEPT_EVENTS = 10_000
# The events a webhook endpoint gets unless told otherwise: those Agora's payments worker
# reconciles (docs/operations.md registers the same at Stripe).
SUBSCRIBED = (
    "payment_intent.amount_capturable_updated",
    "payment_intent.payment_failed",
    "payment_intent.succeeded",
    "payment_intent.canceled",
    "charge.refunded",
)
WEBHOOK_ATTEMPTS = 6
WEBHOOK_TIMEOUT_SECONDS = 10.0
# Deliveries in flight at once: the API's own answers come first.
WEBHOOK_CONCURRENCY = 8
CANCELABLE = frozenset({"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"})
_ALPHANUM = string.ascii_letters + string.digits
_SEARCH = re.compile(r"^\s*metadata\[['\"]([A-Za-z0-9_]+)['\"]\]\s*:\s*['\"]([^'\"]*)['\"]\s*$")


def new_id(prefix: str) -> str:
    """An id shaped like Stripe's (`pi_3Nf…`): a digit, then a letter, then 22 of either, so
    no run of digits in it stands apart from a letter (Agora's card-number scan skips those)."""
    tail = "".join(secrets.choice(_ALPHANUM) for _ in range(22))
    return f"{prefix}_3{secrets.choice(string.ascii_letters)}{tail}"


def _now() -> int:
    return int(time.time())


@dataclass
class Intent:
    """A payment intent, with what the sandbox keeps beside it (the token, the counts)."""

    id: str
    amount: int
    currency: str  # lower case, as Stripe answers
    capture_method: str
    status: str
    metadata: dict[str, str]
    created: int
    token: str | None = None
    payment_method: str | None = None
    latest_charge: str | None = None
    amount_capturable: int = 0
    amount_received: int = 0
    amount_refunded: int = 0
    captures: int = 0
    refunds: int = 0
    last_payment_error: dict[str, Any] | None = None
    canceled_at: int | None = None
    cancellation_reason: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def order_id(self) -> str | None:
        return self.metadata.get("order_id")

    def move(self, status: str) -> None:
        self.status = status
        self.history.append({"status": status, "at": _now()})

    def agora_status(self) -> str:
        """The intent in the words of Agora's ledger and of its tests."""
        if self.status == "requires_capture":
            return "authorized"
        if self.status == "canceled":
            return "voided"
        if self.status == "succeeded":
            return "refunded" if self.amount_received and self.amount_refunded >= self.amount_received else "captured"
        if self.status == "requires_payment_method" and self.last_payment_error is not None:
            return "declined"
        return "pending"

    def body(self) -> dict[str, Any]:
        """The PaymentIntent object as Stripe's API answers it."""
        return {
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": self.amount_capturable,
            "amount_received": self.amount_received,
            "capture_method": self.capture_method,
            "confirmation_method": "automatic",
            "client_secret": f"{self.id}_secret_sandbox",
            "created": self.created,
            "currency": self.currency,
            "canceled_at": self.canceled_at,
            "cancellation_reason": self.cancellation_reason,
            "description": None,
            "last_payment_error": self.last_payment_error,
            "latest_charge": self.latest_charge,
            "livemode": False,
            "metadata": dict(self.metadata),
            "payment_method": self.payment_method,
            "payment_method_types": ["card"],
            "status": self.status,
        }

    def charge(self) -> dict[str, Any]:
        """The intent's charge (`charge.refunded` carries it)."""
        return {
            "id": self.latest_charge,
            "object": "charge",
            "amount": self.amount,
            "amount_captured": self.amount_received,
            "amount_refunded": self.amount_refunded,
            "captured": self.amount_received > 0,
            "created": self.created,
            "currency": self.currency,
            "livemode": False,
            "metadata": dict(self.metadata),
            "paid": True,
            "payment_intent": self.id,
            "refunded": bool(self.amount_received) and self.amount_refunded >= self.amount_received,
            "status": "succeeded",
        }

    def summary(self) -> dict[str, Any]:
        """The intent in the ledger (Agora's words; `stripe_status` is Stripe's)."""
        return {
            "id": self.id,
            "order_id": self.order_id,
            "token": self.token,
            "status": self.agora_status(),
            "stripe_status": self.status,
            "amount": self.amount,
            "currency": self.currency.upper(),
            "amount_captured": self.amount_received,
            "amount_refunded": self.amount_refunded,
            "captures": self.captures,
            "refunds": self.refunds,
            "created": self.created,
            "history": list(self.history),
        }


@dataclass
class Refund:
    id: str
    amount: int
    currency: str
    payment_intent: str
    charge: str | None
    created: int
    reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "refund",
            "amount": self.amount,
            "balance_transaction": None,
            "charge": self.charge,
            "created": self.created,
            "currency": self.currency,
            "metadata": dict(self.metadata),
            "payment_intent": self.payment_intent,
            "reason": self.reason,
            "status": "succeeded",
        }


class StripeError(Exception):
    """An error answered the way Stripe answers it."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.code = code
        self.param = param
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": str(self)}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": {**error, **self.extra}}


def _invalid(message: str, *, code: str | None = None, param: str | None = None, status: int = 400) -> StripeError:
    return StripeError(status, "invalid_request_error", message, code=code, param=param)


class Ledger:
    """Payment intents, refunds and stored idempotent responses, persisted as a journal:
    one JSON line per change, replayed at start (the last line about a thing wins). A
    change costs one line whatever the ledger's size, and an order's intents are indexed."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.intents: dict[str, Intent] = {}
        self.refunds: dict[str, Refund] = {}
        self._by_order: dict[str, list[Intent]] = {}
        # key → {"scope", "fingerprint", "status", "body"}
        self.responses: dict[str, dict[str, Any]] = {}
        self.in_progress: set[str] = set()
        self.failures: dict[str, int] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=KEPT_EVENTS)
        self.deliveries: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            lines = path.read_text().splitlines()
            if lines and "authorization" in lines[0]:
                # The home-made protocol of before issue 19: not this API's objects.
                path.rename(path.with_name(path.name + ".pre-stripe"))
                log.warning("payment sandbox: a journal of the earlier protocol set aside, not replayed")
                return
            for number, line in enumerate(lines, 1):
                try:
                    self._apply(json.loads(line))
                except ValueError:
                    if number < len(lines):
                        raise
                    # A line cut short by a crash mid-write: that change was never answered.
                    log.warning("payment sandbox: an incomplete last journal line dropped")
                    path.write_text("".join(f"{kept}\n" for kept in lines[:-1]))

    def _apply(self, change: dict[str, Any]) -> None:
        if "intent" in change:
            self._put(Intent(**change["intent"]))
        elif "refund" in change:
            refund = Refund(**change["refund"])
            self.refunds[refund.id] = refund
        elif "response" in change:
            key, stored = change["response"]
            self.responses[key] = stored
        elif "failures" in change:
            key, count = change["failures"]
            self.failures[key] = count

    def _put(self, intent: Intent) -> None:
        known = self.intents.get(intent.id)
        self.intents[intent.id] = intent
        mine = self._by_order.setdefault(intent.order_id or "", [])
        mine[:] = [intent if i is known else i for i in mine] if known is not None else [*mine, intent]

    def _write(self, change: dict[str, Any]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as journal:
            journal.write(json.dumps(change) + "\n")

    def keep(self, intent: Intent) -> None:
        """A new payment intent, or one that moved."""
        self._put(intent)
        self._write({"intent": asdict(intent)})

    def keep_refund(self, refund: Refund) -> None:
        self.refunds[refund.id] = refund
        self._write({"refund": asdict(refund)})

    def keep_response(self, key: str, stored: dict[str, Any]) -> None:
        self.responses[key] = stored
        self._write({"response": [key, stored]})

    def keep_failures(self, key: str, count: int) -> None:
        self.failures[key] = count
        self._write({"failures": [key, count]})

    def reset(self) -> None:
        self.intents.clear()
        self.refunds.clear()
        self._by_order.clear()
        self.responses.clear()
        self.failures.clear()
        self.events.clear()
        self.deliveries.clear()
        if self.path is not None and self.path.exists():
            self.path.unlink()

    def for_order(self, order_id: str) -> list[Intent]:
        return list(self._by_order.get(order_id, ()))

    def summary(self) -> dict[str, Any]:
        intents = list(self.intents.values())
        captured = sum(i.amount_received for i in intents)
        refunded = sum(i.amount_refunded for i in intents)
        return {
            "totals": {
                "authorizations": len(intents),
                "live_authorizations": sum(i.status == "requires_capture" for i in intents),
                "captured": captured,
                "refunded": refunded,
                "net_captured": captured - refunded,
                "captures": sum(i.captures for i in intents),
                "refunds": sum(i.refunds for i in intents),
            },
            "orders": {order_id: order_summary(mine) for order_id, mine in self._by_order.items() if order_id},
        }


def order_summary(intents: list[Intent]) -> dict[str, Any]:
    """One order as the ledger sees it: what was captured and refunded, what is still live."""
    captured = sum(i.amount_received for i in intents)
    refunded = sum(i.amount_refunded for i in intents)
    return {
        "authorizations": [i.summary() for i in intents],
        "live_authorizations": sum(i.status == "requires_capture" for i in intents),
        "captures": sum(i.captures for i in intents),
        "captured": captured,
        "refunded": refunded,
        "refunds": sum(i.refunds for i in intents),
        "net_captured": captured - refunded,
    }


@dataclass(frozen=True)
class Config:
    secret_key: str
    webhook_url: str
    webhook_secret: str
    timeout_delay: float
    webhook_events: frozenset[str] = frozenset(SUBSCRIBED)


LEDGER_KEY = web.AppKey("ledger", Ledger)
CONFIG_KEY = web.AppKey("config", Config)

Work = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]


# --- webhooks ---------------------------------------------------------------------------


def signature_header(payload: str, secret: str, timestamp: int) -> str:
    """Stripe's `Stripe-Signature`: the time, and an HMAC-SHA256 of "time.payload"."""
    signed = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signed}"


class Webhooks:
    """Makes the events of every change and sends each, signed, to the endpoint (if any),
    retrying with backoff until it answers 2xx; deliveries run beside the API's answers."""

    def __init__(self, ledger: Ledger, config: Config) -> None:
        self._ledger = ledger
        self._config = config
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._lanes = asyncio.Semaphore(WEBHOOK_CONCURRENCY)
        self.paused = False

    def emit(self, type_: str, obj: dict[str, Any], request: web.Request) -> None:
        event: dict[str, Any] = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": _now(),
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": int(bool(self._config.webhook_url) and type_ in self._config.webhook_events),
            "request": {"id": new_id("req"), "idempotency_key": request.headers.get("Idempotency-Key")},
            "type": type_,
        }
        self._ledger.events.append(event)
        if self.paused or not self._config.webhook_url or type_ not in self._config.webhook_events:
            return
        self._ledger.deliveries[event["id"]] = {"type": type_, "attempts": 0, "status": None, "delivered": False}
        task = asyncio.get_running_loop().create_task(self._deliver(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, event: dict[str, Any]) -> None:
        payload = json.dumps(event)
        record = self._ledger.deliveries[event["id"]]
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS))
        for attempt in range(WEBHOOK_ATTEMPTS):
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": signature_header(payload, self._config.webhook_secret, _now()),
            }
            record["attempts"] = attempt + 1
            try:
                async with (
                    self._lanes,
                    self._session.post(self._config.webhook_url, data=payload, headers=headers) as response,
                ):
                    record["status"] = response.status
                    if 200 <= response.status < 300:
                        record["delivered"] = True
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                record["status"] = repr(exc)
            await asyncio.sleep(min(0.5 * 2**attempt, 10.0))
        log.warning("webhook %s (%s) not delivered after %s attempts", event["id"], event["type"], WEBHOOK_ATTEMPTS)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()


WEBHOOKS_KEY = web.AppKey("webhooks", Webhooks)


def _emit(request: web.Request, type_: str, obj: dict[str, Any]) -> None:
    request.app[WEBHOOKS_KEY].emit(type_, obj, request)


# --- requests ---------------------------------------------------------------------------


def _nested(pairs: Mapping[str, str]) -> dict[str, Any]:
    """Stripe's form encoding (`metadata[order_id]=…`, `payment_method_types[0]=card`) as a
    nested dict; list positions become keys."""
    nested: dict[str, Any] = {}
    for key, value in pairs.items():
        parts = re.findall(r"[^\[\]]+", key)
        if not parts:
            continue
        here = nested
        for part in parts[:-1]:
            child = here.setdefault(part, {})
            if not isinstance(child, dict):
                raise _invalid(f"Invalid value for {key}", param=key)
            here = child
        here[parts[-1]] = value
    return nested


async def _form(request: web.Request) -> tuple[dict[str, Any], str]:
    """The body's parameters, and a fingerprint of them (same parameters, same fingerprint)."""
    if not request.body_exists:
        return {}, hashlib.sha256(b"").hexdigest()
    form = await request.post()
    pairs = {key: str(value) for key, value in form.items()}
    fingerprint = hashlib.sha256(json.dumps(sorted(pairs.items())).encode()).hexdigest()
    return _nested(pairs), fingerprint


def _integer(params: dict[str, Any], name: str, *, required: bool) -> int | None:
    raw = params.get(name)
    if raw is None:
        if required:
            raise _invalid(f"Missing required param: {name}.", code="parameter_missing", param=name)
        return None
    try:
        value = int(str(raw))
    except ValueError:
        raise _invalid(f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name) from None
    if value < 1:
        raise _invalid("This value must be greater than or equal to 1.", code="parameter_invalid_integer", param=name)
    return value


def _flag(params: dict[str, Any], name: str) -> bool:
    return str(params.get(name, "false")).lower() == "true"


def _metadata(params: dict[str, Any]) -> dict[str, str]:
    metadata = params.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise _invalid("Invalid object", param="metadata")
    return {str(k): str(v) for k, v in metadata.items()}


async def _idempotent(request: web.Request, fingerprint: str, work: Work) -> web.Response:
    """Run `work` once per Idempotency-Key; a repeat gets the stored answer."""
    ledger = request.app[LEDGER_KEY]
    key = request.headers.get("Idempotency-Key", "")
    if not key:
        status, answer = await _guarded(work)
        return web.json_response(answer, status=status)
    scope = f"{request.method} {request.path}"
    stored = ledger.responses.get(key)
    if stored is not None:
        if stored["scope"] != scope or stored["fingerprint"] != fingerprint:
            raise StripeError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they were first used "
                f"with. Try using a key other than '{key}' if you meant to execute a different request.",
            )
        return web.json_response(stored["body"], status=stored["status"], headers={"Idempotent-Replayed": "true"})
    if key in ledger.in_progress:
        raise StripeError(
            409,
            "idempotency_error",
            "There is currently another in-progress request using this Idempotent Key (that probably means you "
            "submitted twice, and the other request is still going through). Please try again later.",
            code="idempotency_key_in_use",
        )
    ledger.in_progress.add(key)
    try:
        status, answer = await _guarded(work)
        if status < 500:
            ledger.keep_response(key, {"scope": scope, "fingerprint": fingerprint, "status": status, "body": answer})
    finally:
        ledger.in_progress.discard(key)
    return web.json_response(answer, status=status)


async def _guarded(work: Work) -> tuple[int, dict[str, Any]]:
    try:
        return await work()
    except StripeError as err:
        return err.status, err.body()


def _intent(request: web.Request) -> Intent:
    intent_id = request.match_info["id"]
    intent = request.app[LEDGER_KEY].intents.get(intent_id)
    if intent is None:
        raise _invalid(f"No such payment_intent: '{intent_id}'", code="resource_missing", param="intent", status=404)
    return intent


def _token(params: dict[str, Any]) -> str | None:
    data = params.get("payment_method_data")
    if data is None:
        return None
    card = data.get("card") if isinstance(data, dict) else None
    token = card.get("token") if isinstance(card, dict) else None
    if not isinstance(data, dict) or data.get("type") != "card" or not isinstance(token, str):
        raise _invalid(
            "payment_method_data must be of type card, with card[token]",
            code="parameter_invalid_empty",
            param="payment_method_data",
        )
    if token not in APPROVE | DECLINE:
        raise _invalid(f"No such token: '{token}'", code="resource_missing", param="payment_method_data[card][token]")
    return token


async def _confirm(request: web.Request, intent: Intent, token: str | None) -> tuple[int, dict[str, Any]]:
    """Confirm with the card token: authorized (manual capture), captured, or declined."""
    ledger = request.app[LEDGER_KEY]
    token = token or intent.token
    if token is None:
        raise _invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
            code="payment_intent_unexpected_state",
        )
    if intent.status not in ("requires_payment_method", "requires_confirmation"):
        raise _invalid(
            f"This PaymentIntent's status is {intent.status}: it cannot be confirmed.",
            code="payment_intent_unexpected_state",
        )
    intent.token = token
    intent.payment_method = new_id("pm")
    if token in DECLINE:
        intent.last_payment_error = {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": "Your card was declined.",
        }
        intent.move("requires_payment_method")
        ledger.keep(intent)
        _emit(request, "payment_intent.payment_failed", intent.body())
        log.info("payment intent %s: declined for order %s", intent.id, intent.order_id)
        raise StripeError(
            402,
            "card_error",
            "Your card was declined.",
            code="card_declined",
            extra={"decline_code": "generic_decline", "payment_intent": intent.body()},
        )
    intent.last_payment_error = None
    intent.latest_charge = new_id("ch")
    if intent.capture_method == "manual":
        intent.amount_capturable = intent.amount
        intent.move("requires_capture")
        ledger.keep(intent)
        _emit(request, "payment_intent.amount_capturable_updated", intent.body())
    else:
        intent.amount_received = intent.amount
        intent.captures += 1
        intent.move("succeeded")
        ledger.keep(intent)
        _emit(request, "payment_intent.succeeded", intent.body())
    log.info("payment intent %s: %s for order %s", intent.id, intent.status, intent.order_id)
    if token == "tok_timeout":
        # Authorized already (the ledger says so); only the answer is late.
        await asyncio.sleep(request.app[CONFIG_KEY].timeout_delay)
    return 200, intent.body()


def _flaky(request: web.Request, token: str | None) -> None:
    """tok_flaky: the first answers to a key are 503s, as a provider's bad minute."""
    ledger = request.app[LEDGER_KEY]
    key = request.headers.get("Idempotency-Key", "")
    if token == "tok_flaky" and key and key not in ledger.responses:
        failures = ledger.failures.get(key, 0)
        if failures < FLAKY_FAILURES:
            ledger.keep_failures(key, failures + 1)
            raise StripeError(503, "api_error", "tok_flaky: try again")


async def create_intent(request: web.Request) -> web.Response:
    params, fingerprint = await _form(request)
    amount = _integer(params, "amount", required=True)
    currency = params.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        raise _invalid("Missing required param: currency.", code="parameter_missing", param="currency")
    capture_method = str(params.get("capture_method", "automatic"))
    if capture_method not in ("automatic", "automatic_async", "manual"):
        raise _invalid(f"Invalid capture_method: {capture_method}", code="parameter_invalid", param="capture_method")
    metadata = _metadata(params)
    token = _token(params)
    confirm = _flag(params, "confirm")
    _flaky(request, token)

    async def work() -> tuple[int, dict[str, Any]]:
        assert amount is not None
        intent = Intent(
            id=new_id("pi"),
            amount=amount,
            currency=currency.lower(),
            capture_method="manual" if capture_method == "manual" else "automatic",
            status="requires_confirmation" if token else "requires_payment_method",
            metadata=metadata,
            created=_now(),
            token=token,
        )
        intent.history.append({"status": intent.status, "at": intent.created})
        request.app[LEDGER_KEY].keep(intent)
        _emit(request, "payment_intent.created", intent.body())
        if confirm:
            return await _confirm(request, intent, token)
        return 200, intent.body()

    return await _idempotent(request, fingerprint, work)


async def confirm_intent(request: web.Request) -> web.Response:
    params, fingerprint = await _form(request)
    token = _token(params)
    _flaky(request, token)

    async def work() -> tuple[int, dict[str, Any]]:
        return await _confirm(request, _intent(request), token)

    return await _idempotent(request, fingerprint, work)


async def capture_intent(request: web.Request) -> web.Response:
    params, fingerprint = await _form(request)
    to_capture = _integer(params, "amount_to_capture", required=False)

    async def work() -> tuple[int, dict[str, Any]]:
        intent = _intent(request)
        if intent.status != "requires_capture":
            raise _invalid(
                f"This PaymentIntent could not be captured because it has a status of {intent.status}. Only a "
                "PaymentIntent with one of the following statuses may be captured: requires_capture.",
                code="payment_intent_unexpected_state",
            )
        amount = intent.amount_capturable if to_capture is None else to_capture
        if amount > intent.amount_capturable:
            raise _invalid(
                "The amount to capture is greater than the amount capturable.",
                code="amount_too_large",
                param="amount_to_capture",
            )
        intent.amount_received = amount
        intent.amount_capturable = 0
        intent.captures += 1
        intent.move("succeeded")
        request.app[LEDGER_KEY].keep(intent)
        _emit(request, "payment_intent.succeeded", intent.body())
        return 200, intent.body()

    return await _idempotent(request, fingerprint, work)


async def cancel_intent(request: web.Request) -> web.Response:
    params, fingerprint = await _form(request)
    reason = params.get("cancellation_reason")

    async def work() -> tuple[int, dict[str, Any]]:
        intent = _intent(request)
        if intent.status not in CANCELABLE:
            raise _invalid(
                f"You cannot cancel this PaymentIntent because it has a status of {intent.status}. Only a "
                "PaymentIntent with one of the following statuses may be canceled: " + ", ".join(sorted(CANCELABLE)),
                code="payment_intent_unexpected_state",
            )
        intent.amount_capturable = 0
        intent.canceled_at = _now()
        intent.cancellation_reason = str(reason) if reason else None
        intent.move("canceled")
        request.app[LEDGER_KEY].keep(intent)
        _emit(request, "payment_intent.canceled", intent.body())
        return 200, intent.body()

    return await _idempotent(request, fingerprint, work)


async def get_intent(request: web.Request) -> web.Response:
    return web.json_response(_intent(request).body())


def _limit(request: web.Request) -> int:
    try:
        return max(1, min(100, int(request.query.get("limit", "10"))))
    except ValueError:
        raise _invalid("Invalid integer: limit", code="parameter_invalid_integer", param="limit") from None


async def list_intents(request: web.Request) -> web.Response:
    newest = sorted(request.app[LEDGER_KEY].intents.values(), key=lambda i: i.created, reverse=True)
    limit = _limit(request)
    data = [i.body() for i in newest[:limit]]
    return web.json_response({"object": "list", "data": data, "has_more": len(newest) > limit, "url": request.path})


async def search_intents(request: web.Request) -> web.Response:
    """Only the query Agora asks: one metadata field equal to a value."""
    query = request.query.get("query", "")
    match = _SEARCH.match(query)
    if match is None:
        raise _invalid(f"This sandbox searches only metadata['key']:'value', not: {query}", param="query")
    name, value = match.groups()
    ledger = request.app[LEDGER_KEY]
    found = ledger.for_order(value) if name == "order_id" else ledger.intents.values()
    data = [i.body() for i in found if i.metadata.get(name) == value]
    body = {"object": "search_result", "data": data, "has_more": False, "next_page": None, "url": request.path}
    return web.json_response(body)


async def create_refund(request: web.Request) -> web.Response:
    params, fingerprint = await _form(request)
    requested = _integer(params, "amount", required=False)
    metadata = _metadata(params)
    reason = params.get("reason")

    async def work() -> tuple[int, dict[str, Any]]:
        ledger = request.app[LEDGER_KEY]
        intent_id = params.get("payment_intent")
        if not isinstance(intent_id, str):
            raise _invalid("Missing required param: payment_intent.", code="parameter_missing", param="payment_intent")
        intent = ledger.intents.get(intent_id)
        if intent is None:
            raise _invalid(f"No such payment_intent: '{intent_id}'", code="resource_missing", param="payment_intent")
        if intent.status != "succeeded":
            raise _invalid(
                f"This PaymentIntent ({intent.id}) does not have a successful charge to refund.",
                code="charge_not_refundable",
                param="payment_intent",
            )
        left = intent.amount_received - intent.amount_refunded
        if left <= 0:
            raise _invalid(f"Charge {intent.latest_charge} has already been refunded.", code="charge_already_refunded")
        amount = left if requested is None else requested
        if amount > left:
            raise _invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                code="amount_too_large",
                param="amount",
            )
        refund = Refund(
            id=new_id("re"),
            amount=amount,
            currency=intent.currency,
            payment_intent=intent.id,
            charge=intent.latest_charge,
            created=_now(),
            reason=str(reason) if reason else None,
            metadata=metadata,
        )
        intent.amount_refunded += amount
        intent.refunds += 1
        whole = intent.amount_refunded >= intent.amount_received
        intent.history.append({"status": "refunded" if whole else "partially_refunded", "amount": amount})
        ledger.keep_refund(refund)
        ledger.keep(intent)
        _emit(request, "refund.created", refund.body())
        _emit(request, "charge.refunded", intent.charge())
        return 200, refund.body()

    return await _idempotent(request, fingerprint, work)


async def get_refund(request: web.Request) -> web.Response:
    refund = request.app[LEDGER_KEY].refunds.get(request.match_info["id"])
    if refund is None:
        raise _invalid(f"No such refund: '{request.match_info['id']}'", code="resource_missing", status=404)
    return web.json_response(refund.body())


async def get_token(request: web.Request) -> web.Response:
    """A test token, as Stripe describes a card token (brand and last four digits only)."""
    token = request.match_info["token"]
    if token not in APPROVE | DECLINE:
        raise _invalid(f"No such token: '{token}'", code="resource_missing", param="token", status=404)
    brand, last4 = CARDS[token]
    card = {
        "id": new_id("card"),
        "object": "card",
        "brand": brand,
        "last4": last4,
        "exp_month": 12,
        "exp_year": 2034,
        "funding": "credit",
        "country": "US",
    }
    body = {"id": token, "object": "token", "type": "card", "card": card, "created": _now(), "livemode": False}
    return web.json_response(body)


async def list_events(request: web.Request) -> web.Response:
    wanted = request.query.get("type")
    limit = _limit(request)
    newest = [e for e in reversed(request.app[LEDGER_KEY].events) if wanted is None or e["type"] == wanted]
    return web.json_response(
        {"object": "list", "data": newest[:limit], "has_more": len(newest) > limit, "url": request.path}
    )


async def get_event(request: web.Request) -> web.Response:
    for event in request.app[LEDGER_KEY].events:
        if event["id"] == request.match_info["id"]:
            return web.json_response(event)
    raise _invalid(f"No such event: '{request.match_info['id']}'", code="resource_missing", status=404)


async def ledger_view(request: web.Request) -> web.Response:
    return web.json_response(request.app[LEDGER_KEY].summary())


async def ledger_order(request: web.Request) -> web.Response:
    return web.json_response(order_summary(request.app[LEDGER_KEY].for_order(request.match_info["order_id"])))


async def ledger_webhooks(request: web.Request) -> web.Response:
    ledger = request.app[LEDGER_KEY]
    return web.json_response({"events": [{"id": k, **v} for k, v in ledger.deliveries.items()]})


async def ledger_pause_webhooks(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("paused"), bool):
        raise _invalid('give {"paused": true} or {"paused": false}', param="paused")
    request.app[WEBHOOKS_KEY].paused = body["paused"]
    return web.json_response({"paused": body["paused"]})


async def ledger_reset(request: web.Request) -> web.Response:
    request.app[LEDGER_KEY].reset()
    return web.json_response({"ok": True})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


_OPEN = ("/healthz", "/readyz", "/v1/ledger")


@web.middleware
async def stripe_api(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    """Stripe's API key check, and its error bodies for whatever a handler refuses."""
    try:
        if not request.path.startswith(_OPEN):
            given = request.headers.get("Authorization", "")
            if not given.startswith("Bearer ") or not given[7:]:
                raise StripeError(
                    401,
                    "invalid_request_error",
                    "You did not provide an API key. You need to provide your API key in the Authorization header, "
                    "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
                )
            if not hmac.compare_digest(given[7:].encode(), request.app[CONFIG_KEY].secret_key.encode()):
                raise StripeError(401, "invalid_request_error", f"Invalid API Key provided: {given[7:15]}****")
        return await handler(request)
    except StripeError as err:
        return web.json_response(err.body(), status=err.status)


def make_app(
    store: Path | None,
    timeout_delay: float,
    *,
    secret_key: str,
    webhook_url: str = "",
    webhook_secret: str = "",
    webhook_events: frozenset[str] = frozenset(SUBSCRIBED),
    webhooks_paused: bool = False,
) -> web.Application:
    app = web.Application(middlewares=[stripe_api])
    app[LEDGER_KEY] = ledger = Ledger(store)
    app[CONFIG_KEY] = config = Config(secret_key, webhook_url, webhook_secret, timeout_delay, webhook_events)
    app[WEBHOOKS_KEY] = webhooks = Webhooks(ledger, config)
    webhooks.paused = webhooks_paused

    async def close(_: web.Application) -> None:
        await webhooks.close()

    app.on_cleanup.append(close)
    app.router.add_post("/v1/payment_intents", create_intent)
    app.router.add_get("/v1/payment_intents", list_intents)
    app.router.add_get("/v1/payment_intents/search", search_intents)
    app.router.add_get("/v1/payment_intents/{id}", get_intent)
    app.router.add_post("/v1/payment_intents/{id}/confirm", confirm_intent)
    app.router.add_post("/v1/payment_intents/{id}/capture", capture_intent)
    app.router.add_post("/v1/payment_intents/{id}/cancel", cancel_intent)
    app.router.add_post("/v1/refunds", create_refund)
    app.router.add_get("/v1/refunds/{id}", get_refund)
    app.router.add_get("/v1/tokens/{token}", get_token)
    app.router.add_get("/v1/events", list_events)
    app.router.add_get("/v1/events/{id}", get_event)
    app.router.add_get("/v1/ledger", ledger_view)
    app.router.add_delete("/v1/ledger", ledger_reset)
    app.router.add_get("/v1/ledger/webhooks", ledger_webhooks)
    app.router.add_post("/v1/ledger/webhooks", ledger_pause_webhooks)
    app.router.add_get("/v1/ledger/orders/{order_id}", ledger_order)
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", health)
    return app


def main(argv: list[str] | None = None) -> None:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default=env.get("AGORA_PAYMENT_SANDBOX_HOST") or env.get("AGORA_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("AGORA_PAYMENT_SANDBOX_PORT", "1090")))
    parser.add_argument(
        "--timeout-delay", type=float, default=float(env.get("AGORA_SANDBOX_TIMEOUT_DELAY_SECONDS", "30"))
    )
    parser.add_argument("--secret-key", default=env.get("AGORA_STRIPE_SECRET_KEY", ""))
    parser.add_argument("--webhook-url", default=env.get("AGORA_PAYMENT_SANDBOX_WEBHOOK_URL", ""))
    parser.add_argument("--webhook-secret", default=env.get("AGORA_STRIPE_WEBHOOK_SECRET", ""))
    parser.add_argument(
        "--webhook-events",
        default=env.get("AGORA_PAYMENT_SANDBOX_WEBHOOK_EVENTS") or ",".join(SUBSCRIBED),
        help="the event types sent to the webhook endpoint, comma-separated",
    )
    parser.add_argument("--run-dir", default=env.get("AGORA_RUN_DIR", ".run"))
    parser.add_argument("--memory", action="store_true", help="keep the ledger in memory only")
    args = parser.parse_args(argv)
    if not args.secret_key.startswith("sk_test_"):
        parser.error("set AGORA_STRIPE_SECRET_KEY to a test key, sk_test_… (scripts/up writes one to .run/agora.env)")
    if args.webhook_url and not args.webhook_secret.startswith("whsec_"):
        parser.error("webhooks need AGORA_STRIPE_WEBHOOK_SECRET, whsec_… (scripts/up writes one to .run/agora.env)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s payment-sandbox %(levelname)s %(message)s")
    store = None if args.memory else Path(args.run_dir) / "payment_sandbox" / STORE_NAME
    log.info(
        "payment sandbox on http://%s:%s (ledger %s, webhooks to %s)",
        args.host,
        args.port,
        store or "in memory",
        args.webhook_url or "nowhere",
    )
    app = make_app(
        store,
        args.timeout_delay,
        secret_key=args.secret_key,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        webhook_events=frozenset(t.strip() for t in args.webhook_events.split(",") if t.strip()),
        webhooks_paused=env.get("AGORA_PAYMENT_SANDBOX_WEBHOOKS") == "paused",
    )
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
