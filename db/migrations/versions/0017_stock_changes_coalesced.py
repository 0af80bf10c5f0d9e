"""Inventory: `stock_changed` is announced once per product per moment (issue 14).

A stock movement marks its row (`change_unannounced`, the movement's kind); the
inventory worker's announcer publishes one `inventory.stock_changed.v1` per marked row
a moment later and clears the mark, in one transaction. Two events per order became
at most one per product per announcement.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("stock", sa.Column("change_unannounced", sa.String(32)), schema="inventory")
    op.create_index(
        "ix_stock_unannounced",
        "stock",
        ["product_id"],
        schema="inventory",
        postgresql_where=sa.text("change_unannounced IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_stock_unannounced", table_name="stock", schema="inventory")
    op.drop_column("stock", "change_unannounced", schema="inventory")
