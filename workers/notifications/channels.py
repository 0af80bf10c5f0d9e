"""The ways a notification leaves Agora: email over SMTP, text messages through Twilio.

`EmailSender` sends through the SMTP relay in AGORA_SMTP_* (the sink, sandboxes/smtp_sink.py,
in development and tests); `SmsSender` through Twilio's Messages API at
AGORA_TWILIO_API_URL with the official client (the sandbox, sandboxes/sms_sandbox.py, in
development and tests).

Both raise one of two errors, because the worker treats them differently:
- `TransientDeliveryError`: worth another try later: no connection, a timeout, the
  provider busy or failing (SMTP 4xx, HTTP 429 and 5xx), and Agora's own configuration
  refused (credentials, sender), which an operator can fix while messages wait;
- `PermanentDeliveryError`: this message can never be delivered as it is: a number that
  is not a phone number, a recipient or content the provider refuses (SMTP 5xx, HTTP 4xx).
Error texts name codes, not recipients: they end up in logs, and phones are personal data.
"""

from __future__ import annotations

import asyncio
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from types import TracebackType

import aiohttp
import aiosmtplib
import phonenumbers
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from kernel.settings import Settings


class DeliveryError(Exception):
    """A message was not handed over to the provider."""


class TransientDeliveryError(DeliveryError):
    """Not delivered this time; the same message may well go through later."""


class PermanentDeliveryError(DeliveryError):
    """Never deliverable as it is: retrying cannot help."""


class InvalidPhoneNumber(PermanentDeliveryError):
    """Not a valid phone number in international (E.164) form."""


def validate_e164(number: str) -> str:
    """The number in E.164 form (`+14155552671`); `InvalidPhoneNumber` if it is none.

    Only international numbers are accepted (a leading + and the country code): there is
    no region to read a national number in."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as err:
        raise InvalidPhoneNumber(f"not a phone number in international form (+ and country code): {err}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("not a valid phone number for its country code")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# Credentials refused: Agora's configuration is wrong, not the message.
_HTTP_OURS = frozenset({401, 403})
_SMTP_OURS = frozenset({530, 534, 535, 538})


def http_error(status: int, detail: str) -> DeliveryError:
    """What an HTTP error answer from a provider means for the message."""
    if status == 429 or status >= 500 or status in _HTTP_OURS:
        return TransientDeliveryError(f"HTTP {status}: {detail}")
    return PermanentDeliveryError(f"HTTP {status}: {detail}")


def smtp_error(code: int, detail: str) -> DeliveryError:
    """What an SMTP reply code refusing a message means for it (RFC 5321: 4xx try again, 5xx never)."""
    if 500 <= code < 600 and code not in _SMTP_OURS:
        return PermanentDeliveryError(f"SMTP {code}: {detail}")
    return TransientDeliveryError(f"SMTP {code}: {detail}")


class EmailSender:
    """Sends one email per call through the configured SMTP relay."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._domain = _address(settings.smtp_from).domain

    def message_id(self, key: str) -> str:
        """A Message-ID made from `key` (a notification id): the same key, the same id,
        so a message sent twice is recognisably one to the recipient's mail system."""
        return f"<{key}@{self._domain}>"

    async def send(self, to: str, subject: str, text: str, html: str | None, *, message_id: str) -> str:
        """Send `text` (and `html` as its alternative) to `to`; returns the Message-ID sent."""
        settings = self._settings
        if not message_id.startswith("<"):
            message_id = f"<{message_id}>"
        message = EmailMessage()
        try:
            message["From"] = settings.smtp_from
            message["To"] = to
            message["Subject"] = subject
            message["Date"] = formatdate(usegmt=True)
            message["Message-ID"] = message_id
        except ValueError as err:  # a line break in a header: never sendable
            raise PermanentDeliveryError(f"the message cannot be built: {err}") from None
        recipients = message["To"].addresses
        if len(recipients) != 1 or not recipients[0].domain:
            raise PermanentDeliveryError("the recipient is not one email address")
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                start_tls=settings.smtp_starttls,
                username=settings.smtp_username or None,
                password=settings.smtp_password.get_secret_value() or None,
                timeout=settings.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as err:
            codes = [refused.code for refused in err.recipients]
            raise smtp_error(min(codes, default=550), "recipient refused") from err
        except aiosmtplib.SMTPSenderRefused as err:
            # Our From address: configuration, not this message.
            raise TransientDeliveryError(f"SMTP {err.code}: sender refused") from err
        except aiosmtplib.SMTPResponseException as err:
            # The server's text may quote the recipient: the code and kind are enough to log.
            raise smtp_error(err.code, type(err).__name__) from err
        except ValueError:  # an address SMTP cannot carry
            raise PermanentDeliveryError("the recipient is not an address SMTP can deliver to") from None
        except (aiosmtplib.SMTPException, OSError) as err:  # refused, timed out, dropped, no STARTTLS
            raise TransientDeliveryError(f"SMTP relay {settings.smtp_host}:{settings.smtp_port}: {err}") from err
        return message_id


class SmsSender:
    """Sends text messages with the twilio client, at AGORA_TWILIO_API_URL.

    Close it (`await sender.close()`, or `async with`) to release its HTTP connections."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._http: AsyncTwilioHttpClient | None = None
        self._client: Client | None = None

    def _twilio(self) -> Client:
        # Made on first use: the HTTP session belongs to the running event loop.
        if self._client is None:
            settings = self._settings
            token = settings.twilio_auth_token.get_secret_value()
            if not settings.twilio_account_sid or not token:
                raise TransientDeliveryError("SMS is not configured: set AGORA_TWILIO_ACCOUNT_SID and _AUTH_TOKEN")
            self._http = AsyncTwilioHttpClient()
            self._client = Client(settings.twilio_account_sid, token, http_client=self._http)
            self._client.api.base_url = settings.twilio_api_url.rstrip("/")
        return self._client

    async def send(self, to: str, body: str) -> str:
        """Send `body` to the phone number `to`; returns Twilio's message sid (`SM…`)."""
        settings = self._settings
        number = validate_e164(to)
        sender = (
            {"messaging_service_sid": settings.twilio_messaging_service_sid}
            if settings.twilio_messaging_service_sid
            else {"from_": settings.twilio_from_number}
        )
        try:
            # The async client ignores its own timeout setting: bound the call here.
            async with asyncio.timeout(settings.twilio_timeout_seconds):
                message = await self._twilio().messages.create_async(to=number, body=body, **sender)
        except TwilioRestException as err:
            raise http_error(err.status, f"Twilio error {err.code}") from err
        except (aiohttp.ClientError, OSError) as err:  # refused, reset, timed out (TimeoutError is an OSError)
            raise TransientDeliveryError(f"Twilio unreachable: {type(err).__name__}") from err
        return str(message.sid)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = self._client = None

    async def __aenter__(self) -> SmsSender:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()


def _address(value: str) -> Address:
    """The one address in a From header value such as `Agora <no-reply@example.com>`."""
    message = EmailMessage()
    message["From"] = value
    addresses = message["From"].addresses
    if len(addresses) != 1 or not addresses[0].domain:
        raise ValueError("AGORA_SMTP_FROM must be one address, like 'Agora <no-reply@example.com>'")
    address: Address = addresses[0]
    return address
