"""Orders and payments: outbox and inbox for both services.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from db.migrations.helpers import create_messaging_tables, drop_messaging_tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables("orders")
    create_messaging_tables("payments")


def downgrade() -> None:
    drop_messaging_tables("payments")
    drop_messaging_tables("orders")
