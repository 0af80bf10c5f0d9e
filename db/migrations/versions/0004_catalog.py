"""Catalog: categories and products, with full-text and trigram search indexes.

`pg_trgm` is a trusted extension (PostgreSQL 13+): the owner of the database may
create it without being a superuser. `scripts/lib/services.sh` creates it in the
development and test databases already; here it is created where it is missing (a
test slot's own database).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "categories",
        sa.Column("slug", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("parent", sa.String(64), sa.ForeignKey("catalog.categories.slug", ondelete="RESTRICT")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("parent IS NULL OR parent <> slug", name="ck_categories_not_own_parent"),
        schema="catalog",
    )
    op.create_index("ix_categories_parent", "categories", ["parent"], schema="catalog")
    op.create_table(
        "products",
        sa.Column("product_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("seller_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("price_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("price_exponent", sa.SmallInteger, nullable=False),
        sa.Column(
            "price_amount",
            sa.Numeric(20, 4),
            sa.Computed("price_minor::numeric / power(10::numeric, price_exponent::numeric)", persisted=True),
            nullable=False,
        ),
        sa.Column(
            "category",
            sa.String(64),
            sa.ForeignKey("catalog.categories.slug", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("image_url", sa.String(2048)),
        sa.Column("available", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("stock_updated_at", sa.DateTime(timezone=True)),
        sa.Column(
            "search",
            postgresql.TSVECTOR,
            sa.Computed(
                "setweight(to_tsvector('english'::regconfig, name), 'A') || "
                "setweight(to_tsvector('english'::regconfig, description), 'B')",
                persisted=True,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("price_minor > 0", name="ck_products_price_positive"),
        schema="catalog",
    )
    op.create_index("ix_products_search", "products", ["search"], postgresql_using="gin", schema="catalog")
    op.execute("CREATE INDEX ix_products_name_trgm ON catalog.products USING gin (name gin_trgm_ops)")
    op.create_index("ix_products_seller", "products", ["seller_id", "created_at"], schema="catalog")
    op.create_index("ix_products_category", "products", ["category"], schema="catalog")
    op.create_index(
        "ix_products_newest",
        "products",
        ["created_at", "product_id"],
        postgresql_where=sa.text("deleted_at IS NULL"),
        schema="catalog",
    )
    op.create_index(
        "ix_products_price",
        "products",
        ["price_amount", "product_id"],
        postgresql_where=sa.text("deleted_at IS NULL"),
        schema="catalog",
    )


def downgrade() -> None:
    # pg_trgm stays: other schemas or databases objects may use it.
    op.drop_table("products", schema="catalog")
    op.drop_table("categories", schema="catalog")
