"""The catalog worker: products, categories, search.

Run: `agora worker catalog [--workers N]` (or `faststream run workers.catalog.app:app`).
"""

from __future__ import annotations

from contracts import catalog as c
from contracts.inventory import STOCK_CHANGED
from workers.catalog.handlers import CatalogHandlers
from workers.runtime.service import WorkerService

service = WorkerService("catalog")
handlers = CatalogHandlers()

service.command(c.CREATE_PRODUCT, handlers.create_product)
service.command(c.GET_PRODUCT, handlers.get_product)
service.command(c.UPDATE_PRODUCT, handlers.update_product)
service.command(c.DELETE_PRODUCT, handlers.delete_product)
service.command(c.SEARCH_PRODUCTS, handlers.search_products)
service.command(c.SUGGEST_PRODUCTS, handlers.suggest_products)
service.command(c.LIST_CATEGORIES, handlers.list_categories)
service.command(c.CREATE_CATEGORY, handlers.create_category)
service.command(c.UPDATE_CATEGORY, handlers.update_category)
service.command(c.DELETE_CATEGORY, handlers.delete_category)
service.command(c.ADD_VARIANT, handlers.add_variant)
service.command(c.UPDATE_VARIANT, handlers.update_variant)
service.command(c.WITHDRAW_VARIANT, handlers.withdraw_variant)
# The stock read model behind `in_stock`: the inventory service owns the figures.
service.event(STOCK_CHANGED, handlers.on_stock_changed)

app = service.app
