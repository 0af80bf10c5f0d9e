"""Catalog and inventory: outbox and inbox for both services.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from db.migrations.helpers import create_messaging_tables, drop_messaging_tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables("catalog")
    create_messaging_tables("inventory")


def downgrade() -> None:
    drop_messaging_tables("inventory")
    drop_messaging_tables("catalog")
