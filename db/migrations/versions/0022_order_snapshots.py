"""Order snapshots (issue 18): what an order's lines and its customer were when it was placed.

- `orders.order_lines`: the product's main image (`image_url`), and the line's tax and
  discount in minor units (`tax_minor`, `discount_minor`), zero until taxes and vouchers
  exist. Lines already there keep the name, SKU, label and price they were sold at; their
  image is unknown (null) and their tax and discount zero, as they were.
- `orders.products`: the main image, from `catalog.product_created` and `product_updated`
  from now on; filled here from the catalog's own products (their first image), so an
  order of a product listed before this migration has its image too.
- `orders.orders`: the customer's email and name at placement, sealed (`customer_enc`,
  `customer_key_id`); null for the orders already placed.
- `orders.customers`: the accounts' emails (sealed) and usernames, from
  `users.user_registered` and `users.user_updated` from now on. Nothing is back-filled: the
  emails are the users service's, and sealing them needs the orders service's data keys.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-14
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("order_lines", sa.Column("image_url", sa.Text), schema="orders")
    for column in ("tax_minor", "discount_minor"):
        op.add_column(
            "order_lines",
            sa.Column(column, sa.BigInteger, nullable=False, server_default=sa.text("0")),
            schema="orders",
        )
    op.add_column("products", sa.Column("image_url", sa.Text), schema="orders")
    op.execute(
        """
        UPDATE orders.products o SET image_url = c.images->0->>'url'
          FROM catalog.products c
         WHERE c.product_id = o.product_id AND jsonb_array_length(c.images) > 0
        """
    )
    op.add_column("orders", sa.Column("customer_enc", sa.Text), schema="orders")
    op.add_column("orders", sa.Column("customer_key_id", sa.String(32)), schema="orders")
    op.create_table(
        "customers",
        sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("email_enc", sa.Text),
        sa.Column("email_key_id", sa.String(32)),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema="orders",
    )


def downgrade() -> None:
    op.drop_table("customers", schema="orders")
    for column in ("customer_key_id", "customer_enc"):
        op.drop_column("orders", column, schema="orders")
    op.drop_column("products", "image_url", schema="orders")
    for column in ("discount_minor", "tax_minor", "image_url"):
        op.drop_column("order_lines", column, schema="orders")
