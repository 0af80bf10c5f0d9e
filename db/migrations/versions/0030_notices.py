"""Notices for the new moments of an order (issue 18): shipped with tracking, and the
confirmation's receipt (subtotal, discount, shipping, tax lines).

`orders.order_shipped` events carry the parcel's tracking number and carrier, and the
`order_shipped` templates (email and SMS) show them, with a link to the carrier's
tracking page where one is known. `orders.order_placed` carries what the total is made
of, kept in the notifications' order read model (new columns; an order placed before
has none: its notices show items and total, as before), and the `order_confirmed`
email lists it. Their stored defaults (rows nobody edited, `updated_by` null) are
dropped, so the notifications worker seeds the new defaults at its next start, as
migration 0021 did for `low_stock`. An admin's edit stays as it is: it renders as
before, and may use the new variables.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

# The templates whose defaults changed here (the order_confirmed SMS did not: reseeding it is harmless).
_RESEEDED = "key IN ('order_shipped', 'order_confirmed') AND updated_by IS NULL"
_AMOUNTS = ("subtotal_minor", "discount_minor", "shipping_minor", "tax_minor")


def upgrade() -> None:
    for name in _AMOUNTS:
        op.add_column(
            "orders",
            sa.Column(name, sa.BigInteger, nullable=False, server_default=sa.text("0")),
            schema="notifications",
        )
    op.add_column("orders", sa.Column("voucher_code", sa.Text), schema="notifications")
    op.add_column("orders", sa.Column("shipping_method", sa.Text), schema="notifications")
    op.add_column(
        "orders",
        sa.Column("taxes", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        schema="notifications",
    )
    op.add_column(
        "orders",
        sa.Column("prices_include_tax", sa.Boolean, nullable=False, server_default=sa.text("false")),
        schema="notifications",
    )
    op.execute(f"DELETE FROM notifications.templates WHERE {_RESEEDED}")


def downgrade() -> None:
    # The new defaults use variables (`tracking_number`, `subtotal`, …) an older worker does not give.
    op.execute(f"DELETE FROM notifications.templates WHERE {_RESEEDED}")
    for name in (*_AMOUNTS, "voucher_code", "shipping_method", "taxes", "prices_include_tax"):
        op.drop_column("orders", name, schema="notifications")
