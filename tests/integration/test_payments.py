"""Payments end to end: the saga's payment commands over the broker, against the payments
worker and the suite's own sandbox payment provider, checked by events and by the
provider's ledger. And: no card number gets in, over HTTP or over the broker.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection

from contracts.payments import AUTHORIZE_PAYMENT, CAPTURE_PAYMENT, REFUND_PAYMENT, VOID_PAYMENT
from contracts.topology import EVENTS_EXCHANGE, dead_letter_queue
from harness import broker
from harness.accounts import bearer, login, register
from harness.bus import Bus, service_token
from harness.stack import Stack

AMOUNT = 2599


@pytest.fixture(scope="module")
async def saga(bus: Bus, stack: Stack) -> str:
    """A service token: the order saga's credentials."""
    return await service_token(bus, stack.env, "orders")


@pytest.fixture(scope="module")
async def provider(stack: Stack) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(stack.env["AGORA_PAYMENT_API_URL"]) as session:
        yield session


@pytest.fixture
async def events(amqp: AbstractRobustConnection) -> AsyncIterator[AbstractQueue]:
    channel = await amqp.channel()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(EVENTS_EXCHANGE, "payments.#")
    yield queue
    await channel.close()


async def step(
    bus: Bus,
    token: str,
    spec: Any,
    order_id: uuid.UUID,
    attempt: int = 1,
    *,
    message_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Send one payment command as the saga would (key `<order>:<step>`) and return the reply's result."""
    name = spec.name.removesuffix("_payment")
    body = {"order_id": str(order_id), "attempt": attempt, "idempotency_key": f"{order_id}:{name}", **extra}
    reply = await bus.call(spec.routing_key, body, token=token, message_id=message_id, within=30)
    assert reply["ok"], reply
    data: dict[str, Any] = reply["data"]
    return data


async def authorize(
    bus: Bus, token: str, order_id: uuid.UUID, card: str = "tok_visa", attempt: int = 1
) -> dict[str, Any]:
    return await step(
        bus, token, AUTHORIZE_PAYMENT, order_id, attempt, amount_minor=AMOUNT, currency="EUR", payment_token=card
    )


async def ledger(provider: aiohttp.ClientSession, order_id: uuid.UUID) -> dict[str, Any]:
    async with provider.get(f"/v1/ledger/orders/{order_id}") as resp:
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body


async def events_for(queue: AbstractQueue, order_id: uuid.UUID, *, settle: float = 1.5) -> list[tuple[str, Any]]:
    """(routing key, body) of the payments events about `order_id`, until none came for `settle` s."""
    found: list[tuple[str, Any]] = []
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    while loop.time() - quiet_since < settle:
        message = await queue.get(fail=False, no_ack=True)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        quiet_since = loop.time()
        body = json.loads(message.body)
        if body.get("order_id") == str(order_id):
            found.append((str(message.routing_key), body))
    return found


async def test_approve_then_capture(
    bus: Bus, saga: str, provider: aiohttp.ClientSession, events: AbstractQueue
) -> None:
    order_id = uuid.uuid4()
    authorized = await authorize(bus, saga, order_id, "tok_mastercard", attempt=2)
    assert authorized["outcome"] == "authorized"
    assert authorized["attempt"] == 2 and authorized["amount_minor"] == AMOUNT and authorized["currency"] == "EUR"
    assert authorized["provider_reference"]
    captured = await step(bus, saga, CAPTURE_PAYMENT, order_id, 2)
    assert captured["outcome"] == "captured" and captured["provider_reference"] == authorized["provider_reference"]

    seen = await events_for(events, order_id)
    assert [(key, body["outcome"], body["attempt"]) for key, body in seen] == [
        ("payments.payment_authorized.v1", "authorized", 2),
        ("payments.payment_captured.v1", "captured", 2),
    ]
    book = await ledger(provider, order_id)
    assert book["captured"] == AMOUNT and book["captures"] == 1 and book["live_authorizations"] == 0
    assert [a["status"] for a in book["authorizations"]] == ["captured"]


async def test_decline(bus: Bus, saga: str, provider: aiohttp.ClientSession, events: AbstractQueue) -> None:
    order_id = uuid.uuid4()
    result = await authorize(bus, saga, order_id, "tok_chargeDeclined")
    assert result["outcome"] == "declined" and result["reason"]
    assert [key for key, _ in await events_for(events, order_id)] == ["payments.payment_failed.v1"]
    # Nothing to capture; the ledger holds the declined attempt and no money.
    assert (await step(bus, saga, CAPTURE_PAYMENT, order_id))["outcome"] == "failed"
    book = await ledger(provider, order_id)
    assert [a["status"] for a in book["authorizations"]] == ["declined"] and book["captured"] == 0


async def test_void_after_authorize(bus: Bus, saga: str, provider: aiohttp.ClientSession) -> None:
    order_id = uuid.uuid4()
    assert (await authorize(bus, saga, order_id))["outcome"] == "authorized"
    assert (await step(bus, saga, VOID_PAYMENT, order_id))["outcome"] == "voided"
    assert (await step(bus, saga, VOID_PAYMENT, order_id, 2))["outcome"] == "voided"  # a repeat: same answer
    # Voided is final: no capture, and a late authorization (the first one, again) is not made again.
    assert (await step(bus, saga, CAPTURE_PAYMENT, order_id))["outcome"] == "failed"
    assert (await authorize(bus, saga, order_id))["outcome"] == "failed"
    book = await ledger(provider, order_id)
    assert [a["status"] for a in book["authorizations"]] == ["voided"]
    assert book["live_authorizations"] == 0 and book["captured"] == 0


async def test_a_declined_order_is_paid_again_under_a_key_of_its_own(
    bus: Bus, saga: str, provider: aiohttp.ClientSession
) -> None:
    """The saga pays again with a later attempt and `<order_id>:authorize:<attempt>`: a new
    authorization, which a late copy of an older void leaves alone."""
    order_id = uuid.uuid4()
    assert (await authorize(bus, saga, order_id, "tok_chargeDeclined"))["outcome"] == "declined"
    assert (await authorize(bus, saga, order_id, "tok_chargeDeclined"))["outcome"] == "declined"  # a late copy
    card = {"amount_minor": AMOUNT, "currency": "EUR", "payment_token": "tok_visa"}
    again = await step(bus, saga, AUTHORIZE_PAYMENT, order_id, 2, idempotency_key=f"{order_id}:authorize:2", **card)
    assert again["outcome"] == "authorized" and again["provider_reference"], again
    assert (await step(bus, saga, VOID_PAYMENT, order_id, 1))["outcome"] == "failed"  # older than it: not its to void
    assert (await step(bus, saga, CAPTURE_PAYMENT, order_id, 3))["outcome"] == "captured"
    book = await ledger(provider, order_id)
    assert [(a["token"], a["status"]) for a in book["authorizations"]] == [
        ("tok_chargeDeclined", "declined"),
        ("tok_visa", "captured"),
    ]
    assert (book["captured"], book["captures"], book["live_authorizations"]) == (AMOUNT, 1, 0)


async def test_void_of_an_order_never_authorized_bars_a_later_authorization(
    bus: Bus, saga: str, provider: aiohttp.ClientSession
) -> None:
    order_id = uuid.uuid4()
    result = await step(bus, saga, VOID_PAYMENT, order_id)
    assert result["outcome"] == "voided" and result["amount_minor"] == 0
    assert (await authorize(bus, saga, order_id))["outcome"] == "failed"
    assert (await ledger(provider, order_id))["authorizations"] == []


async def test_refund_after_capture(
    bus: Bus, saga: str, provider: aiohttp.ClientSession, events: AbstractQueue
) -> None:
    order_id = uuid.uuid4()
    await authorize(bus, saga, order_id)
    await step(bus, saga, CAPTURE_PAYMENT, order_id)
    assert (await step(bus, saga, VOID_PAYMENT, order_id))["outcome"] == "failed"  # captured: refund, not void
    assert (await step(bus, saga, REFUND_PAYMENT, order_id))["outcome"] == "refunded"
    assert (await step(bus, saga, REFUND_PAYMENT, order_id))["outcome"] == "refunded"
    keys = [key for key, _ in await events_for(events, order_id)]
    assert keys.count("payments.payment_refunded.v1") == 2
    book = await ledger(provider, order_id)
    assert book["captured"] == AMOUNT and book["refunded"] == AMOUNT and book["net_captured"] == 0


async def captured_order(bus: Bus, saga: str) -> uuid.UUID:
    order_id = uuid.uuid4()
    assert (await authorize(bus, saga, order_id))["outcome"] == "authorized"
    assert (await step(bus, saga, CAPTURE_PAYMENT, order_id))["outcome"] == "captured"
    return order_id


async def partial_refund(bus: Bus, saga: str, order_id: uuid.UUID, refund_id: str, amount: int) -> dict[str, Any]:
    """A return's refund: its own key and reference, as the returns side sends it."""
    key = f"{order_id}:refund:{refund_id}"
    extra: dict[str, Any] = {"idempotency_key": key, "amount_minor": amount, "reference": f"return:{refund_id}"}
    return await step(bus, saga, REFUND_PAYMENT, order_id, **extra)


async def test_partial_refunds_then_the_rest(
    bus: Bus, saga: str, provider: aiohttp.ClientSession, events: AbstractQueue
) -> None:
    order_id = await captured_order(bus, saga)
    first = await partial_refund(bus, saga, order_id, "r1", 599)
    assert (first["outcome"], first["amount_minor"], first["amount_refunded_minor"]) == ("refunded", 599, 599)
    assert first["reference"] == "return:r1" and first["currency"] == "EUR"
    second = await partial_refund(bus, saga, order_id, "r2", 1000)
    assert (second["outcome"], second["amount_minor"], second["amount_refunded_minor"]) == ("refunded", 1000, 1599)
    book = await ledger(provider, order_id)
    assert (book["refunded"], book["refunds"]) == (1599, 2)
    assert [a["status"] for a in book["authorizations"]] == ["captured"]  # not all of it yet
    # Still captured: a void is refused as before.
    assert (await step(bus, saga, VOID_PAYMENT, order_id))["outcome"] == "failed"
    # The cancel after capture's refund (no amount): all that is left.
    rest = await step(bus, saga, REFUND_PAYMENT, order_id)
    assert (rest["outcome"], rest["amount_minor"], rest["amount_refunded_minor"]) == ("refunded", 1000, AMOUNT)
    assert rest["reference"] is None
    book = await ledger(provider, order_id)
    assert (book["refunded"], book["refunds"], book["net_captured"]) == (AMOUNT, 3, 0)
    assert [a["status"] for a in book["authorizations"]] == ["refunded"]
    refunds = [body for key, body in await events_for(events, order_id) if key == "payments.payment_refunded.v1"]
    assert [(r["amount_minor"], r["amount_refunded_minor"], r["reference"]) for r in refunds] == [
        (599, 599, "return:r1"),
        (1000, 1599, "return:r2"),
        (1000, AMOUNT, None),
    ]
    # Nothing is left: another refund with a key of its own is refused, without the provider.
    over = await partial_refund(bus, saga, order_id, "r3", 1)
    assert over["outcome"] == "failed" and over["amount_minor"] == 0 and "0 of the 2599" in over["reason"]
    assert (await ledger(provider, order_id))["refunds"] == 3


async def test_a_refund_beyond_what_is_left_is_refused(
    bus: Bus, saga: str, provider: aiohttp.ClientSession, events: AbstractQueue
) -> None:
    order_id = await captured_order(bus, saga)
    assert (await partial_refund(bus, saga, order_id, "r1", 2000))["outcome"] == "refunded"
    over = await partial_refund(bus, saga, order_id, "r2", 600)
    assert over["outcome"] == "failed" and over["amount_minor"] == 0 and over["amount_refunded_minor"] == 2000
    assert over["reason"] == "cannot refund 600: 599 of the 2599 captured is left to refund"
    assert over["reference"] == "return:r2"
    seen = [(key, body["step"], body["outcome"]) for key, body in await events_for(events, order_id)]
    assert seen[-1] == ("payments.payment_failed.v1", "refund", "failed")
    book = await ledger(provider, order_id)
    assert (book["refunded"], book["refunds"]) == (2000, 1)  # never sent to the provider
    # Refused, not spent: the 599 that is left can still be refunded.
    assert (await partial_refund(bus, saga, order_id, "r3", 599))["amount_refunded_minor"] == AMOUNT
    # Nothing captured, nothing to refund.
    authorized_only = uuid.uuid4()
    await authorize(bus, saga, authorized_only)
    early = await partial_refund(bus, saga, authorized_only, "r1", 100)
    assert early["outcome"] == "failed" and "nothing was captured" in early["reason"]


async def test_a_repeated_refund_key_is_one_refund(bus: Bus, saga: str, provider: aiohttp.ClientSession) -> None:
    order_id = await captured_order(bus, saga)
    first, again = await asyncio.gather(
        partial_refund(bus, saga, order_id, "r1", 700), partial_refund(bus, saga, order_id, "r1", 700)
    )
    assert first["outcome"] == again["outcome"] == "refunded"
    assert first["amount_minor"] == again["amount_minor"] == 700
    assert {first["amount_refunded_minor"], again["amount_refunded_minor"]} == {700}
    later = await partial_refund(bus, saga, order_id, "r1", 700)
    assert (later["outcome"], later["amount_minor"], later["amount_refunded_minor"]) == ("refunded", 700, 700)
    # The same key for another amount is a mistake, not a second refund.
    mismatch = await partial_refund(bus, saga, order_id, "r1", 800)
    assert mismatch["outcome"] == "failed" and "used for a refund of 700" in mismatch["reason"]
    book = await ledger(provider, order_id)
    assert (book["refunded"], book["refunds"]) == (700, 1)


async def test_duplicate_commands_charge_once(bus: Bus, saga: str, provider: aiohttp.ClientSession) -> None:
    order_id = uuid.uuid4()
    first, second = await asyncio.gather(authorize(bus, saga, order_id), authorize(bus, saga, order_id, attempt=2))
    assert first["outcome"] == second["outcome"] == "authorized"
    assert first["provider_reference"] == second["provider_reference"]
    captures = await asyncio.gather(*(step(bus, saga, CAPTURE_PAYMENT, order_id) for _ in range(3)))
    assert {c["outcome"] for c in captures} == {"captured"}
    # The very same message again (a redelivery): the inbox drops it, no reply, no call.
    message_id = str(uuid.uuid4())
    await step(bus, saga, CAPTURE_PAYMENT, order_id, message_id=message_id)
    await bus.send(CAPTURE_PAYMENT.routing_key, _capture(order_id), token=saga, message_id=message_id)
    await asyncio.sleep(0.5)
    book = await ledger(provider, order_id)
    assert len(book["authorizations"]) == 1 and book["captures"] == 1 and book["captured"] == AMOUNT


def _capture(order_id: uuid.UUID) -> dict[str, Any]:
    return {"order_id": str(order_id), "attempt": 1, "idempotency_key": f"{order_id}:capture"}


async def test_flaky_provider_is_retried_into_one_authorization(
    bus: Bus, saga: str, provider: aiohttp.ClientSession
) -> None:
    order_id = uuid.uuid4()
    assert (await authorize(bus, saga, order_id, "tok_flaky"))["outcome"] == "authorized"
    book = await ledger(provider, order_id)
    assert [a["status"] for a in book["authorizations"]] == ["authorized"]


async def test_a_timed_out_authorization_exists_at_the_provider_and_is_voided(
    bus: Bus, saga: str, provider: aiohttp.ClientSession
) -> None:
    order_id = uuid.uuid4()
    result = await authorize(bus, saga, order_id, "tok_timeout")
    # No answer within AGORA_PAYMENT_API_TIMEOUT_SECONDS: outcome unknown, reported failed...
    assert result["outcome"] == "failed" and result["provider_reference"] is None
    # ...while the provider did authorize: money is held until the void.
    book = await ledger(provider, order_id)
    assert book["live_authorizations"] == 1
    assert (await step(bus, saga, VOID_PAYMENT, order_id))["outcome"] == "voided"
    book = await ledger(provider, order_id)
    assert book["live_authorizations"] == 0 and [a["status"] for a in book["authorizations"]] == ["voided"]


async def test_only_services_and_admins_move_money(bus: Bus, http: aiohttp.ClientSession) -> None:
    member = await register(http)
    token = (await login(http, member["email"], member["password"]))["access_token"]
    order_id = uuid.uuid4()
    body = {
        "order_id": str(order_id),
        "attempt": 1,
        "idempotency_key": f"{order_id}:authorize",
        "amount_minor": AMOUNT,
        "currency": "EUR",
        "payment_token": "tok_visa",
    }
    reply = await bus.call(AUTHORIZE_PAYMENT.routing_key, body, token=token)
    assert not reply["ok"] and reply["error"]["code"] == "forbidden"


async def test_a_card_number_on_the_broker_is_dead_lettered(
    bus: Bus, saga: str, provider: aiohttp.ClientSession
) -> None:
    dlq = dead_letter_queue(AUTHORIZE_PAYMENT.queue)
    before = int(str(broker.queue_info(dlq)["messages"]))
    order_id = uuid.uuid4()
    body = {
        "order_id": str(order_id),
        "attempt": 1,
        "idempotency_key": f"{order_id}:authorize",
        "amount_minor": AMOUNT,
        "currency": "EUR",
        "payment_token": "tok_4111111111111111",  # fits the token pattern: only the scan catches it
    }
    reply = await bus.call(AUTHORIZE_PAYMENT.routing_key, body, token=saga)
    assert not reply["ok"] and reply["error"]["code"] == "validation_failed"
    assert "4111" not in json.dumps(reply)
    for _ in range(50):
        if int(str(broker.queue_info(dlq)["messages"])) > before:
            break
        await asyncio.sleep(0.2)
    assert int(str(broker.queue_info(dlq)["messages"])) == before + 1
    assert (await ledger(provider, order_id))["authorizations"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.com", "username": "card_owner", "password": "4111 1111 1111 1111"},
        {"email": "a@example.com", "username": "u", "password": "p", "note": {"deep": ["5555-5555-5555-4444"]}},
        {"email": "a@example.com", "username": "u", "password": 378282246310005},
    ],
)
async def test_a_card_number_in_an_http_body_is_refused(http: aiohttp.ClientSession, body: dict[str, Any]) -> None:
    async with http.post("/api/users/register", json=body) as resp:
        assert resp.status == 422
        assert resp.content_type == "application/problem+json"
        problem = await resp.json()
    assert "card number" in problem["detail"]
    for digits in ("4111", "5555", "378282"):
        assert digits not in json.dumps(problem)


