"""The payments service's schema: one payment per order and the record of every step."""

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
)
from sqlalchemy.dialects.postgresql import UUID

from db.tables.base import messaging_tables

payments_metadata = MetaData(schema="payments")
payments_outbox, payments_inbox = messaging_tables(payments_metadata)

# One payment per order: where its authorization stands at the provider. No card data:
# the provider's authorization id is the only reference kept.
payments = Table(
    "payments",
    payments_metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("authorization_id", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # What has been refunded so far (partial refunds, issue 18); `refunded` once all of it.
    Column("amount_refunded_minor", BigInteger, nullable=False, server_default="0"),
    # The provider's own view, from its signed webhook events (issue 19): its last status
    # of the payment intent, when that event was made, and a disagreement with ours, if any.
    Column("provider_status", String(32)),
    Column("provider_status_at", DateTime(timezone=True)),
    Column("provider_disagreement", Text),
    CheckConstraint(
        "status IN ('unknown', 'authorized', 'declined', 'captured', 'voided', 'refunded')",
        name="ck_payments_status",
    ),
    CheckConstraint("amount_minor >= 0", name="ck_payments_amount_not_negative"),
    CheckConstraint(
        "amount_refunded_minor >= 0 AND amount_refunded_minor <= amount_minor", name="ck_payments_refunded_in_range"
    ),
)

# Every refund made, under the idempotency key it was asked with: the same key again is
# the same refund, never a second one.
payment_refunds = Table(
    "refunds",
    payments_metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("idempotency_key", String(200), primary_key=True),
    Column("amount_minor", BigInteger, nullable=False),
    # What the refund is for (`return:<uuid>`), as the command gave it.
    Column("reference", String(200)),
    Column("provider_refund_id", String(64)),
    Column("at", DateTime(timezone=True), nullable=False),
    CheckConstraint("amount_minor > 0", name="ck_refunds_amount_positive"),
)

# Every webhook event the provider sent, once (by its id): what it said, and when.
provider_events = Table(
    "provider_events",
    payments_metadata,
    Column("event_id", String(255), primary_key=True),
    Column("type", String(64), nullable=False),
    # The payment intent (or refund, charge) the event is about, and its order, if it has one.
    Column("object_id", String(255)),
    Column("order_id", UUID(as_uuid=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("ix_provider_events_order", "order_id"),
)

# Every payment step handled, append-only: the audit trail of what was asked and answered.
payment_attempts = Table(
    "payment_attempts",
    payments_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("order_id", UUID(as_uuid=True), nullable=False),
    # authorize, capture, void, refund
    Column("step", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text),
    # False: answered from the payment as it stood, without calling the provider.
    Column("called_provider", Boolean, nullable=False),
    Column("provider_reference", String(64)),
    Column("correlation_id", String(128)),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_payment_attempts_order", "order_id", "id"),
)
