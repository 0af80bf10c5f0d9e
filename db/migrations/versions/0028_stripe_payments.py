"""Payments: partial refunds (issue 18) and the Stripe-protocol provider's webhook events (issue 19).

- `payments.payments.amount_refunded_minor`: what has been refunded so far; the payments
  already refunded in full get their whole amount.
- `payments.refunds`: every refund made, under its idempotency key (the same key again
  is the same refund). Each full refund made before this migration gets its row, under
  the key it was made with, so a late copy of that command stays one refund.
- `payments.payments.provider_status`, `provider_status_at`, `provider_disagreement`: the
  provider's view of the payment from its signed webhook events, beside ours.
- `payments.provider_events`: each webhook event received, once, by its id.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "payments",
        sa.Column("amount_refunded_minor", sa.BigInteger, nullable=False, server_default="0"),
        schema="payments",
    )
    op.add_column("payments", sa.Column("provider_status", sa.String(32)), schema="payments")
    op.add_column("payments", sa.Column("provider_status_at", sa.DateTime(timezone=True)), schema="payments")
    op.add_column("payments", sa.Column("provider_disagreement", sa.Text), schema="payments")
    op.execute("UPDATE payments.payments SET amount_refunded_minor = amount_minor WHERE status = 'refunded'")
    op.create_check_constraint(
        "ck_payments_refunded_in_range",
        "payments",
        "amount_refunded_minor >= 0 AND amount_refunded_minor <= amount_minor",
        schema="payments",
    )
    op.create_table(
        "refunds",
        sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("idempotency_key", sa.String(200), primary_key=True),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("reference", sa.String(200)),
        sa.Column("provider_refund_id", sa.String(64)),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name="ck_refunds_amount_positive"),
        schema="payments",
    )
    # The first refund the provider was called for, per refunded payment: that refund.
    op.execute(
        """
        INSERT INTO payments.refunds (order_id, idempotency_key, amount_minor, at)
        SELECT DISTINCT ON (a.order_id) a.order_id, a.idempotency_key, p.amount_minor, a.at
        FROM payments.payment_attempts a JOIN payments.payments p USING (order_id)
        WHERE a.step = 'refund' AND a.outcome = 'refunded' AND a.called_provider
          AND p.status = 'refunded' AND p.amount_minor > 0
        ORDER BY a.order_id, a.id
        """
    )
    op.create_table(
        "provider_events",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(255)),
        sa.Column("order_id", UUID(as_uuid=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        schema="payments",
    )
    op.create_index("ix_provider_events_order", "provider_events", ["order_id"], schema="payments")


def downgrade() -> None:
    op.drop_index("ix_provider_events_order", table_name="provider_events", schema="payments")
    op.drop_table("provider_events", schema="payments")
    op.drop_table("refunds", schema="payments")
    op.drop_constraint("ck_payments_refunded_in_range", "payments", schema="payments")
    for column in ("provider_disagreement", "provider_status_at", "provider_status", "amount_refunded_minor"):
        op.drop_column("payments", column, schema="payments")
