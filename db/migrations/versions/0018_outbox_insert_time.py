"""Outbox rows carry the time of their insert, not of their transaction's start (issue 14).

`now()` is when the transaction began. One that waited on the payment provider for
seconds wrote rows that already looked older than the relay's grace period when it
committed, so the sweep of leftovers could publish them a second time before the
runtime marked them sent. `clock_timestamp()` is the moment of the insert.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from alembic import op

from db.migrations.helpers import SERVICE_SCHEMAS

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for schema in SERVICE_SCHEMAS:
        op.execute(f'ALTER TABLE "{schema}".outbox ALTER COLUMN created_at SET DEFAULT clock_timestamp()')


def downgrade() -> None:
    for schema in SERVICE_SCHEMAS:
        op.execute(f'ALTER TABLE "{schema}".outbox ALTER COLUMN created_at SET DEFAULT now()')
