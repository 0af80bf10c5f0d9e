"""Foundation: one schema per service, the users tables, outbox/inbox for users.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Tables are spelled out here, not taken from `db/tables/`: a migration is a
snapshot, and the live definitions move on with later migrations.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from db.migrations.helpers import create_messaging_tables, drop_messaging_tables
from db.tables.base import SCHEMAS

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    for schema in SCHEMAS:
        op.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    op.create_table(
        "users",
        sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False, server_default="member"),
        sa.Column("phone_enc", sa.Text),
        sa.Column("phone_key_id", sa.String(32)),
        sa.Column("address_enc", sa.Text),
        sa.Column("address_key_id", sa.String(32)),
        sa.Column("disabled_at", _TS),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        schema="users",
    )
    op.create_index("uq_users_email", "users", [sa.text("lower(email)")], unique=True, schema="users")
    op.create_index("uq_users_username", "users", [sa.text("lower(username)")], unique=True, schema="users")
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("private_key_enc", sa.Text, nullable=False),
        sa.Column("private_key_key_id", sa.String(32), nullable=False),
        sa.Column("public_jwk", JSONB, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("retired_at", _TS),
        schema="users",
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("family_id", UUID(as_uuid=True), nullable=False, index=True),
        sa.Column(
            "user_id", UUID(as_uuid=True), sa.ForeignKey("users.users.user_id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("issued_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS),
        sa.Column("revoked_at", _TS),
        schema="users",
    )
    create_messaging_tables("users")


def downgrade() -> None:
    drop_messaging_tables("users")
    for table in ("refresh_tokens", "signing_keys", "users"):
        op.drop_table(table, schema="users")
