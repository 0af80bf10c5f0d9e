"""Returned stock and erased customers.

Inventory: a reservation may end `returned` (its committed stock was put back on sale
when the order was cancelled before shipping). Orders: the saga remembers whether a
cancelled order's stock goes back (`restock`), and an order's shipping address may be
gone (the customer's account was erased; the order stays, for accounting).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_STATUSES = "'reserved', 'failed', 'released', 'expired', 'committed'"


def upgrade() -> None:
    op.drop_constraint("ck_reservations_status", "reservations", schema="inventory", type_="check")
    op.create_check_constraint(
        "ck_reservations_status", "reservations", f"status IN ({_STATUSES}, 'returned')", schema="inventory"
    )
    op.add_column(
        "orders",
        sa.Column("restock", sa.Boolean, nullable=False, server_default=sa.text("false")),
        schema="orders",
    )
    for column in ("shipping_address_enc", "shipping_address_key_id"):
        op.alter_column("orders", column, nullable=True, schema="orders")


def downgrade() -> None:
    # Erased addresses cannot come back: such orders keep an empty sealed value.
    op.execute(
        "UPDATE orders.orders SET shipping_address_enc = '', shipping_address_key_id = '' "
        "WHERE shipping_address_enc IS NULL"
    )
    for column in ("shipping_address_enc", "shipping_address_key_id"):
        op.alter_column("orders", column, nullable=False, schema="orders")
    op.drop_column("orders", "restock", schema="orders")
    op.execute("UPDATE inventory.reservations SET status = 'committed' WHERE status = 'returned'")
    op.drop_constraint("ck_reservations_status", "reservations", schema="inventory", type_="check")
    op.create_check_constraint("ck_reservations_status", "reservations", f"status IN ({_STATUSES})", schema="inventory")
