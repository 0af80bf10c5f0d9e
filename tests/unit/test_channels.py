"""The pure parts of the notification channels: phone numbers and what an error means."""

from __future__ import annotations

import pytest

from kernel.settings import Settings
from sandboxes.sms_sandbox import segments
from workers.notifications.channels import (
    EmailSender,
    InvalidPhoneNumber,
    PermanentDeliveryError,
    TransientDeliveryError,
    http_error,
    smtp_error,
    validate_e164,
)


def settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("number", "e164"),
    [
        ("+14155550123", "+14155550123"),
        ("+1 (415) 555-0123", "+14155550123"),
        ("+33 6 12 34 56 78", "+33612345678"),
        (" +442079460958 ", "+442079460958"),
    ],
)
def test_an_international_number_comes_back_in_e164(number: str, e164: str) -> None:
    assert validate_e164(number) == e164


@pytest.mark.parametrize(
    "number",
    ["", "hello", "4155550123", "0612345678", "+1555", "+999123456789", "+1415555012345678", "+14155550123 ext"],
)
def test_anything_else_is_a_permanent_error_that_does_not_repeat_the_number(number: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as raised:
        validate_e164(number)
    assert isinstance(raised.value, PermanentDeliveryError)
    assert not number.strip() or number.strip() not in str(raised.value)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 401, 403])
def test_busy_failing_or_refusing_our_credentials_is_worth_a_retry(status: int) -> None:
    assert isinstance(http_error(status, "x"), TransientDeliveryError)


@pytest.mark.parametrize("status", [400, 404, 409, 413, 422])
def test_other_client_errors_are_permanent(status: int) -> None:
    assert isinstance(http_error(status, "x"), PermanentDeliveryError)


@pytest.mark.parametrize("code", [421, 450, 451, 452, 530, 535])
def test_smtp_4xx_and_refused_credentials_are_transient(code: int) -> None:
    assert isinstance(smtp_error(code, "x"), TransientDeliveryError)


@pytest.mark.parametrize("code", [550, 551, 552, 553, 554])
def test_smtp_5xx_is_permanent(code: int) -> None:
    error = smtp_error(code, "mailbox unavailable")
    assert isinstance(error, PermanentDeliveryError)
    assert str(code) in str(error)


def test_the_message_id_is_the_same_for_the_same_key_in_the_senders_domain() -> None:
    sender = EmailSender(settings(smtp_from="Agora <no-reply@shop.example>"))
    assert sender.message_id("n-1") == "<n-1@shop.example>" == sender.message_id("n-1")


def test_a_from_setting_that_is_not_one_address_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="AGORA_SMTP_FROM"):
        EmailSender(settings(smtp_from="nobody"))


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("a@example.com", "Hi\r\nBcc: victim@example.com"),
        ("", "Hi"),
        ("not an address", "Hi"),
        ("a@example.com, b@example.com", "Hi"),
        ("a@b@c", "Hi"),
    ],
)
async def test_a_message_that_cannot_be_one_email_to_one_address_is_never_sent(to: str, subject: str) -> None:
    # Refused while the message is built: a connection (nothing listens on port 9)
    # would be a transient error instead.
    sender = EmailSender(settings(smtp_port=9))
    with pytest.raises(PermanentDeliveryError):
        await sender.send(to, subject, "text", None, message_id="<m@x>")


@pytest.mark.parametrize(
    ("body", "count"),
    [("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3), ("é" * 70, 1), ("é" * 71, 2), ("😀" * 35, 1)],
)
def test_the_sandbox_counts_segments_as_twilio_does(body: str, count: int) -> None:
    assert segments(body) == count
