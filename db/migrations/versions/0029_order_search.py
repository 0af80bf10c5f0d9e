"""The operator dashboard's order search (issue 19): find a customer's orders by email or name.

- `orders.customers.email_index`, `email_index_key_id`: a keyed blind index of the
  normalised email (hex HMAC-SHA256 under a key derived from the orders service's data key
  it names). The email itself stays sealed. Existing rows are indexed by the orders worker
  (its `customer-search-index` job): the key is the worker's, not the migration's.
- a trigram index on `orders.customers.username`, for a search by part of the name.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("email_index", sa.String(64)), schema="orders")
    op.add_column("customers", sa.Column("email_index_key_id", sa.String(32)), schema="orders")
    op.create_index("ix_customers_email_index", "customers", ["email_index"], schema="orders")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE INDEX ix_customers_username_trgm ON orders.customers USING gin (username gin_trgm_ops)")


def downgrade() -> None:
    op.drop_index("ix_customers_username_trgm", table_name="customers", schema="orders")
    op.drop_index("ix_customers_email_index", table_name="customers", schema="orders")
    op.drop_column("customers", "email_index_key_id", schema="orders")
    op.drop_column("customers", "email_index", schema="orders")
