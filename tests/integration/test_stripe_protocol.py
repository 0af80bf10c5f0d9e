"""The payment provider speaks Stripe's protocol: the sandbox driven by the official `stripe`
library directly (what the payments worker does, and what a shop going live relies on), and
its signed webhook events received by the edge, verified and recorded by the payments worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import stripe
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.payments import AUTHORIZE_PAYMENT, CAPTURE_PAYMENT, RECEIVE_PROVIDER_EVENT
from contracts.topology import dead_letter_queue
from harness import broker
from harness.bus import Bus, service_token
from harness.environment import STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET
from harness.stack import Stack

AMOUNT = 4200


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[stripe.StripeClient]:
    """The sandbox through stripe-python, as the payments worker reaches it."""
    http = stripe.AIOHTTPClient()
    yield stripe.StripeClient(
        STRIPE_SECRET_KEY,
        base_addresses={"api": stack.env["AGORA_PAYMENT_API_URL"]},
        http_client=http,
        max_network_retries=0,
    )
    await http.close_async()  # type: ignore[no-untyped-call]


@pytest.fixture
async def webhooks(stack: Stack) -> AsyncIterator[None]:
    """The sandbox's webhook deliveries, on for the test (the suite's stack starts them paused)."""
    url = f"{stack.env['AGORA_PAYMENT_API_URL']}/v1/ledger/webhooks"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"paused": False}) as resp:
            assert resp.status == 200
        yield
        async with session.post(url, json={"paused": True}) as resp:
            assert resp.status == 200


def _authorization(order_id: uuid.UUID, token: str = "tok_visa", amount: int = AMOUNT) -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": "eur",
        "confirm": True,
        "capture_method": "manual",
        "payment_method_types": ["card"],
        "payment_method_data": {"type": "card", "card": {"token": token}},
        "metadata": {"order_id": str(order_id)},
    }


async def test_authorize_capture_refund_and_cancel_with_the_stripe_library(client: stripe.StripeClient) -> None:
    intents, order_id = client.v1.payment_intents, uuid.uuid4()
    key = str(uuid.uuid4())
    intent = await intents.create_async(_authorization(order_id), {"idempotency_key": key})  # type: ignore[arg-type]
    assert (intent.object, intent.status, intent.amount_capturable) == ("payment_intent", "requires_capture", AMOUNT)
    assert intent.currency == "eur" and intent.metadata["order_id"] == str(order_id)
    # The same key and parameters: the stored answer, not a second intent.
    again = await intents.create_async(_authorization(order_id), {"idempotency_key": key})  # type: ignore[arg-type]
    assert again.id == intent.id
    # The same key with other parameters: Stripe's idempotency error.
    with pytest.raises(stripe.IdempotencyError):
        await intents.create_async(_authorization(order_id, amount=1), {"idempotency_key": key})  # type: ignore[arg-type]

    captured = await intents.capture_async(intent.id, options={"idempotency_key": str(uuid.uuid4())})
    assert (captured.status, captured.amount_received, captured.amount_capturable) == ("succeeded", AMOUNT, 0)
    with pytest.raises(stripe.InvalidRequestError) as not_twice:
        await intents.capture_async(intent.id, options={"idempotency_key": str(uuid.uuid4())})
    assert not_twice.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as no_void:
        await intents.cancel_async(intent.id, options={"idempotency_key": str(uuid.uuid4())})
    assert no_void.value.code == "payment_intent_unexpected_state"

    refunds = client.v1.refunds
    part = await refunds.create_async({"payment_intent": intent.id, "amount": 1000})
    assert (part.object, part.amount, part.status, part.payment_intent) == ("refund", 1000, "succeeded", intent.id)
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await refunds.create_async({"payment_intent": intent.id, "amount": AMOUNT})
    assert too_much.value.code == "amount_too_large"
    rest = await refunds.create_async({"payment_intent": intent.id})  # the rest
    assert rest.amount == AMOUNT - 1000
    assert (await refunds.retrieve_async(part.id)).amount == 1000

    held = await intents.create_async(_authorization(order_id))  # type: ignore[arg-type]
    canceled = await intents.cancel_async(held.id)
    assert (canceled.status, canceled.amount_capturable) == ("canceled", 0)

    found = await intents.search_async({"query": f"metadata['order_id']:'{order_id}'"})
    assert sorted((i.id, i.status) for i in found.data) == sorted([(intent.id, "succeeded"), (held.id, "canceled")])
    assert (await intents.retrieve_async(intent.id)).amount_received == AMOUNT


async def test_a_decline_a_bad_key_and_the_test_tokens(stack: Stack, client: stripe.StripeClient) -> None:
    intents = client.v1.payment_intents
    with pytest.raises(stripe.CardError) as declined:
        await intents.create_async(_authorization(uuid.uuid4(), "tok_chargeDeclined"))  # type: ignore[arg-type]
    assert declined.value.http_status == 402 and declined.value.code == "card_declined"
    body = declined.value.json_body
    assert isinstance(body, dict)
    assert body["error"]["type"] == "card_error"
    assert body["error"]["payment_intent"]["status"] == "requires_payment_method"

    token = await client.v1.tokens.retrieve_async("tok_visa")
    assert (token.object, token.type, token.card and token.card.last4) == ("token", "card", "4242")
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await client.v1.tokens.retrieve_async("tok_nosuchthing")
    assert unknown.value.http_status == 404 and unknown.value.code == "resource_missing"

    http = stripe.AIOHTTPClient()
    wrong = stripe.StripeClient(
        "sk_test_wrong", base_addresses={"api": stack.env["AGORA_PAYMENT_API_URL"]}, http_client=http
    )
    try:
        with pytest.raises(stripe.AuthenticationError):
            await wrong.v1.tokens.retrieve_async("tok_visa")
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]


# --- webhooks -------------------------------------------------------------------------


def _signed(payload: str, secret: str = STRIPE_WEBHOOK_SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    signature = hmac.new(secret.encode(), f"{at}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={at},v1={signature}"


async def _recorded(db: AsyncEngine, order_id: uuid.UUID) -> list[str]:
    async with db.connect() as conn:
        rows = await conn.execute(
            text("SELECT type FROM payments.provider_events WHERE order_id = :o ORDER BY created_at, type"),
            {"o": order_id},
        )
        return [row[0] for row in rows]


async def _view(db: AsyncEngine, order_id: uuid.UUID) -> tuple[Any, ...]:
    async with db.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT status, provider_status, provider_disagreement FROM payments.payments WHERE order_id = :o"
                ),
                {"o": order_id},
            )
        ).one()
        return tuple(row)


async def _until(check: Any, what: str, *, seconds: float = 20) -> Any:
    for _ in range(int(seconds / 0.2)):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"never: {what}")


async def _paid_order(bus: Bus, stack: Stack) -> uuid.UUID:
    saga = await service_token(bus, stack.env, "orders")
    order_id = uuid.uuid4()
    body = {
        "order_id": str(order_id),
        "attempt": 1,
        "idempotency_key": f"{order_id}:authorize",
        "amount_minor": AMOUNT,
        "currency": "EUR",
        "payment_token": "tok_visa",
    }
    assert (await bus.call(AUTHORIZE_PAYMENT.routing_key, body, token=saga, within=30))["ok"]
    capture = {"order_id": str(order_id), "attempt": 1, "idempotency_key": f"{order_id}:capture"}
    assert (await bus.call(CAPTURE_PAYMENT.routing_key, capture, token=saga, within=30))["data"][
        "outcome"
    ] == "captured"
    return order_id


async def test_signed_events_are_received_recorded_once_and_set_beside_the_payment(
    stack: Stack,
    bus: Bus,
    db: AsyncEngine,
    http: aiohttp.ClientSession,
    client: stripe.StripeClient,
    webhooks: None,
) -> None:
    order_id = await _paid_order(bus, stack)
    # The sandbox sent its events to the edge; the payments worker verified and kept them.
    wanted = {"payment_intent.amount_capturable_updated", "payment_intent.succeeded"}

    async def all_in() -> bool:
        return wanted <= set(await _recorded(db, order_id))

    await _until(all_in, "the sandbox's events recorded")
    assert await _until(lambda: _has_view(db, order_id), "the provider's view kept") == ("captured", "succeeded", None)

    # The same event again (Stripe retries; an attacker replays): recorded once, not applied again.
    event = next(
        e
        for e in (await client.v1.events.list_async({"type": "payment_intent.succeeded", "limit": 100})).data
        if _about(e, order_id)
    )
    payload = json.dumps(event.to_dict())
    async with http.post(
        "/api/payments/webhook", data=payload, headers={"Stripe-Signature": _signed(payload), **_JSON}
    ) as resp:
        assert resp.status == 200, await resp.text()
        receipt = await resp.json()
    assert (receipt["event_id"], receipt["duplicate"]) == (event.id, True)
    async with db.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM payments.provider_events WHERE event_id = :e"), {"e": event.id}
        )
    assert count == 1

    # A refund made outside Agora (the provider's dashboard): the provider's view disagrees.
    intent_id = (await _only_intent(client, order_id)).id
    await client.v1.refunds.create_async({"payment_intent": intent_id, "amount": 200})

    async def disagreement() -> Any:
        return (await _view(db, order_id))[2]

    assert "refunded 200, Agora knows of 0" in await _until(disagreement, "the disagreement recorded")


async def _has_view(db: AsyncEngine, order_id: uuid.UUID) -> tuple[Any, ...] | None:
    view = await _view(db, order_id)
    return view if view[1] == "succeeded" else None


def _about(event: stripe.Event, order_id: uuid.UUID) -> bool:
    obj = event.to_dict()["data"]["object"]
    return bool(obj["object"] == "payment_intent" and obj["metadata"].get("order_id") == str(order_id))


async def _only_intent(client: stripe.StripeClient, order_id: uuid.UUID) -> stripe.PaymentIntent:
    found = await client.v1.payment_intents.search_async({"query": f"metadata['order_id']:'{order_id}'"})
    assert len(found.data) == 1
    return found.data[0]


_JSON = {"Content-Type": "application/json"}


async def test_a_bad_signature_is_refused_and_dead_lettered(http: aiohttp.ClientSession, db: AsyncEngine) -> None:
    dlq = dead_letter_queue(RECEIVE_PROVIDER_EVENT.queue)
    before = int(str(broker.queue_info(dlq)["messages"]))
    event_id = f"evt_3F{uuid.uuid4().hex}"
    event = {"id": event_id, "object": "event", "type": "payment_intent.succeeded", "created": int(time.time())}
    event["data"] = {"object": {"id": "pi_3Fake", "object": "payment_intent", "status": "succeeded"}}
    payload = json.dumps(event)
    forged = {"Stripe-Signature": _signed(payload, secret="whsec_" + "0" * 32), **_JSON}
    async with http.post("/api/payments/webhook", data=payload, headers=forged) as resp:
        assert resp.status == 400
        assert resp.content_type == "application/problem+json"
        problem = await resp.json()
    assert problem["code"] == "bad_request" and problem["errors"][0]["field"] == "signature"
    # Signed with the right secret, but long ago (a replay): refused too.
    stale = {"Stripe-Signature": _signed(payload, at=int(time.time()) - 3600), **_JSON}
    async with http.post("/api/payments/webhook", data=payload, headers=stale) as resp:
        assert resp.status == 400
    # No signature at all: refused by the edge itself.
    async with http.post("/api/payments/webhook", data=payload, headers=_JSON) as resp:
        assert resp.status == 400 and (await resp.json())["errors"][0]["field"] == "Stripe-Signature"
    for _ in range(50):
        if int(str(broker.queue_info(dlq)["messages"])) >= before + 2:
            break
        await asyncio.sleep(0.2)
    assert int(str(broker.queue_info(dlq)["messages"])) == before + 2  # the forged and the stale one
    async with db.connect() as conn:
        kept = await conn.scalar(
            text("SELECT count(*) FROM payments.provider_events WHERE event_id = :e"), {"e": event_id}
        )
    assert kept == 0
