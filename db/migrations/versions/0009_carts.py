"""Carts: guest and member carts and their lines (orders schema).

Also the orders service's product read model (`orders.products`), which carts show
names and prices from and orders are priced from.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("product_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("seller_id", UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("price_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("updated_at", _TS, nullable=False),
        schema="orders",
    )
    op.create_table(
        "carts",
        sa.Column("cart_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", UUID(as_uuid=True), unique=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        schema="orders",
    )
    op.create_index(
        "ix_carts_guest_updated",
        "carts",
        ["updated_at"],
        schema="orders",
        postgresql_where=sa.text("user_id IS NULL"),
    )
    op.create_table(
        "cart_items",
        sa.Column(
            "cart_id",
            UUID(as_uuid=True),
            sa.ForeignKey("orders.carts.cart_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("product_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("added_at", _TS, nullable=False),
        sa.CheckConstraint("quantity BETWEEN 1 AND 99", name="ck_cart_items_quantity"),
        schema="orders",
    )


def downgrade() -> None:
    for table in ("cart_items", "carts", "products"):
        op.drop_table(table, schema="orders")
