"""Sending a notice: find the recipient, choose channels (model.py), render, send, record.

Exactly one message per (event, channel, recipient), whatever the broker redelivers:

1. the delivery's record is written, and committed, *before* the provider is called;
   a record already `sent`, `failed` or `skipped` means there is nothing to do;
2. the message is sent; an email's Message-ID is made from the record's id, so a
   second copy is recognisably the same message to the recipient's mail system;
3. the record is marked `sent` (with the provider's id) at once, in its own transaction.

A crash between the provider's acceptance (2) and the mark (3) sends the message again
when the event is redelivered: that window, milliseconds wide, is at-least-once
(docs/decisions.md). A provider that fails for now is tried again through the runtime's
delay queues (`RetryLater`), with exponential backoff, until the delivery has had
`notification_max_attempts` attempts; then it is `failed` and the event dead-lettered.
A provider that refuses the message for good marks it `failed` at once.

Addresses and phone numbers are read from the users service when sending
(`users.get_contact.v1`) and never stored or logged, nor are message bodies.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from prometheus_client import Counter

from contracts.base import Contract
from contracts.errors import Reply
from contracts.notifications import Channel, RenderedMessage
from contracts.topology import CommandSpec
from contracts.users import GET_CONTACT, Contact, GetContact
from kernel.settings import Settings
from workers.notifications import templates
from workers.notifications.channels import (
    EmailSender,
    InvalidPhoneNumber,
    PermanentDeliveryError,
    SmsSender,
    TransientDeliveryError,
    validate_e164,
)
from workers.notifications.model import Notice, Retry, after_transient_failure, channels, skip_reason
from workers.notifications.repository import Deliveries, Delivery, DeliveryKey
from workers.notifications.settings_repository import SettingsRepository
from workers.runtime.context import HandlerContext
from workers.runtime.errors import GiveUp, RetryLater

log = logging.getLogger("agora.notifications")

SENT = Counter("agora_notifications_total", "Notification deliveries, by outcome", ["channel", "template", "outcome"])


class ContactUnavailable(Exception):
    """The users service did not answer who the recipient is (retried like any failure)."""


# Asks another service and waits for the answer (`WorkerService.ask`).
Ask = Callable[[CommandSpec, Contract], Awaitable[Reply]]


class Notifier:
    def __init__(
        self, settings: Settings, email: EmailSender, sms: SmsSender, deliveries: Deliveries, ask: Ask
    ) -> None:
        self._settings = settings
        self._email = email
        self._sms = sms
        self._deliveries = deliveries
        self._ask = ask

    async def notify(self, ctx: HandlerContext, notice: Notice) -> None:
        """Send `notice` on every channel it is due on; raises `RetryLater` or `GiveUp`
        when a channel failed for now (see the module's docstring)."""
        deliveries = self._deliveries
        now = datetime.now(UTC)
        contact = await self._contact(ctx, notice)
        reason = skip_reason(contact)
        if contact is None or reason is not None:
            await deliveries.open(self._key(ctx, notice, "email"), now, status="skipped")
            log.info("notification skipped", extra={**_about(notice), "reason": reason})
            SENT.labels("email", notice.template, "skipped").inc()
            return
        preferences, _ = await SettingsRepository(ctx.session).preferences(notice.recipient_id)
        due = channels(
            notice.category,
            preferences,
            phone_ok=_valid_phone(contact.phone),
            has_sms_template=(notice.template, "sms") in templates.DEFAULTS,
        )
        variables = {"name": contact.username, "shop_name": self._settings.shop_name, **notice.variables}
        retries: list[Retry] = []
        for channel in due:
            delivery = await deliveries.open(self._key(ctx, notice, channel), now)
            if not delivery.done:
                retry = await self._deliver(ctx, deliveries, delivery, notice, channel, contact, variables)
                if retry is not None:
                    retries.append(retry)
        waits = [r for r in retries if r != "give_up"]
        if waits:
            raise RetryLater(f"{notice.template}: a provider failed for now", after=min(waits))
        if retries:
            raise GiveUp(f"{notice.template}: still failing after {self._settings.notification_max_attempts} attempts")

    async def _deliver(
        self,
        ctx: HandlerContext,
        deliveries: Deliveries,
        delivery: Delivery,
        notice: Notice,
        channel: Channel,
        contact: Contact,
        variables: dict[str, object],
    ) -> Retry | None:
        """One attempt; None when done (sent, or failed for good), else when to try again."""
        about = {**_about(notice), "channel": channel, "delivery_id": delivery.id}
        try:
            message = templates.render(await templates.load(ctx.session, notice.template, channel), variables)
            provider_id = await self._send(channel, contact, message, delivery)
        except (PermanentDeliveryError, templates.TemplateError) as err:
            await deliveries.attempt_failed(delivery, _reason(err), datetime.now(UTC), final=True)
            log.warning("notification failed for good", extra={**about, "error": _reason(err)})
            SENT.labels(channel, notice.template, "failed").inc()
            return None
        except TransientDeliveryError as err:
            settings = self._settings
            attempts = delivery.attempts + 1
            retry = after_transient_failure(
                attempts,
                max_attempts=settings.notification_max_attempts,
                base=settings.notification_retry_base_seconds,
                cap=settings.notification_retry_cap_seconds,
            )
            await deliveries.attempt_failed(delivery, _reason(err), datetime.now(UTC), final=retry == "give_up")
            log.warning(
                "notification not sent; will retry" if retry != "give_up" else "notification failed after retries",
                extra={**about, "attempts": attempts, "error": _reason(err)},
            )
            SENT.labels(channel, notice.template, "retry" if retry != "give_up" else "failed").inc()
            return retry
        await deliveries.sent(delivery, provider_id, datetime.now(UTC))
        log.info("notification sent", extra={**about, "attempts": delivery.attempts + 1})
        SENT.labels(channel, notice.template, "sent").inc()
        return None

    async def _send(self, channel: Channel, contact: Contact, message: RenderedMessage, delivery: Delivery) -> str:
        if channel == "sms":
            assert contact.phone is not None  # channels() chose SMS only with a valid phone
            return await self._sms.send(contact.phone, message.text)
        return await self._email.send(
            contact.email,
            message.subject or self._settings.shop_name,
            message.text,
            message.html,
            message_id=self._email.message_id(f"delivery-{delivery.id}"),
        )

    async def _contact(self, ctx: HandlerContext, notice: Notice) -> Contact | None:
        """The recipient's addresses, from the users service; None if there is no such user."""
        reply = await self._ask(GET_CONTACT, GetContact(user_id=notice.recipient_id))
        if reply.ok and reply.data is not None:
            return Contact.model_validate(reply.data)
        if reply.error is not None and reply.error.code == "not_found":
            return None
        raise ContactUnavailable(f"users.get_contact answered {reply.error.code if reply.error else 'nothing'}")

    @staticmethod
    def _key(ctx: HandlerContext, notice: Notice, channel: Channel) -> DeliveryKey:
        return DeliveryKey(ctx.envelope.message_id, channel, notice.recipient_id, notice.template)


def _valid_phone(phone: str | None) -> bool:
    if phone is None:
        return False
    try:
        validate_e164(phone)
    except InvalidPhoneNumber:
        return False
    return True


def _about(notice: Notice) -> dict[str, object]:
    # What a log line may say about a notification: never an address or a body.
    return {"template": notice.template, "recipient_id": str(notice.recipient_id)}


def _reason(err: Exception) -> str:
    # The channels' and templates' errors name codes and parts, never recipients or content.
    return f"{type(err).__name__}: {err}"
