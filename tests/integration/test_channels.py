"""The notification channels against real servers: email through the stack's SMTP sink,
text messages through the twilio library to the suite's SMS sandbox, and the failures
a worker must tell apart (retry or give up)."""

from __future__ import annotations

import asyncio
import random
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from harness import environment, processes
from kernel.settings import Settings
from workers.notifications.channels import (
    EmailSender,
    InvalidPhoneNumber,
    PermanentDeliveryError,
    SmsSender,
    TransientDeliveryError,
)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": environment.SMTP_HOST,
        "smtp_port": environment.SMTP_PORT,
        "smtp_from": "Agora <no-reply@shop.example>",
        "smtp_timeout_seconds": 5,
        "twilio_api_url": environment.SMS_SANDBOX_URL,
        "twilio_account_sid": environment.TWILIO_ACCOUNT_SID,
        "twilio_auth_token": environment.TWILIO_AUTH_TOKEN,
        "twilio_from_number": "+15005550006",
        "twilio_timeout_seconds": 5,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def new_number() -> str:
    """A valid US number of the fictional 555-01xx range (for calls that never reach the sandbox)."""
    return f"+1415555{random.randint(100, 199):04d}"


async def unused_number(http: aiohttp.ClientSession) -> str:
    """A number of that range the sandbox holds no message for: the sandbox is shared by the
    whole suite, and other tests' members (with numbers of the same range) get texts too."""
    for _ in range(200):
        to = new_number()
        if not await sandbox_messages(http, to):
            return to
    raise AssertionError("every 555-01xx number already has messages in the SMS sandbox")


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def sms(sms_sandbox: processes.Process) -> AsyncIterator[SmsSender]:
    async with SmsSender(make_settings()) as sender:
        yield sender


async def sink_message(http: aiohttp.ClientSession, to: str) -> dict[str, Any]:
    """The one message the SMTP sink received for `to`, in full."""
    for _ in range(50):
        async with http.get(f"{environment.SMTP_SINK_URL}/messages", params={"to": to}) as resp:
            found = await resp.json()
        if found:
            assert len(found) == 1, found
            async with http.get(f"{environment.SMTP_SINK_URL}/messages/{found[0]['id']}") as resp:
                message: dict[str, Any] = await resp.json()
                return message
        await asyncio.sleep(0.1)
    raise AssertionError(f"no message to {to} reached the sink")


async def sandbox_messages(http: aiohttp.ClientSession, to: str) -> list[dict[str, Any]]:
    async with http.get(f"{environment.SMS_SANDBOX_URL}/sandbox/messages", params={"to": to}) as resp:
        assert resp.status == 200
        messages: list[dict[str, Any]] = await resp.json()
        return messages


async def outage(http: aiohttp.ClientSession, failures: int, status: int = 503) -> None:
    async with http.post(
        f"{environment.SMS_SANDBOX_URL}/sandbox/outage", json={"failures": failures, "status": status}
    ) as resp:
        assert resp.status == 200, await resp.text()


# Email


async def test_an_email_arrives_with_text_html_and_the_callers_message_id(http: aiohttp.ClientSession) -> None:
    sender = EmailSender(make_settings())
    to = f"channels-{uuid.uuid4().hex[:12]}@example.com"
    message_id = sender.message_id(f"notification-{uuid.uuid4()}")

    sent = await sender.send(
        to,
        "Votre commande est confirmée ✓",
        "Hello,\nyour order is confirmed.\n",
        "<p>Hello,<br>your order is <b>confirmed</b>.</p>\n",
        message_id=message_id,
    )

    assert sent == message_id
    message = await sink_message(http, to)
    assert message["to"] == [to]
    assert message["from"] == "no-reply@shop.example"
    assert message["subject"] == "Votre commande est confirmée ✓"
    assert message["headers"]["Message-ID"] == message_id
    assert message["headers"]["From"] == "Agora <no-reply@shop.example>"
    assert message["headers"]["Content-Type"].startswith("multipart/alternative")
    assert "Date" in message["headers"]
    assert message["text"] == "Hello,\nyour order is confirmed.\n"
    assert message["html"] == "<p>Hello,<br>your order is <b>confirmed</b>.</p>\n"


async def test_an_email_without_html_is_plain_text(http: aiohttp.ClientSession) -> None:
    sender = EmailSender(make_settings())
    to = f"channels-{uuid.uuid4().hex[:12]}@example.com"

    sent = await sender.send(to, "Plain", "Just text.\n", None, message_id=f"{uuid.uuid4()}@shop.example")

    message = await sink_message(http, to)
    assert message["headers"]["Message-ID"] == sent
    assert sent.startswith("<") and sent.endswith("@shop.example>")
    assert message["headers"]["Content-Type"].startswith("text/plain")
    assert message["text"] == "Just text.\n" and message["html"] is None


async def test_no_smtp_server_is_a_transient_error() -> None:
    sender = EmailSender(make_settings(smtp_port=closed_port()))
    with pytest.raises(TransientDeliveryError):
        await sender.send("a@example.com", "Hi", "text", None, message_id="<down@shop.example>")


