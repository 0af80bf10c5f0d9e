"""The catalog's events, applied to the product read model (products/repository.py)."""

from __future__ import annotations

from contracts.catalog import (
    ProductCreated,
    ProductDeleted,
    ProductUpdated,
    VariantAdded,
    VariantDetails,
    VariantUpdated,
    VariantWithdrawn,
)
from workers.orders.products.repository import mark_options, upsert, upsert_variant
from workers.runtime.context import HandlerContext


def _variant(variant: VariantDetails) -> dict[str, object]:
    return {"sku": variant.sku, "label": variant.label, "price_minor": variant.price_minor}


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
                "image_url": event.image_url,
                "tax_class": event.tax_class,
                "category": event.category,
                "updated_at": event.created_at,
            },
        )
        if event.options:  # fixed at listing, whatever event came first
            await mark_options(ctx.session, event.product_id)
        # From an older publisher (no variants): the default variant, priced as the product.
        for variant in event.variants or (VariantDetails(variant_id=event.product_id, price_minor=event.price_minor),):
            await upsert_variant(
                ctx.session, variant.variant_id, event.product_id, {**_variant(variant), "updated_at": event.created_at}
            )

    async def on_product_updated(self, event: ProductUpdated, ctx: HandlerContext) -> None:
        changes: dict[str, object] = {"seller_id": event.seller_id, "updated_at": event.updated_at}
        if event.name is not None:
            changes["name"] = event.name
        if event.image_url is not None or "images" in event.changed:  # null from an older publisher says nothing
            changes["image_url"] = event.image_url
        if event.tax_class is not None:
            changes["tax_class"] = event.tax_class
        if event.category is not None:
            changes["category"] = event.category
        if event.price_minor is not None and event.currency is not None:
            changes["price_minor"] = event.price_minor
            changes["currency"] = event.currency
            # A product without options is priced as its default variant (a product with
            # options has no variant under its own id, and its own price is never charged).
            await upsert_variant(
                ctx.session,
                event.product_id,
                event.product_id,
                {"price_minor": event.price_minor, "updated_at": event.updated_at},
            )
        await upsert(ctx.session, event.product_id, changes)

    async def on_product_deleted(self, event: ProductDeleted, ctx: HandlerContext) -> None:
        await upsert(ctx.session, event.product_id, {"seller_id": event.seller_id, "deleted": True}, final=True)

    async def on_variant_added(self, event: VariantAdded, ctx: HandlerContext) -> None:
        changes = {**_variant(event.variant), "updated_at": event.at}
        await upsert_variant(ctx.session, event.variant.variant_id, event.product_id, changes)

    async def on_variant_updated(self, event: VariantUpdated, ctx: HandlerContext) -> None:
        changes = {**_variant(event.variant), "updated_at": event.at}
        await upsert_variant(ctx.session, event.variant.variant_id, event.product_id, changes)

    async def on_variant_withdrawn(self, event: VariantWithdrawn, ctx: HandlerContext) -> None:
        await upsert_variant(ctx.session, event.variant_id, event.product_id, {"deleted": True}, final=True)
