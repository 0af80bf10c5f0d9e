"""Catalog use cases: load, decide (model.py), save, emit. One transaction per message."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from contracts.catalog import (
    AVAILABILITY_CHANGED,
    CATEGORY_CHANGED,
    PRODUCT_CREATED,
    PRODUCT_DELETED,
    PRODUCT_UPDATED,
    VARIANT_ADDED,
    VARIANT_UPDATED,
    VARIANT_WITHDRAWN,
    AddVariant,
    AvailabilityChanged,
    CategoryChanged,
    CategoryTree,
    CategoryView,
    CreateCategory,
    CreateProduct,
    DeleteCategory,
    DeleteProduct,
    GetProduct,
    ListCategories,
    ProductPage,
    ProductView,
    SearchProducts,
    Suggestions,
    SuggestProducts,
    UpdateCategory,
    UpdateProduct,
    UpdateVariant,
    WithdrawVariant,
)
from contracts.errors import FieldError
from contracts.inventory import StockChanged
from kernel.tokens import Actor
from workers.catalog.model import (
    Category,
    Product,
    availability,
    category_tree,
    creates_cycle,
    may_sell,
    new_product,
)
from workers.catalog.repository import CatalogRepository
from workers.catalog.search import search_products, suggest_products
from workers.runtime.context import HandlerContext
from workers.runtime.errors import DomainError, invalid, not_found


def _seller(ctx: HandlerContext) -> Actor:
    actor = ctx.require_actor()
    if not may_sell(actor):
        raise DomainError("forbidden", "only sellers and admins manage products")
    return actor


def _admin(ctx: HandlerContext) -> Actor:
    actor = ctx.require_actor()
    if actor.role != "admin":
        raise DomainError("forbidden", "only admins manage categories")
    return actor


async def _managed_product(repo: CatalogRepository, product_id: uuid.UUID, actor: Actor) -> Product:
    # Another seller's product is "not found": its id alone must reveal nothing.
    product = await repo.live_product(product_id, for_update=True)
    if product is None or not product.managed_by(actor):
        raise not_found("product")
    return product


async def _known_category(repo: CatalogRepository, slug: str, field: str) -> None:
    if not await repo.category_exists(slug):
        raise invalid(field, f"no category {slug!r}")


async def _skus_free(
    repo: CatalogRepository, seller_id: uuid.UUID, chosen: dict[str, str], *, besides: uuid.UUID | None = None
) -> None:
    """Refuse SKUs (field → SKU) another live variant of the seller has (the unique index
    backs this up against a concurrent listing)."""
    taken = await repo.skus_taken(seller_id, chosen.values(), besides=besides)
    message = "another of your variants has this SKU"
    errors = tuple(FieldError(field=f, message=message) for f, v in chosen.items() if v in taken)
    if errors:
        raise DomainError("conflict", "SKU already in use", errors)


async def _variants_changed(ctx: HandlerContext, repo: CatalogRepository, before: Product, after: Product) -> None:
    """Save the product after a change of its variants: its stock summed again and, if its
    "from" price moved, that announced as a price change too, for whoever follows
    products' prices (the variant's own event says the rest)."""
    await repo.save_product(after)
    await repo.sum_stock(after.product_id)
    if after.price_minor != before.price_minor:
        await ctx.emit(PRODUCT_UPDATED, after.updated_event(("price_minor",)))


def _full_view(product: Product, ctx: HandlerContext) -> ProductView:
    """A product page with each variant's stock count if the reader manages the product
    (its seller, admins). Writes answer with the product as anyone sees it."""
    return product.view(full=ctx.actor is not None and product.managed_by(ctx.actor))


class CatalogHandlers:
    # --- products -----------------------------------------------------------------------

    async def create_product(self, cmd: CreateProduct, ctx: HandlerContext) -> ProductView:
        actor = _seller(ctx)
        repo = CatalogRepository(ctx.session)
        await _known_category(repo, cmd.category, "category")
        product = new_product(cmd, uuid.uuid4(), actor.user_id, datetime.now(UTC), uuid.uuid4)
        await _skus_free(
            repo, actor.user_id, {f"variants.{v.position}.sku": v.sku for v in product.variants if v.sku is not None}
        )
        await repo.add_product(product)
        await ctx.emit(PRODUCT_CREATED, product.created_event())
        return product.view()

    async def get_product(self, cmd: GetProduct, ctx: HandlerContext) -> ProductView:
        product = await CatalogRepository(ctx.session).live_product(cmd.product_id)
        if product is None:
            raise not_found("product")
        return _full_view(product, ctx)

    async def update_product(self, cmd: UpdateProduct, ctx: HandlerContext) -> ProductView:
        actor = _seller(ctx)
        repo = CatalogRepository(ctx.session)
        product = await _managed_product(repo, cmd.product_id, actor)
        changes = cmd.model_dump(exclude_unset=True, exclude={"product_id"})
        if "category" in changes:
            await _known_category(repo, changes["category"], "category")
        updated, changed = product.updated(changes, datetime.now(UTC))
        if changed:
            await repo.save_product(updated)
            for before, after in zip(product.variants, updated.variants, strict=True):
                if after != before:  # the default variant's price came with the product's
                    await repo.save_variant(after)
            await ctx.emit(PRODUCT_UPDATED, updated.updated_event(changed))
        return updated.view()

    async def delete_product(self, cmd: DeleteProduct, ctx: HandlerContext) -> None:
        actor = _seller(ctx)
        repo = CatalogRepository(ctx.session)
        now = datetime.now(UTC)
        product = (await _managed_product(repo, cmd.product_id, actor)).withdrawn(now)
        await repo.save_product(product)
        await repo.withdraw_variants(product.product_id, now)
        await ctx.emit(PRODUCT_DELETED, product.deleted_event())

    async def search_products(self, cmd: SearchProducts, ctx: HandlerContext) -> ProductPage:
        return await search_products(ctx.db, cmd)

    async def suggest_products(self, cmd: SuggestProducts, ctx: HandlerContext) -> Suggestions:
        return await suggest_products(ctx.db, cmd)

    async def on_stock_changed(self, event: StockChanged, ctx: HandlerContext) -> None:
        variant_id = event.variant_id or event.product_id
        repo = CatalogRepository(ctx.session)
        applied = await repo.apply_stock(event.product_id, variant_id, event.available, event.updated_at)
        if applied is None or not applied.shown_changed():
            return
        # The edge's cache drops what shows this product on this word, not on inventory's:
        # it is published after this transaction commits, so a read it prompts sees the change.
        changed = AvailabilityChanged(
            product_id=event.product_id,
            variant_id=variant_id,
            availability=availability(applied.after),
            at=event.updated_at,
        )
        await ctx.emit(AVAILABILITY_CHANGED, changed)

    # --- variants -----------------------------------------------------------------------

    async def add_variant(self, cmd: AddVariant, ctx: HandlerContext) -> ProductView:
        actor = _seller(ctx)
        repo = CatalogRepository(ctx.session)
        product = await _managed_product(repo, cmd.product_id, actor)
        updated, variant = product.add_variant(cmd, uuid.uuid4(), datetime.now(UTC))
        if variant.sku is not None:
            await _skus_free(repo, product.seller_id, {"sku": variant.sku})
        await repo.add_variant(variant)
        await _variants_changed(ctx, repo, product, updated)
        await ctx.emit(VARIANT_ADDED, updated.variant_added_event(variant))
        return updated.view()

    async def update_variant(self, cmd: UpdateVariant, ctx: HandlerContext) -> ProductView:
        actor = _seller(ctx)
        repo = CatalogRepository(ctx.session)
        product = await _managed_product(repo, cmd.product_id, actor)
        changes = cmd.model_dump(exclude_unset=True, exclude={"product_id", "variant_id"})
        updated, variant, changed = product.update_variant(cmd.variant_id, changes, datetime.now(UTC))
        if not changed:
            return product.view()
        if "sku" in changed and variant.sku is not None:
            await _skus_free(repo, product.seller_id, {"sku": variant.sku}, besides=variant.variant_id)
        await repo.save_variant(variant)
        await _variants_changed(ctx, repo, product, updated)
        await ctx.emit(VARIANT_UPDATED, updated.variant_updated_event(variant, changed))
        return updated.view()

    async def withdraw_variant(self, cmd: WithdrawVariant, ctx: HandlerContext) -> ProductView:
        actor = _seller(ctx)
        repo = CatalogRepository(ctx.session)
        product = await _managed_product(repo, cmd.product_id, actor)
        updated, gone = product.withdraw_variant(cmd.variant_id, datetime.now(UTC))
        await repo.save_variant(gone)
        await _variants_changed(ctx, repo, product, updated)
        await ctx.emit(VARIANT_WITHDRAWN, updated.variant_withdrawn_event(gone))
        return updated.view()

    # --- categories ---------------------------------------------------------------------

    async def list_categories(self, cmd: ListCategories, ctx: HandlerContext) -> CategoryTree:
        return CategoryTree(items=category_tree(await CatalogRepository(ctx.session).all_categories()))

    async def create_category(self, cmd: CreateCategory, ctx: HandlerContext) -> CategoryView:
        _admin(ctx)
        repo = CatalogRepository(ctx.session)
        if cmd.parent is not None:
            await _known_category(repo, cmd.parent, "parent")
        now = datetime.now(UTC)
        category = Category(slug=cmd.slug, name=cmd.name, parent=cmd.parent, created_at=now, updated_at=now)
        try:
            async with ctx.session.begin_nested():
                await repo.add_category(category)
        except IntegrityError:
            raise DomainError(
                "conflict", f"category {cmd.slug!r} exists", (FieldError(field="slug", message="is taken"),)
            ) from None
        await ctx.emit(CATEGORY_CHANGED, CategoryChanged(slug=cmd.slug, change="created", at=now))
        return category.view()

    async def update_category(self, cmd: UpdateCategory, ctx: HandlerContext) -> CategoryView:
        _admin(ctx)
        repo = CatalogRepository(ctx.session)
        category = await repo.category(cmd.slug, for_update=True)
        if category is None:
            raise not_found("category")
        changes = cmd.model_dump(exclude_unset=True, exclude={"slug"})
        if changes.get("parent") is not None:
            await _known_category(repo, changes["parent"], "parent")
            if creates_cycle(cmd.slug, changes["parent"], await repo.category_parents()):
                raise invalid("parent", "would put the category under itself")
        now = datetime.now(UTC)
        updated = replace(category, **changes, updated_at=now)
        if updated != replace(category, updated_at=now):
            await repo.save_category(updated)
            await ctx.emit(CATEGORY_CHANGED, CategoryChanged(slug=cmd.slug, change="updated", at=now))
        return updated.view()

    async def delete_category(self, cmd: DeleteCategory, ctx: HandlerContext) -> None:
        _admin(ctx)
        repo = CatalogRepository(ctx.session)
        if await repo.category(cmd.slug, for_update=True) is None:
            raise not_found("category")
        if holder := await repo.category_in_use(cmd.slug):
            raise DomainError("conflict", f"the category still has {holder}")
        await repo.delete_category(cmd.slug)
        await ctx.emit(CATEGORY_CHANGED, CategoryChanged(slug=cmd.slug, change="deleted", at=datetime.now(UTC)))


# --- an operator's step (the benchmark's bulk catalog, `agora seed --products N`) ---------


async def add_products(ctx: HandlerContext, new: Sequence[Product]) -> None:
    """Products made by an operator's command, stored and announced as `create_product`
    stores and announces one (many rows in one statement)."""
    await CatalogRepository(ctx.session).add_products(new)
    for product in new:
        await ctx.emit(PRODUCT_CREATED, product.created_event())