class Refusing:
    """An SMTP server that refuses some recipients, as a real relay does."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        if address.startswith("busy@"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 Message accepted"


@pytest.fixture(scope="module")
def refusing_relay() -> Iterator[int]:
    controller = Controller(Refusing(), hostname="127.0.0.1", port=closed_port(), server_hostname="refusing")
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


async def test_a_recipient_refused_for_good_is_permanent_and_for_now_transient(refusing_relay: int) -> None:
    sender = EmailSender(make_settings(smtp_port=refusing_relay))
    with pytest.raises(PermanentDeliveryError, match="550"):
        await sender.send("nobody@example.com", "Hi", "text", None, message_id="<a@shop.example>")
    with pytest.raises(TransientDeliveryError, match="451"):
        await sender.send("busy@example.com", "Hi", "text", None, message_id="<b@shop.example>")
    assert await sender.send("ok@example.com", "Hi", "text", None, message_id="<c@shop.example>") == "<c@shop.example>"


# SMS


async def test_an_sms_reaches_the_sandbox_and_its_sid_comes_back(sms: SmsSender, http: aiohttp.ClientSession) -> None:
    to = await unused_number(http)

    sid = await sms.send(to.replace("+1", "+1 "), "Your order 1234 has shipped.")

    assert sid.startswith("SM") and len(sid) == 34
    [message] = await sandbox_messages(http, to)
    assert message["sid"] == sid
    assert message["to"] == to
    assert message["from"] == "+15005550006"
    assert message["body"] == "Your order 1234 has shipped."
    assert message["status"] == "queued" and message["direction"] == "outbound-api"
    assert message["account_sid"] == environment.TWILIO_ACCOUNT_SID


async def test_the_sandbox_answers_the_twilio_client_as_twilio_does(
    sms: SmsSender, http: aiohttp.ClientSession
) -> None:
    """Fetch, list and a refused request, through the library's own calls."""
    to = await unused_number(http)
    sid = await sms.send(to, "Fetch me")
    async with AsyncTwilioHttpClient() as transport:
        client = Client(environment.TWILIO_ACCOUNT_SID, environment.TWILIO_AUTH_TOKEN, http_client=transport)
        client.api.base_url = environment.SMS_SANDBOX_URL

        fetched = await client.messages(sid).fetch_async()
        assert (fetched.sid, fetched.to, fetched.body, fetched.num_segments) == (sid, to, "Fetch me", "1")
        assert fetched.date_created is not None and fetched.error_code is None

        listed = await client.messages.list_async(to=to, limit=10)
        assert [m.sid for m in listed] == [sid]

        with pytest.raises(TwilioRestException) as raised:
            await client.messages.create_async(to="+1555", from_="+15005550006", body="x")
        assert (raised.value.status, raised.value.code) == (400, 21211)

        with pytest.raises(TwilioRestException) as raised:
            await client.messages("SM" + "0" * 32).fetch_async()
        assert (raised.value.status, raised.value.code) == (404, 20404)


async def test_an_outage_is_transient_and_the_next_call_goes_through(
    sms: SmsSender, http: aiohttp.ClientSession
) -> None:
    to = await unused_number(http)
    await outage(http, failures=1, status=503)
    with pytest.raises(TransientDeliveryError, match="503"):
        await sms.send(to, "Try again")
    await outage(http, failures=1, status=429)
    with pytest.raises(TransientDeliveryError, match="429"):
        await sms.send(to, "Try again")

    sid = await sms.send(to, "Try again")

    assert [m["sid"] for m in await sandbox_messages(http, to)] == [sid]


async def test_an_invalid_number_is_permanent_and_never_sent(sms: SmsSender, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{environment.SMS_SANDBOX_URL}/sandbox/messages") as resp:
        before = len(await resp.json())
    for number in ("+1555", "4155550123", "+1 415 555 01"):
        with pytest.raises(InvalidPhoneNumber):
            await sms.send(number, "Hello")
    async with http.get(f"{environment.SMS_SANDBOX_URL}/sandbox/messages") as resp:
        assert len(await resp.json()) == before


async def test_a_message_the_provider_refuses_is_permanent(sms: SmsSender) -> None:
    with pytest.raises(PermanentDeliveryError, match="21602"):
        await sms.send(new_number(), "")
    with pytest.raises(PermanentDeliveryError, match="21617"):
        await sms.send(new_number(), "x" * 1601)


async def test_refused_credentials_are_transient(sms_sandbox: processes.Process) -> None:
    """The fault is Agora's configuration: the messages wait for an operator's fix."""
    async with SmsSender(make_settings(twilio_auth_token="wrong")) as sender:
        with pytest.raises(TransientDeliveryError, match="401"):
            await sender.send(new_number(), "Hello")


async def test_no_sms_provider_is_a_transient_error() -> None:
    async with SmsSender(make_settings(twilio_api_url=f"http://127.0.0.1:{closed_port()}")) as sender:
        with pytest.raises(TransientDeliveryError):
            await sender.send(new_number(), "Hello")
