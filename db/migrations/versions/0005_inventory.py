"""Inventory: stock records, the stock-movement ledger, reservations.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stock",
        sa.Column("product_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("seller_id", UUID(as_uuid=True), nullable=False),
        sa.Column("available", sa.Integer, nullable=False),
        sa.Column("reserved", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("low_stock_threshold", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("discontinued_at", _TS),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("available >= 0", name="ck_stock_available_not_negative"),
        sa.CheckConstraint("reserved >= 0", name="ck_stock_reserved_not_negative"),
        sa.CheckConstraint("low_stock_threshold >= 0", name="ck_stock_threshold_not_negative"),
        schema="inventory",
    )
    op.create_index("ix_stock_seller", "stock", ["seller_id"], schema="inventory")
    op.create_table(
        "stock_movements",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("product_id", UUID(as_uuid=True), sa.ForeignKey("inventory.stock.product_id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("delta_available", sa.Integer, nullable=False),
        sa.Column("delta_reserved", sa.Integer, nullable=False),
        sa.Column("available_after", sa.Integer, nullable=False),
        sa.Column("reserved_after", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("reference", UUID(as_uuid=True)),
        sa.Column("actor_id", UUID(as_uuid=True)),
        sa.Column("actor_role", sa.String(16)),
        sa.Column("correlation_id", sa.String(128)),
        sa.Column("at", _TS, nullable=False),
        schema="inventory",
    )
    op.create_index("ix_stock_movements_product", "stock_movements", ["product_id", "id"], schema="inventory")
    op.create_table(
        "reservations",
        sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lines", JSONB, nullable=False),
        sa.Column("failed", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("expires_at", _TS),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint(
            "status IN ('reserved', 'failed', 'released', 'expired', 'committed')", name="ck_reservations_status"
        ),
        schema="inventory",
    )
    op.create_index(
        "ix_reservations_expiry",
        "reservations",
        ["expires_at"],
        schema="inventory",
        postgresql_where=sa.text("status = 'reserved'"),
    )


def downgrade() -> None:
    for table in ("reservations", "stock_movements", "stock"):
        op.drop_table(table, schema="inventory")
