"""Notifications: a read model of the catalog's variants, so a low-stock notice names one.

- `notifications.variants`: variant → product, label (`"M / Red"`, `""` for a default
  variant) and SKU, from `product_created`, `variant_added` and `variant_updated`. Every
  product known here so far gets its default variant (id = the product's, no label, no
  SKU), as migration 0020 did for the orders service: a low-stock notice for it then need
  not wait for a catalog event that already went by.
- The stored default of the `low_stock` email (a row nobody edited, `updated_by` null)
  is dropped, so the worker seeds the new default, which names the variant, at its next
  start. An admin's edit stays: it renders as before.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-12
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "variants",
        sa.Column("variant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("product_id", UUID(as_uuid=True), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("sku", sa.String(64)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema="notifications",
    )
    op.execute(
        """
        INSERT INTO notifications.variants (variant_id, product_id, label, updated_at)
        SELECT product_id, product_id, '', updated_at FROM notifications.products
        """
    )
    op.execute("DELETE FROM notifications.templates WHERE key = 'low_stock' AND updated_by IS NULL")


def downgrade() -> None:
    op.drop_table("variants", schema="notifications")
    # The default that names the variant uses variables the older worker does not give.
    op.execute("DELETE FROM notifications.templates WHERE key = 'low_stock' AND updated_by IS NULL")
