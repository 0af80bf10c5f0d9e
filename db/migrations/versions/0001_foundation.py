"""Foundation: one schema per service, the users tables, outbox/inbox for users.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

from db.migrations.helpers import create_messaging_tables, drop_messaging_tables
from db.tables import SCHEMAS, refresh_tokens, signing_keys, users

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    for schema in SCHEMAS:
        op.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    bind = op.get_bind()
    for table in (users, signing_keys, refresh_tokens):
        table.create(bind)
    create_messaging_tables("users")


def downgrade() -> None:
    drop_messaging_tables("users")
    bind = op.get_bind()
    for table in (refresh_tokens, signing_keys, users):
        table.drop(bind)
