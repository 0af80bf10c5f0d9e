"""Taxes (issue 18): rates by country (and region) and product tax class, whether a
currency's prices include tax, and an order's tax as computed at placement.

- `catalog.products.tax_class` and the orders service's copy, `orders.products.tax_class`
  (`standard` for every product listed before).
- `orders.tax_rates` (one per country, region — `''` for the whole country — and class)
  and `orders.currency_tax`.
- `orders.orders`: `prices_include_tax`, `shipping_tax_minor` and `tax_lines` (the tax per
  rate); orders placed before carry none. The sales projection keeps each line's tax.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def _tax_class() -> sa.Column[str]:
    return sa.Column("tax_class", sa.String(32), nullable=False, server_default=sa.text("'standard'"))


def _order_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("prices_include_tax", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("shipping_tax_minor", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("tax_lines", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    )


def upgrade() -> None:
    op.add_column("products", _tax_class(), schema="catalog")
    op.add_column("products", _tax_class(), schema="orders")
    for column in _order_columns():
        op.add_column("orders", column, schema="orders")
    op.add_column(
        "sales", sa.Column("tax_minor", sa.BigInteger, nullable=False, server_default=sa.text("0")), schema="orders"
    )
    op.create_table(
        "tax_rates",
        sa.Column("rate_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("region", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("tax_class", sa.String(32), nullable=False),
        sa.Column("rate", sa.Numeric(7, 4), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("country", "region", "tax_class", name="uq_tax_rates_place_class"),
        schema="orders",
    )
    op.create_table(
        "currency_tax",
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("prices_include_tax", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema="orders",
    )


def downgrade() -> None:
    op.drop_table("currency_tax", schema="orders")
    op.drop_table("tax_rates", schema="orders")
    op.drop_column("sales", "tax_minor", schema="orders")
    for column in _order_columns():
        op.drop_column("orders", column.name, schema="orders")
    op.drop_column("products", "tax_class", schema="orders")
    op.drop_column("products", "tax_class", schema="catalog")
