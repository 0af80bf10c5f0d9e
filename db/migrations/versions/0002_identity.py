"""Identity: linked OIDC accounts, OAuth clients, the audit log, erasure.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.alter_column("users", "password_hash", nullable=True, schema="users")
    op.add_column("users", sa.Column("erased_at", _TS), schema="users")
    op.create_table(
        "identities",
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column(
            "user_id", UUID(as_uuid=True), sa.ForeignKey("users.users.user_id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", _TS, nullable=False),
        schema="users",
    )
    op.create_index("ix_identities_user_id", "identities", ["user_id"], schema="users")
    op.create_table(
        "clients",
        sa.Column("client_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("scopes", ARRAY(sa.String(64)), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("disabled_at", _TS),
        schema="users",
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("actor_id", UUID(as_uuid=True)),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_id", UUID(as_uuid=True)),
        sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("correlation_id", sa.String(128)),
        schema="users",
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], schema="users")


def downgrade() -> None:
    for table in ("audit_log", "clients", "identities"):
        op.drop_table(table, schema="users")
    op.drop_column("users", "erased_at", schema="users")
    op.alter_column("users", "password_hash", nullable=False, schema="users")