async def test_a_card_number_in_any_route_body_is_refused(http: aiohttp.ClientSession, admin: dict[str, Any]) -> None:
    """Also behind authentication, on a PUT: the check runs before any handler."""
    body = {"role": "seller", "bio": "pay me: 6011 1111 1111 1117"}
    async with http.put(
        f"/api/users/{admin['user']['user_id']}", json=body, headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 422


def _multipart(fields: dict[str, str], file: bytes | None = None) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    if file is not None:
        form.add_field("attachment", file, filename="card.txt", content_type="text/plain")
    return form


async def test_a_card_number_in_a_form_body_is_refused_like_in_json(
    http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    """Form-encoded and multipart bodies: 422 (not 415) on JSON routes, and on the form route too."""
    auth = bearer(admin["access_token"])
    refused: list[tuple[str, Any]] = [
        ("/api/users/register", {"email": "a@example.com", "password": "4111 1111 1111 1111"}),
        ("/api/orders", {"payment_token": "tok_visa", "card": "5555-5555-5555-4444"}),
        ("/api/orders", _multipart({"payment_token": "tok_visa", "number": "378282246310005"})),
        ("/api/orders", _multipart({"note": "see the file"}, b"my card: 6011111111111117\n")),
        ("/api/oauth/token", {"grant_type": "client_credentials", "client_id": "4111111111111111"}),
    ]
    for path, body in refused:
        async with http.post(path, data=body, headers=auth) as resp:
            assert resp.status == 422, (path, await resp.text())
            assert resp.content_type == "application/problem+json"
            problem = await resp.text()
        assert "card number" in problem
        assert not any(digits in problem for digits in ("4111", "5555", "378282", "6011")), problem
    # Without a card number a form is still the wrong type for a JSON route, and fine for the token route.
    async with http.post("/api/orders", data={"payment_token": "tok_visa"}, headers=auth) as resp:
        assert resp.status == 415
    async with http.post("/api/orders", data=_multipart({"payment_token": "tok_visa"}), headers=auth) as resp:
        assert resp.status == 415
    form = {"grant_type": "client_credentials", "client_id": str(uuid.uuid4()), "client_secret": "s" * 40}
    async with http.post("/api/oauth/token", data=form) as resp:
        assert resp.status == 401 and (await resp.json())["error"] == "invalid_client"
