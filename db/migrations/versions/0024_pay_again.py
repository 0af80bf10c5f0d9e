"""Orders: a failed payment can be paid again; the cart leaves with the confirmation (issue 18).

- `orders.orders.pay_by`: the end of the pay-again window once an order's payment failed
  (the API's `payment_due_by`; null before, and for every order placed before this migration).
- `orders.orders.from_cart`: the order was placed from the member's cart, whose ordered
  lines leave it when the order is confirmed (false for the orders already placed: their
  carts were emptied when they were placed).
- `orders.order_history`: each entry keeps the payment's status, the cancel reason and
  the pay-again window's end as they were then, for the order's event stream; null in
  the entries already written.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("pay_by", sa.DateTime(timezone=True)), schema="orders")
    op.add_column(
        "orders",
        sa.Column("from_cart", sa.Boolean, nullable=False, server_default=sa.text("false")),
        schema="orders",
    )
    for column in _history_columns():
        op.add_column("order_history", column, schema="orders")


def _history_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("payment_status", sa.String(16)),
        sa.Column("cancel_reason", sa.String(32)),
        sa.Column("payment_due_by", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    for column in _history_columns():
        op.drop_column("order_history", column.name, schema="orders")
    op.drop_column("orders", "from_cart", schema="orders")
    op.drop_column("orders", "pay_by", schema="orders")
