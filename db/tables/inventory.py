"""The inventory service's schema: stock per variant, its ledger, and reservations."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from db.tables.base import messaging_tables

inventory_metadata = MetaData(schema="inventory")
inventory_outbox, inventory_inbox = messaging_tables(inventory_metadata)

# One row per variant, made from catalog.product_created.v1 (and variant_added). `available`
# is what can be sold, `reserved` what orders in their saga hold; neither may go below
# zero. A product without options has one variant, whose id is the product's (migration
# 0020 turned each product's row into its default variant's).
stock = Table(
    "stock",
    inventory_metadata,
    Column("variant_id", UUID(as_uuid=True), primary_key=True),
    Column("product_id", UUID(as_uuid=True), nullable=False),
    # The product's seller (from the catalog event): the owner who may change the stock.
    Column("seller_id", UUID(as_uuid=True), nullable=False),
    Column("available", Integer, nullable=False),
    Column("reserved", Integer, nullable=False, server_default=text("0")),
    Column("low_stock_threshold", Integer, nullable=False, server_default=text("0")),
    # The variant (or its product) was withdrawn from the catalog: nothing more is reserved or set.
    Column("discontinued_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The kind of the latest movement not yet announced in `inventory.stock_changed`
    # (issue 14: one event per product per moment, not one per movement).
    Column("change_unannounced", String(32)),
    CheckConstraint("available >= 0", name="ck_stock_available_not_negative"),
    CheckConstraint("reserved >= 0", name="ck_stock_reserved_not_negative"),
    CheckConstraint("low_stock_threshold >= 0", name="ck_stock_threshold_not_negative"),
    Index("ix_stock_seller", "seller_id"),
    Index("ix_stock_product", "product_id"),
    Index("ix_stock_unannounced", "variant_id", postgresql_where=text("change_unannounced IS NOT NULL")),
)

# The stock-movement ledger, append-only: every change of a stock row, who made it and
# why. Per variant, the deltas sum to the row's current `available` and `reserved`.
stock_movements = Table(
    "stock_movements",
    inventory_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("variant_id", UUID(as_uuid=True), ForeignKey("inventory.stock.variant_id"), nullable=False),
    Column("product_id", UUID(as_uuid=True), nullable=False),
    # created, set, adjust, reserve, release, expire, commit, return
    Column("kind", String(16), nullable=False),
    Column("delta_available", Integer, nullable=False),
    Column("delta_reserved", Integer, nullable=False),
    Column("available_after", Integer, nullable=False),
    Column("reserved_after", Integer, nullable=False),
    Column("reason", Text),
    # The order a reservation movement belongs to.
    Column("reference", UUID(as_uuid=True)),
    Column("actor_id", UUID(as_uuid=True)),
    Column("actor_role", String(16)),
    Column("correlation_id", String(128)),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_stock_movements_variant", "variant_id", "id"),
)

# One reservation per order; the lines are fixed when it is made.
reservations = Table(
    "reservations",
    inventory_metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("lines", JSONB, nullable=False),
    Column("failed", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("expires_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(
        "status IN ('reserved', 'failed', 'released', 'expired', 'committed', 'returned')",
        name="ck_reservations_status",
    ),
)
# The sweeper looks only at live reservations, oldest deadline first.
Index("ix_reservations_expiry", reservations.c.expires_at, postgresql_where=reservations.c.status == "reserved")
