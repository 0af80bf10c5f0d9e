"""The outbox relays wake no more on NOTIFY (issue 14).

Every NOTIFY makes each listening connection in the database run a transaction,
whatever channel it listens on: about 28 of an order's 60 transactions. The runtime now
publishes a transaction's outbox rows from memory right after its commit, and the relay
only sweeps up leftovers by polling, so the triggers go.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from alembic import op

from db.migrations.helpers import SERVICE_SCHEMAS, create_outbox_notify

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for schema in SERVICE_SCHEMAS:
        op.execute(f'DROP TRIGGER IF EXISTS outbox_notify ON "{schema}".outbox')
        op.execute(f'DROP FUNCTION IF EXISTS "{schema}".notify_outbox()')


def downgrade() -> None:
    for schema in SERVICE_SCHEMAS:
        create_outbox_notify(schema)
