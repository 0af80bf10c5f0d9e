"""The catalog service's schema: categories and products (with their search vector)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR, UUID

from db.tables.base import messaging_tables

catalog_metadata = MetaData(schema="catalog")
catalog_outbox, catalog_inbox = messaging_tables(catalog_metadata)

# A tree: a category's subtree is found with a recursive query (the table is small).
categories = Table(
    "categories",
    catalog_metadata,
    Column("slug", String(64), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("parent", String(64), ForeignKey("catalog.categories.slug", ondelete="RESTRICT")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("parent IS NULL OR parent <> slug", name="ck_categories_not_own_parent"),
    Index("ix_categories_parent", "parent"),
)

# Name weighs more than description in the full-text rank (A above B).
PRODUCT_SEARCH_VECTOR = (
    "setweight(to_tsvector('english'::regconfig, name), 'A') || "
    "setweight(to_tsvector('english'::regconfig, description), 'B')"
)

products = Table(
    "products",
    catalog_metadata,
    Column("product_id", UUID(as_uuid=True), primary_key=True),
    Column("seller_id", UUID(as_uuid=True), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("price_exponent", SmallInteger, nullable=False),
    # The price as an amount, for filters and sorting across minor-unit exponents.
    Column(
        "price_amount",
        Numeric(20, 4),
        Computed("price_minor::numeric / power(10::numeric, price_exponent::numeric)", persisted=True),
        nullable=False,
    ),
    Column("category", String(64), ForeignKey("catalog.categories.slug", ondelete="RESTRICT"), nullable=False),
    Column("image_url", String(2048)),
    # Read model of the inventory service's stock (from inventory.stock_changed.v1).
    Column("available", Integer, nullable=False, server_default=text("0")),
    Column("stock_updated_at", DateTime(timezone=True)),
    Column("search", TSVECTOR, Computed(PRODUCT_SEARCH_VECTOR, persisted=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Withdrawn: invisible to every read, kept for the orders that refer to it.
    Column("deleted_at", DateTime(timezone=True)),
    CheckConstraint("price_minor > 0", name="ck_products_price_positive"),
    Index("ix_products_search", "search", postgresql_using="gin"),
    Index("ix_products_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}),
    Index("ix_products_seller", "seller_id", "created_at"),
    Index("ix_products_category", "category"),
)
# The keyset orders of the listing, over live products only.
Index(
    "ix_products_newest",
    products.c.created_at,
    products.c.product_id,
    postgresql_where=products.c.deleted_at.is_(None),
)
Index(
    "ix_products_price",
    products.c.price_amount,
    products.c.product_id,
    postgresql_where=products.c.deleted_at.is_(None),
)
