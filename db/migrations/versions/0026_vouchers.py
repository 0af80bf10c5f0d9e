"""Vouchers and promotions (issue 18).

- `orders.vouchers`: a code (kept upper-case, unique), a percentage or amounts per
  currency, a minimum spend per currency, a validity window, total and per-customer
  limits, the categories and sellers it is limited to, an active flag, and `uses` (the
  orders holding a use: reserved or redeemed), which a checkout takes with a conditional
  update.
- `orders.voucher_uses`: one row per order that took a use, reserved at placement,
  redeemed at confirmation, released when the order is cancelled.
- `orders.orders.voucher_code`: the code an order was placed with (null: none, as for
  every order placed before).
- `orders.products.category`: the product's category slug, for vouchers limited to
  categories (null for products listed before until the catalog next says).
- `orders.sales.discount_minor`: a line's share of the voucher's discount, so the sales
  report's revenue is what was sold for (0 for every sale before).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vouchers",
        sa.Column("voucher_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("percent", sa.Numeric(7, 4)),
        sa.Column("amounts", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("min_spend", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("starts_at", sa.DateTime(timezone=True)),
        sa.Column("ends_at", sa.DateTime(timezone=True)),
        sa.Column("usage_limit", sa.Integer),
        sa.Column("per_customer_limit", sa.Integer),
        sa.Column("categories", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("sellers", ARRAY(UUID(as_uuid=True)), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("uses", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("code", name="uq_vouchers_code"),
        sa.CheckConstraint("uses >= 0", name="ck_vouchers_uses"),
        schema="orders",
    )
    op.create_table(
        "voucher_uses",
        sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("voucher_id", UUID(as_uuid=True), sa.ForeignKey("orders.vouchers.voucher_id"), nullable=False),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("discount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("state IN ('reserved', 'redeemed', 'released')", name="ck_voucher_uses_state"),
        schema="orders",
    )
    op.create_index("ix_voucher_uses_customer", "voucher_uses", ["voucher_id", "user_id"], schema="orders")
    op.add_column("orders", sa.Column("voucher_code", sa.String(32)), schema="orders")
    op.add_column("products", sa.Column("category", sa.Text), schema="orders")
    op.add_column(
        "sales",
        sa.Column("discount_minor", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        schema="orders",
    )


def downgrade() -> None:
    op.drop_column("sales", "discount_minor", schema="orders")
    op.drop_column("products", "category", schema="orders")
    op.drop_column("orders", "voucher_code", schema="orders")
    op.drop_index("ix_voucher_uses_customer", table_name="voucher_uses", schema="orders")
    op.drop_table("voucher_uses", schema="orders")
    op.drop_table("vouchers", schema="orders")
