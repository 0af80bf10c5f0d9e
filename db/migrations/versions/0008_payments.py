"""Payments: payment attempts and their provider references.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("authorization_id", sa.String(64)),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint(
            "status IN ('unknown', 'authorized', 'declined', 'captured', 'voided', 'refunded')",
            name="ck_payments_status",
        ),
        sa.CheckConstraint("amount_minor >= 0", name="ck_payments_amount_not_negative"),
        schema="payments",
    )
    op.create_table(
        "payment_attempts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("order_id", UUID(as_uuid=True), nullable=False),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("called_provider", sa.Boolean, nullable=False),
        sa.Column("provider_reference", sa.String(64)),
        sa.Column("correlation_id", sa.String(128)),
        sa.Column("at", _TS, nullable=False),
        schema="payments",
    )
    op.create_index("ix_payment_attempts_order", "payment_attempts", ["order_id", "id"], schema="payments")


def downgrade() -> None:
    op.drop_table("payment_attempts", schema="payments")
    op.drop_table("payments", schema="payments")
