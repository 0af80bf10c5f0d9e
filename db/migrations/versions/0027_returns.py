"""Orders: returns and refunds (issue 18).

- `orders.returns`: lines of a delivered order its customer sends back, with a reason,
  from `requested` to `approved` or `refused` (with a note), `received` and `refunded`.
- `orders.return_lines`: per variant, how many go back and (once received) whether they
  go back on sale.
- `orders.refunds`: money given back through the payments service, a return's or an
  admin's direct one: `pending` until the payments service answers, then `refunded` or
  `failed`; the part that is the shipping's; while pending, when to ask again.
- `orders.refund_lines`: what a return's refund gives back per line.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "returns",
        sa.Column("return_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("order_id", UUID(as_uuid=True), sa.ForeignKey("orders.orders.order_id"), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("requested_by", UUID(as_uuid=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("decided_by", UUID(as_uuid=True)),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("received_at", sa.DateTime(timezone=True)),
        sa.Column("refunded_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('requested', 'approved', 'refused', 'received', 'refunded')", name="ck_returns_status"
        ),
        schema="orders",
    )
    op.create_index("ix_returns_order", "returns", ["order_id"], schema="orders")
    op.create_index("ix_returns_user", "returns", ["user_id", "requested_at", "return_id"], schema="orders")
    op.create_index("ix_returns_requested", "returns", ["requested_at", "return_id"], schema="orders")
    op.create_table(
        "return_lines",
        sa.Column("return_id", UUID(as_uuid=True), sa.ForeignKey("orders.returns.return_id"), primary_key=True),
        sa.Column("variant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("product_id", UUID(as_uuid=True), nullable=False),
        sa.Column("seller_id", UUID(as_uuid=True), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("resaleable", sa.Boolean),
        sa.CheckConstraint("quantity > 0", name="ck_return_lines_quantity_positive"),
        schema="orders",
    )
    op.create_index("ix_return_lines_seller", "return_lines", ["seller_id"], schema="orders")
    op.create_table(
        "refunds",
        sa.Column("refund_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("order_id", UUID(as_uuid=True), sa.ForeignKey("orders.orders.order_id"), nullable=False),
        sa.Column("return_id", UUID(as_uuid=True), sa.ForeignKey("orders.returns.return_id")),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("shipping_minor", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("failure", sa.Text),
        sa.Column("requested_by", UUID(as_uuid=True), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True)),
        sa.Column("attempt", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("retry_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('pending', 'refunded', 'failed')", name="ck_refunds_status"),
        sa.CheckConstraint("amount_minor > 0", name="ck_refunds_amount_positive"),
        sa.CheckConstraint("shipping_minor >= 0 AND shipping_minor <= amount_minor", name="ck_refunds_shipping"),
        schema="orders",
    )
    op.create_index("ix_refunds_order", "refunds", ["order_id"], schema="orders")
    op.create_index(
        "ix_refunds_retry", "refunds", ["retry_at"], schema="orders", postgresql_where=sa.text("status = 'pending'")
    )
    op.create_table(
        "refund_lines",
        sa.Column("refund_id", UUID(as_uuid=True), sa.ForeignKey("orders.refunds.refund_id"), primary_key=True),
        sa.Column("variant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_refund_lines_quantity_positive"),
        sa.CheckConstraint("amount_minor >= 0", name="ck_refund_lines_amount"),
        schema="orders",
    )


def downgrade() -> None:
    op.drop_table("refund_lines", schema="orders")
    op.drop_table("refunds", schema="orders")
    op.drop_table("return_lines", schema="orders")
    op.drop_table("returns", schema="orders")
