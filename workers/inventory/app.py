"""The inventory worker: stock, its ledger, and reservations for the order saga.

Run: `agora worker inventory [--workers N]` (or `faststream run workers.inventory.app:app`).
"""

from __future__ import annotations

from contracts import catalog
from contracts import inventory as c
from workers.inventory.handlers import InventoryHandlers
from workers.runtime.service import WorkerService

# How often each replica looks for reservations past their TTL (a cheap indexed query),
# and how many it releases per transaction.
SWEEP_SECONDS, SWEEP_BATCH = 1.0, 100
# How often each replica announces the stock changes since the last time (at most one
# `stock_changed` per product per turn): how far behind the catalog (and so the edge's
# cache) can be; and how many products per transaction.
ANNOUNCE_SECONDS, ANNOUNCE_BATCH = 0.2, 200

service = WorkerService("inventory")
handlers = InventoryHandlers()

service.event(catalog.PRODUCT_CREATED, handlers.on_product_created)
service.event(catalog.PRODUCT_DELETED, handlers.on_product_deleted)
service.event(catalog.VARIANT_ADDED, handlers.on_variant_added)
service.event(catalog.VARIANT_WITHDRAWN, handlers.on_variant_withdrawn)
service.command(c.GET_STOCK, handlers.get_stock)
service.command(c.SET_STOCK, handlers.set_stock)
service.command(c.LIST_LOW_STOCK, handlers.list_low_stock)
service.command(c.RESERVE_STOCK, handlers.reserve_stock, many=handlers.reserve_many)
service.command(c.RELEASE_STOCK, handlers.release_stock)
service.command(c.COMMIT_STOCK, handlers.commit_stock)
service.command(c.RETURN_STOCK, handlers.return_stock)
service.command(c.RESTOCK_RETURN, handlers.restock_return)
service.background("reservation-sweeper", handlers.sweep_expired, every=SWEEP_SECONDS, batch_size=SWEEP_BATCH)
service.background(
    "stock-announcer", handlers.announce_stock_changes, every=ANNOUNCE_SECONDS, batch_size=ANNOUNCE_BATCH
)

app = service.app
