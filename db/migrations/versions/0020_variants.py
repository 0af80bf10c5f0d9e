"""Variants and images (issue 17): what is sold is a product's variant.

Each existing product becomes a product with one default variant whose id is the
product's, so every id already stored (stock rows, carts, order lines, sales, reservations
in flight, partners' commands naming only a product) names that variant:

- catalog: `products.images` (the old `image_url` as a one-image list) and `options`;
  `catalog.variants`, one default variant per product at its price, with its stock read model;
- inventory: the stock row's key becomes `variant_id` (the old product id) beside a new
  `product_id` (the same id); the ledger gets both too;
- orders: the product read model knows whether a product has options and keeps its
  variants' prices (`orders.product_variants`); cart lines, order lines and the sales
  projection are keyed by variant (the old product id), with the SKU and a label.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
# Tables whose key (with the order or cart) becomes the variant: (table, key columns before, after).
_KEYED_BY_VARIANT = (
    ("cart_items", ("cart_id", "product_id"), ("cart_id", "variant_id")),
    ("order_lines", ("order_id", "product_id"), ("order_id", "variant_id")),
    ("sales", ("order_id", "product_id"), ("order_id", "variant_id")),
)


def upgrade() -> None:
    _catalog()
    _inventory()
    _orders()


def _catalog() -> None:
    for column in ("images", "options"):
        op.add_column(
            "products",
            sa.Column(column, JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
            schema="catalog",
        )
    op.execute(
        "UPDATE catalog.products SET images = jsonb_build_array(jsonb_build_object('url', image_url, 'alt', '')) "
        "WHERE image_url IS NOT NULL"
    )
    op.create_table(
        "variants",
        sa.Column("variant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("product_id", UUID(as_uuid=True), sa.ForeignKey("catalog.products.product_id"), nullable=False),
        sa.Column("seller_id", UUID(as_uuid=True), nullable=False),
        sa.Column("sku", sa.String(64)),
        sa.Column("options", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("price_minor", sa.BigInteger, nullable=False),
        sa.Column("compare_at_minor", sa.BigInteger),
        sa.Column("weight_grams", sa.Integer),
        sa.Column("available", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("stock_updated_at", _TS),
        sa.Column("position", sa.SmallInteger, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("deleted_at", _TS),
        sa.CheckConstraint("price_minor > 0", name="ck_variants_price_positive"),
        sa.CheckConstraint("compare_at_minor IS NULL OR compare_at_minor > price_minor", name="ck_variants_compare_at"),
        sa.CheckConstraint("weight_grams IS NULL OR weight_grams >= 0", name="ck_variants_weight"),
        schema="catalog",
    )
    op.create_index("ix_variants_product", "variants", ["product_id", "position"], schema="catalog")
    op.create_index(
        "ux_variants_seller_sku",
        "variants",
        ["seller_id", "sku"],
        unique=True,
        schema="catalog",
        postgresql_where=sa.text("sku IS NOT NULL AND deleted_at IS NULL"),
    )
    op.execute(
        """
        INSERT INTO catalog.variants (variant_id, product_id, seller_id, options, price_minor, available,
                                      stock_updated_at, position, created_at, updated_at, deleted_at)
        SELECT product_id, product_id, seller_id, '{}'::jsonb, price_minor, available,
               stock_updated_at, 0, created_at, updated_at, deleted_at
          FROM catalog.products
        """
    )


def _inventory() -> None:
    op.alter_column("stock", "product_id", new_column_name="variant_id", schema="inventory")
    op.alter_column("stock_movements", "product_id", new_column_name="variant_id", schema="inventory")
    for table in ("stock", "stock_movements"):
        op.add_column(table, sa.Column("product_id", UUID(as_uuid=True)), schema="inventory")
        op.execute(f"UPDATE inventory.{table} SET product_id = variant_id")
        op.alter_column(table, "product_id", nullable=False, schema="inventory")
    op.create_index("ix_stock_product", "stock", ["product_id"], schema="inventory")
    op.execute("ALTER INDEX inventory.ix_stock_movements_product RENAME TO ix_stock_movements_variant")


def _orders() -> None:
    op.add_column(
        "products",
        sa.Column("has_options", sa.Boolean, nullable=False, server_default=sa.text("false")),
        schema="orders",
    )
    op.create_table(
        "product_variants",
        sa.Column("variant_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("product_id", UUID(as_uuid=True), nullable=False),
        sa.Column("sku", sa.String(64)),
        sa.Column("label", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("price_minor", sa.BigInteger, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("updated_at", _TS, nullable=False),
        schema="orders",
    )
    op.create_index("ix_product_variants_product", "product_variants", ["product_id"], schema="orders")
    # Every product known so far has no options: its one variant is priced as the product.
    op.execute(
        """
        INSERT INTO orders.product_variants (variant_id, product_id, price_minor, deleted, updated_at)
        SELECT product_id, product_id, price_minor, deleted, updated_at FROM orders.products
        """
    )
    for table, _, after in _KEYED_BY_VARIANT:
        op.add_column(table, sa.Column("variant_id", UUID(as_uuid=True)), schema="orders")
        op.execute(f"UPDATE orders.{table} SET variant_id = product_id")
        op.alter_column(table, "variant_id", nullable=False, schema="orders")
        op.drop_constraint(f"{table}_pkey", table, type_="primary", schema="orders")
        op.create_primary_key(f"{table}_pkey", table, list(after), schema="orders")
    op.add_column("order_lines", sa.Column("sku", sa.String(64)), schema="orders")
    for table in ("order_lines", "sales"):
        op.add_column(
            table,
            sa.Column("variant_label", sa.Text, nullable=False, server_default=sa.text("''")),
            schema="orders",
        )


def downgrade() -> None:
    """Back to one stock row, cart line and order line per product: possible only while no
    product has more than its default variant (refused otherwise, rather than lose lines)."""
    bind = op.get_bind()
    others = bind.execute(sa.text("SELECT count(*) FROM catalog.variants WHERE variant_id <> product_id")).scalar()
    if others:
        raise RuntimeError(f"{others} variants other than default ones exist: 0020 cannot be undone")
    for table in ("order_lines", "sales"):
        op.drop_column(table, "variant_label", schema="orders")
    op.drop_column("order_lines", "sku", schema="orders")
    for table, before, _ in _KEYED_BY_VARIANT:
        op.drop_constraint(f"{table}_pkey", table, type_="primary", schema="orders")
        op.create_primary_key(f"{table}_pkey", table, list(before), schema="orders")
        op.drop_column(table, "variant_id", schema="orders")
    op.drop_table("product_variants", schema="orders")
    op.drop_column("products", "has_options", schema="orders")

    op.execute("ALTER INDEX inventory.ix_stock_movements_variant RENAME TO ix_stock_movements_product")
    op.drop_index("ix_stock_product", table_name="stock", schema="inventory")
    for table in ("stock_movements", "stock"):
        op.drop_column(table, "product_id", schema="inventory")
        op.alter_column(table, "variant_id", new_column_name="product_id", schema="inventory")

    op.drop_table("variants", schema="catalog")
    for column in ("options", "images"):
        op.drop_column("products", column, schema="catalog")
