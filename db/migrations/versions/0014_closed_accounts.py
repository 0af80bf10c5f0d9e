"""Orders: `orders.closed_accounts`, the erased and disabled accounts no order may be placed for.

Filled from `users.user_erased.v1` and `users.user_updated.v1` (disabled) from now on.
Nothing is back-filled: this service never kept which accounts were closed before.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "closed_accounts",
        sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        schema="orders",
    )


def downgrade() -> None:
    op.drop_table("closed_accounts", schema="orders")
