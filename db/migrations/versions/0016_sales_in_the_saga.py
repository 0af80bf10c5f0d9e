"""Orders: the sales projection is written by the saga step that confirms or cancels
an order (issue 14), no more by the service's own `order_confirmed` and
`order_cancelled` events. What was still on its way through those events when the
orders worker was upgraded is filled in here from the order history; the retired
queues are deleted by the orders worker when it starts (contracts/topology.py,
RETIRED_QUEUES).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from db.migrations.helpers import fill_sales

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    fill_sales()


def downgrade() -> None:
    pass  # the rows stay right: the older code keeps them from its events again
