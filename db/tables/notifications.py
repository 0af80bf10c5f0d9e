"""The notifications service's schema: templates, preferences, delivery records and the
read models notices are made from."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from db.tables.base import messaging_tables

notifications_metadata = MetaData(schema="notifications")
notifications_outbox, notifications_inbox = messaging_tables(notifications_metadata)

# One row per (key, channel): the worker seeds the defaults of its catalogue
# (workers/notifications/templates.py) at start; admins edit them.
notification_templates = Table(
    "templates",
    notifications_metadata,
    Column("key", String(64), primary_key=True),
    Column("channel", String(8), primary_key=True),
    Column("subject", Text),
    Column("text", Text, nullable=False),
    Column("html", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", UUID(as_uuid=True)),
)

# A user without a row has the defaults: everything optional off.
notification_preferences = Table(
    "preferences",
    notifications_metadata,
    Column("user_id", UUID(as_uuid=True), primary_key=True),
    Column("sms_orders", Boolean, nullable=False, server_default=text("false")),
    Column("sms_security", Boolean, nullable=False, server_default=text("false")),
    Column("marketing_email", Boolean, nullable=False, server_default=text("false")),
    Column("marketing_sms", Boolean, nullable=False, server_default=text("false")),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One row per (triggering event, channel, recipient), written before the provider is
# called: a redelivered event finds it and never sends twice. No addresses or bodies.
deliveries = Table(
    "deliveries",
    notifications_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("recipient_id", UUID(as_uuid=True), nullable=False),
    Column("template", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("provider_id", String(128)),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    UniqueConstraint("event_id", "channel", "recipient_id", name="uq_deliveries_event_channel_recipient"),
    CheckConstraint("status IN ('pending', 'sent', 'failed', 'skipped')", name="ck_deliveries_status"),
    Index("ix_deliveries_recipient", "recipient_id", "id"),
)

# Read model of orders.order_placed.v1: whose order it is and what it holds, for the
# events that carry only the order id (refunds, shipping, ...). What the total is made of
# (minor units; `taxes` as the event's, amounts as decimal strings): `subtotal_minor` 0 is
# an order placed before the event carried it, whose notices show items and total only.
notification_orders = Table(
    "orders",
    notifications_metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("items", JSONB, nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("subtotal_minor", BigInteger, nullable=False, server_default=text("0")),
    Column("discount_minor", BigInteger, nullable=False, server_default=text("0")),
    Column("voucher_code", Text),
    Column("shipping_minor", BigInteger, nullable=False, server_default=text("0")),
    Column("shipping_method", Text),
    Column("tax_minor", BigInteger, nullable=False, server_default=text("0")),
    Column("taxes", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("prices_include_tax", Boolean, nullable=False, server_default=text("false")),
    Index("ix_notification_orders_user", "user_id"),
)

# Read model of catalog events: a product's name and seller, for low-stock notices.
# `updated_at` is the event's time; an older event never overwrites a newer one.
notification_products = Table(
    "products",
    notifications_metadata,
    Column("product_id", UUID(as_uuid=True), primary_key=True),
    Column("seller_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Read model of catalog events: each variant's label ("M / Red", "" for a product's
# default variant) and SKU, for low-stock notices. A withdrawn variant keeps its row:
# a notice about it may still come. Newer-wins by `updated_at`, as for products.
notification_variants = Table(
    "variants",
    notifications_metadata,
    Column("variant_id", UUID(as_uuid=True), primary_key=True),
    Column("product_id", UUID(as_uuid=True), nullable=False),
    Column("label", Text, nullable=False),
    Column("sku", String(64)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The client fingerprints (SHA-256, not reversible) each user signed in from: a
# sign-in from one not seen before gets a security notice.
sign_in_fingerprints = Table(
    "sign_in_fingerprints",
    notifications_metadata,
    Column("user_id", UUID(as_uuid=True), primary_key=True),
    Column("fingerprint", String(64), primary_key=True),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
)
