"""Orders: shipping methods, managed by admins (issue 18).

- `orders.shipping_methods`: name, countries served, prices and free-shipping
  thresholds per currency (minor units), delivery estimate in days; soft-deleted.
- `orders.orders` keeps the method chosen at checkout as it was then: its id, name,
  price charged and delivery estimate (all null for an order without shipping, as every
  order placed before has); and the parcel's tracking number and carrier once shipped.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shipping_methods",
        sa.Column("method_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("countries", ARRAY(sa.String(2)), nullable=False),
        sa.Column("prices", JSONB, nullable=False),
        sa.Column("free_from", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("min_days", sa.Integer, nullable=False),
        sa.Column("max_days", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("min_days <= max_days", name="shipping_days_ordered"),
        schema="orders",
    )
    for column in _order_columns():
        op.add_column("orders", column, schema="orders")


def _order_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("shipping_method_id", UUID(as_uuid=True)),
        sa.Column("shipping_name", sa.Text),
        sa.Column("shipping_minor", sa.BigInteger),
        sa.Column("shipping_min_days", sa.Integer),
        sa.Column("shipping_max_days", sa.Integer),
        sa.Column("tracking_number", sa.String(64)),
        sa.Column("carrier", sa.String(64)),
    )


def downgrade() -> None:
    for column in _order_columns():
        op.drop_column("orders", column.name, schema="orders")
    op.drop_table("shipping_methods", schema="orders")
