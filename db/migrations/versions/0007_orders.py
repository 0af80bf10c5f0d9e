"""Orders: orders with their saga state, their lines and their status history.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("placed_by", UUID(as_uuid=True), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total_minor", sa.BigInteger, nullable=False),
        sa.Column("shipping_address_enc", sa.Text, nullable=False),
        sa.Column("shipping_address_key_id", sa.String(32), nullable=False),
        sa.Column("payment_token", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cancel_reason", sa.String(32)),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("deadline", _TS),
        sa.Column("reservation", sa.String(16), nullable=False),
        sa.Column("payment", sa.String(16), nullable=False),
        sa.Column("authorized_at", _TS),
        sa.Column("voided_at", _TS),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'shipped', 'delivered', 'cancelled')", name="ck_orders_status"
        ),
        sa.CheckConstraint("total_minor > 0", name="ck_orders_total_positive"),
        schema="orders",
    )
    op.create_index("ix_orders_user", "orders", ["user_id", "created_at", "order_id"], schema="orders")
    op.create_index(
        "ix_orders_deadline", "orders", ["deadline"], schema="orders", postgresql_where=sa.text("step != 'done'")
    )
    op.create_table(
        "order_lines",
        sa.Column("order_id", UUID(as_uuid=True), sa.ForeignKey("orders.orders.order_id"), primary_key=True),
        sa.Column("product_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("seller_id", UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger, nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_order_lines_quantity_positive"),
        schema="orders",
    )
    op.create_index("ix_order_lines_seller", "order_lines", ["seller_id"], schema="orders")
    op.create_table(
        "order_history",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("order_id", UUID(as_uuid=True), sa.ForeignKey("orders.orders.order_id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", _TS, nullable=False),
        schema="orders",
    )
    op.create_index("ix_order_history_order", "order_history", ["order_id", "id"], schema="orders")


def downgrade() -> None:
    for table in ("order_history", "order_lines", "orders"):
        op.drop_table(table, schema="orders")
