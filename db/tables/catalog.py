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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID

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
    # The main image's URL (the first of `images`), as before images were a list.
    Column("image_url", String(2048)),
    # [{"url", "alt"}, ...] in order (migration 0020).
    Column("images", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # [{"name", "values": [...]}, ...]: how its variants differ; [] for one default variant.
    Column("options", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # Which tax rates apply (migration 0025): `standard` unless its seller says otherwise.
    Column("tax_class", String(32), nullable=False, server_default=text("'standard'")),
    # Read model of the inventory service's stock (from inventory.stock_changed.v1): the
    # sum over its live variants (catalog.variants.available).
    Column("available", Integer, nullable=False, server_default=text("0")),
    Column("stock_updated_at", DateTime(timezone=True)),
    Column("search", TSVECTOR, Computed(PRODUCT_SEARCH_VECTOR, persisted=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Withdrawn: invisible to every read, kept for the orders that refer to it.
    Column("deleted_at", DateTime(timezone=True)),
    CheckConstraint("price_minor > 0", name="ck_products_price_positive"),
    Index("ix_products_search", "search", postgresql_using="gin"),
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
# Price filters and sorts always name a currency (they never compare across currencies).
Index(
    "ix_products_currency_price",
    products.c.currency,
    products.c.price_amount,
    products.c.product_id,
    postgresql_where=products.c.deleted_at.is_(None),
)

# A product's variants (migration 0020): what is sold, each with its own price and stock.
# A product without options has one, whose id is the product's. `price_minor` of the
# product is the lowest price of its live variants (search, price filters, sorting).
variants = Table(
    "variants",
    catalog_metadata,
    Column("variant_id", UUID(as_uuid=True), primary_key=True),
    Column("product_id", UUID(as_uuid=True), ForeignKey("catalog.products.product_id"), nullable=False),
    # The product's seller, for the SKU's uniqueness.
    Column("seller_id", UUID(as_uuid=True), nullable=False),
    Column("sku", String(64)),
    # Option name -> value; {} for a default variant.
    Column("options", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("price_minor", BigInteger, nullable=False),
    Column("compare_at_minor", BigInteger),
    Column("weight_grams", Integer),
    # Read model of the inventory service's stock of this variant.
    Column("available", Integer, nullable=False, server_default=text("0")),
    Column("stock_updated_at", DateTime(timezone=True)),
    Column("position", SmallInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    CheckConstraint("price_minor > 0", name="ck_variants_price_positive"),
    CheckConstraint("compare_at_minor IS NULL OR compare_at_minor > price_minor", name="ck_variants_compare_at"),
    CheckConstraint("weight_grams IS NULL OR weight_grams >= 0", name="ck_variants_weight"),
    Index("ix_variants_product", "product_id", "position"),
)
# A SKU names one live variant of its seller.
Index(
    "ux_variants_seller_sku",
    variants.c.seller_id,
    variants.c.sku,
    unique=True,
    postgresql_where=variants.c.sku.is_not(None) & variants.c.deleted_at.is_(None),
)


# --- search: the lexicon (issue 17; migration 0019) --------------------------------------
# Every word (3-32 letters, no digits) of the live products' names and descriptions, with
# how many live products use it and its deletion variants (workers/catalog/typos.py), for
# typo correction. Kept current by triggers on `products` (the migration defines them and
# the functions named here), whatever writes the products, in the writing transaction.
lexicon = Table(
    "lexicon",
    catalog_metadata,
    Column("word", Text(collation="C"), primary_key=True),
    Column("products", Integer, nullable=False),
    # The word and its deletion variants, by `catalog.word_deletions` when the word is added.
    Column("deletions", ARRAY(Text), nullable=False),
    Index("ix_lexicon_deletions", "deletions", postgresql_using="gin"),
)
# Each transaction's word changes, appended by the row trigger and folded into `lexicon`
# once, at COMMIT, by the deferred trigger on `lexicon_fold` (one marker row per transaction).
lexicon_pending = Table(
    "lexicon_pending",
    catalog_metadata,
    Column("txid", BigInteger, server_default=text("txid_current()"), nullable=False),
    Column("word", Text, nullable=False),
    Column("delta", Integer, nullable=False),
    Index("ix_lexicon_pending_txid", "txid"),
)
lexicon_fold = Table(
    "lexicon_fold",
    catalog_metadata,
    Column("txid", BigInteger, server_default=text("txid_current()"), nullable=False),
    Index("ix_lexicon_fold_txid", "txid"),
)
