"""Every schema's tables at once: for migrations (all the metadata) and for the runtime
(each service's outbox and inbox, by service name). A worker imports only its own
schema's module."""

from __future__ import annotations

from sqlalchemy import Table

from db.tables.catalog import catalog_inbox, catalog_metadata, catalog_outbox
from db.tables.inventory import inventory_inbox, inventory_metadata, inventory_outbox
from db.tables.notifications import notifications_inbox, notifications_metadata, notifications_outbox
from db.tables.orders import orders_inbox, orders_metadata, orders_outbox
from db.tables.payments import payments_inbox, payments_metadata, payments_outbox
from db.tables.users import users_inbox, users_metadata, users_outbox

ALL_METADATA = (
    users_metadata,
    catalog_metadata,
    inventory_metadata,
    orders_metadata,
    payments_metadata,
    notifications_metadata,
)

# Outbox and inbox per service schema, for the runtime to look up by service name.
MESSAGING: dict[str, tuple[Table, Table]] = {
    "users": (users_outbox, users_inbox),
    "catalog": (catalog_outbox, catalog_inbox),
    "inventory": (inventory_outbox, inventory_inbox),
    "orders": (orders_outbox, orders_inbox),
    "payments": (payments_outbox, payments_inbox),
    "notifications": (notifications_outbox, notifications_inbox),
}
