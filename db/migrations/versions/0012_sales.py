"""Orders: the sales report's projection, `orders.sales`.

One row per line of a confirmed order, kept from the orders service's own
`order_confirmed` / `order_cancelled` events. Orders confirmed before this migration
are filled in from the order history, so the report covers them too.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from db.migrations.helpers import fill_sales

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sales",
        sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("product_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("seller_id", UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("confirmed_at", _TS, nullable=False),
        sa.Column("cancelled_at", _TS),
        schema="orders",
    )
    op.create_index("ix_sales_seller", "sales", ["seller_id", "confirmed_at"], schema="orders")
    op.create_index("ix_sales_confirmed", "sales", ["confirmed_at"], schema="orders")
    fill_sales()


def downgrade() -> None:
    op.drop_table("sales", schema="orders")
