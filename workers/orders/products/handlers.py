"""The catalog's events, applied to the product read model (products/repository.py)."""

from __future__ import annotations

from contracts.catalog import ProductCreated, ProductDeleted, ProductUpdated
from workers.orders.products.repository import upsert
from workers.runtime.context import HandlerContext


class ProductHandlers:
    """The catalog's events, applied to the product read model (wired in app.py)."""

    async def on_product_created(self, event: ProductCreated, ctx: HandlerContext) -> None:
        await upsert(
            ctx.session,
            event.product_id,
            {
                "seller_id": event.seller_id,
                "name": event.name,
                "price_minor": event.price_minor,
                "currency": event.currency,
                "updated_at": event.created_at,
            },
        )

    async def on_product_updated(self, event: ProductUpdated, ctx: HandlerContext) -> None:
        changes: dict[str, object] = {"seller_id": event.seller_id, "updated_at": event.updated_at}
        if event.name is not None:
            changes["name"] = event.name
        if event.price_minor is not None and event.currency is not None:
            changes["price_minor"] = event.price_minor
            changes["currency"] = event.currency
        await upsert(ctx.session, event.product_id, changes)

    async def on_product_deleted(self, event: ProductDeleted, ctx: HandlerContext) -> None:
        await upsert(ctx.session, event.product_id, {"seller_id": event.seller_id, "deleted": True}, final=True)
