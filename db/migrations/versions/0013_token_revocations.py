"""Users: token revocations that take effect at once, `users.token_revocations`.

A logout, a password change, a reused refresh token, a role change, disabling or
erasing an account voids the access tokens issued before it. Each such moment is a row
here (and a `users.tokens_revoked.v1` event); every token verifier loads the rows still
in force when it starts and follows the events after that.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_revocations",
        sa.Column("revocation_id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("session_id", UUID(as_uuid=True)),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("reason", sa.String(32), nullable=False),
        schema="users",
    )


def downgrade() -> None:
    op.drop_table("token_revocations", schema="users")
