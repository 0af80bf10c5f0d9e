"""Notifications: templates, preferences, deliveries and the worker's read models.

Templates hold only the edited ones (defaults live in code). Deliveries are one row per
(event, channel, recipient), the key that makes sending idempotent. Orders, products
and sign-in fingerprints are read models built from other services' events.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from db.migrations.helpers import create_messaging_tables, drop_messaging_tables

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_FALSE = sa.text("false")


def upgrade() -> None:
    create_messaging_tables("notifications")
    op.create_table(
        "templates",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(8), primary_key=True),
        sa.Column("subject", sa.Text),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("html", sa.Text),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by", UUID(as_uuid=True)),
        schema="notifications",
    )
    op.create_table(
        "preferences",
        sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("sms_orders", sa.Boolean, nullable=False, server_default=_FALSE),
        sa.Column("sms_security", sa.Boolean, nullable=False, server_default=_FALSE),
        sa.Column("marketing_email", sa.Boolean, nullable=False, server_default=_FALSE),
        sa.Column("marketing_sms", sa.Boolean, nullable=False, server_default=_FALSE),
        sa.Column("updated_at", _TS, nullable=False),
        schema="notifications",
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("recipient_id", UUID(as_uuid=True), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("provider_id", sa.String(128)),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("sent_at", _TS),
        sa.UniqueConstraint("event_id", "channel", "recipient_id", name="uq_deliveries_event_channel_recipient"),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed', 'skipped')", name="ck_deliveries_status"),
        schema="notifications",
    )
    op.create_index("ix_deliveries_recipient", "deliveries", ["recipient_id", "id"], schema="notifications")
    op.create_table(
        "orders",
        sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("total_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("items", JSONB, nullable=False),
        sa.Column("placed_at", _TS, nullable=False),
        schema="notifications",
    )
    op.create_index("ix_notification_orders_user", "orders", ["user_id"], schema="notifications")
    op.create_table(
        "products",
        sa.Column("product_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("seller_id", UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        schema="notifications",
    )
    op.create_table(
        "sign_in_fingerprints",
        sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("first_seen_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        schema="notifications",
    )


def downgrade() -> None:
    for table in ("sign_in_fingerprints", "products", "orders", "deliveries", "preferences", "templates"):
        op.drop_table(table, schema="notifications")
    drop_messaging_tables("notifications")
