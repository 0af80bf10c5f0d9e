"""Notification contracts: preferences per user and channel, and the message templates.

The notifications worker sends email and SMS on events of the other services
(welcome, order confirmed/cancelled/shipped/delivered, refunds, low stock for the
seller, security notices). What it sends is rendered from templates kept in its own
schema (admins list, preview and edit them); to whom and on which channel follows
each user's preferences: transactional messages (orders, security) go by email
always, SMS and marketing only with consent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, StrictBool

from contracts.base import Contract
from contracts.privacy import export_spec
from contracts.topology import CommandSpec

Channel = Literal["email", "sms"]
# What a message is about: decides whether consent is needed. Transactional
# categories go by email whatever the preferences say.
Category = Literal["account", "orders", "security", "seller", "marketing"]
# Sent by email whatever the preferences say (no consent needed: the user asked for the
# account, the order, or must hear about their account's security).
TRANSACTIONAL: tuple[Category, ...] = ("account", "orders", "security", "seller")
TemplateKey = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{1,63}$",
        description="The template's name, e.g. `order_confirmed`",
        examples=["order_confirmed"],
    ),
]
MAX_SUBJECT = 200
MAX_BODY = 20_000


# --- preferences ------------------------------------------------------------------------------


class NotificationPreferences(Contract):
    """A user's choices. Email for orders and security is always on (transactional)."""

    # StrictBool: `true`/`false`, not 0, 1 or "yes", as the documents say.
    sms_orders: StrictBool = Field(default=False, description="Order updates by SMS too (needs a phone number)")
    sms_security: StrictBool = Field(default=False, description="Security notices by SMS too")
    marketing_email: StrictBool = Field(default=False, description="News and offers by email")
    marketing_sms: StrictBool = Field(default=False, description="News and offers by SMS")


class GetNotificationPreferences(Contract):
    user_id: UUID


class SetNotificationPreferences(Contract):
    """Replace the user's preferences (self or admin)."""

    user_id: UUID
    preferences: NotificationPreferences


class NotificationPreferencesView(Contract):
    user_id: UUID
    preferences: NotificationPreferences
    email_always: tuple[Category, ...] = Field(
        description="Categories sent by email whatever the preferences (transactional)",
        examples=[["account", "orders", "security", "seller"]],
    )
    updated_at: datetime | None = Field(description="When the user last changed them; null: never (the defaults)")


# --- templates -----------------------------------------------------------------------------------


class TemplateBody(Contract):
    """A template's editable parts, Jinja2 (sandboxed) with the variables its event provides."""

    subject: str | None = Field(
        default=None, max_length=MAX_SUBJECT, description="Email subject (email templates only)"
    )
    text: str = Field(min_length=1, max_length=MAX_BODY, description="Plain-text body (the SMS text for SMS)")
    html: str | None = Field(default=None, max_length=MAX_BODY, description="HTML body (email templates only)")


class TemplateView(Contract):
    key: TemplateKey
    channel: Channel
    category: Category
    description: str = Field(description="When it is sent")
    variables: tuple[str, ...] = Field(description="The variables a template may use")
    body: TemplateBody
    updated_at: datetime | None = Field(description="When it was stored (seeded) or an admin last edited it")
    updated_by: UUID | None = Field(description="The admin who last edited it; null: the seeded default")


class TemplateList(Contract):
    items: tuple[TemplateView, ...]


class ListTemplates(Contract):
    """Every template (admins)."""


class GetTemplate(Contract):
    key: TemplateKey
    channel: Channel


class SetTemplate(Contract):
    """Replace a template's body; refused (422) if it does not render with sample data."""

    key: TemplateKey
    channel: Channel
    body: TemplateBody


class PreviewTemplate(Contract):
    """Render a body (the stored one when `body` is absent) with sample data, without saving."""

    key: TemplateKey
    channel: Channel
    body: TemplateBody | None = None


class RenderedMessage(Contract):
    subject: str | None
    text: str
    html: str | None


GET_NOTIFICATION_PREFERENCES = CommandSpec(
    "notifications",
    "get_preferences",
    1,
    GetNotificationPreferences,
    NotificationPreferencesView,
    kind="query",
    requires_actor=True,
    summary="A user's notification preferences (self or admin).",
)
SET_NOTIFICATION_PREFERENCES = CommandSpec(
    "notifications",
    "set_preferences",
    1,
    SetNotificationPreferences,
    NotificationPreferencesView,
    requires_actor=True,
    summary="Replace a user's notification preferences (self or admin).",
)
LIST_TEMPLATES = CommandSpec(
    "notifications",
    "list_templates",
    1,
    ListTemplates,
    TemplateList,
    kind="query",
    requires_actor=True,
    summary="Every notification template (admins).",
)
GET_TEMPLATE = CommandSpec(
    "notifications",
    "get_template",
    1,
    GetTemplate,
    TemplateView,
    kind="query",
    requires_actor=True,
    summary="One notification template (admins).",
)
SET_TEMPLATE = CommandSpec(
    "notifications",
    "set_template",
    1,
    SetTemplate,
    TemplateView,
    requires_actor=True,
    summary="Edit a notification template; one that does not render is refused (admins).",
)
PREVIEW_TEMPLATE = CommandSpec(
    "notifications",
    "preview_template",
    1,
    PreviewTemplate,
    RenderedMessage,
    kind="query",
    requires_actor=True,
    summary="Render a template with sample data, without saving (admins).",
)
EXPORT_NOTIFICATION_DATA = export_spec("notifications")

COMMANDS: tuple[CommandSpec, ...] = (
    GET_NOTIFICATION_PREFERENCES,
    SET_NOTIFICATION_PREFERENCES,
    LIST_TEMPLATES,
    GET_TEMPLATE,
    SET_TEMPLATE,
    PREVIEW_TEMPLATE,
    EXPORT_NOTIFICATION_DATA,
)
