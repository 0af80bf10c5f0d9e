"""Notices for the new moments of an order (issue 18): shipped with tracking.

`orders.order_shipped` events carry the parcel's tracking number and carrier, and the
`order_shipped` templates (email and SMS) show them, with a link to the carrier's
tracking page where one is known. Their stored defaults (rows nobody edited,
`updated_by` null) are dropped, so the notifications worker seeds the new defaults at
its next start, as migration 0021 did for `low_stock`. An admin's edit stays as it is:
it renders as before, and may use the new variables.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-05
"""

from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM notifications.templates WHERE key = 'order_shipped' AND updated_by IS NULL")


def downgrade() -> None:
    # The new defaults use variables (`tracking_number`, …) an older worker does not give.
    op.execute("DELETE FROM notifications.templates WHERE key = 'order_shipped' AND updated_by IS NULL")
