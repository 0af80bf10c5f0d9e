"""Loading and saving products and categories (the catalog schema)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.catalog import ProductOption
from db.prepared import json_value
from db.tables.catalog import categories, products, variants
from workers.catalog.model import Category, Image, Product, StockApplied, Variant

_PRODUCT_COLUMNS = (
    products.c.product_id,
    products.c.seller_id,
    products.c.name,
    products.c.description,
    products.c.price_minor,
    products.c.currency,
    products.c.category,
    products.c.created_at,
    products.c.updated_at,
    products.c.deleted_at,
    products.c.available,
    products.c.images,
    products.c.options,
    products.c.tax_class,
)
_VARIANT_COLUMNS = tuple(c for c in variants.c if c.name != "stock_updated_at")


def to_product(row: Any, live_variants: Sequence[Variant] = ()) -> Product:
    """A product from its row (a listing's rows have no variants: see `live_variants`)."""
    fields = {c.name: row._mapping[c.name] for c in _PRODUCT_COLUMNS}
    fields["images"] = tuple(Image(i["url"], i.get("alt", "")) for i in json_value(fields["images"]))
    fields["options"] = tuple(ProductOption.model_validate(o) for o in json_value(fields["options"]))
    return Product(**fields, variants=tuple(live_variants))


def to_variant(row: Any) -> Variant:
    mapping = row._mapping if hasattr(row, "_mapping") else row
    return Variant(**{c.name: mapping[c.name] for c in _VARIANT_COLUMNS})


def product_columns() -> tuple[Any, ...]:
    return _PRODUCT_COLUMNS


class CatalogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- products -----------------------------------------------------------------------

    async def live_product(self, product_id: UUID, *, for_update: bool = False) -> Product | None:
        """A product that has not been withdrawn, with its live variants; locked for a change
        if asked (the product's row: every change of its variants takes it first)."""
        stmt = select(*_PRODUCT_COLUMNS).where(products.c.product_id == product_id, products.c.deleted_at.is_(None))
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._session.execute(stmt)).first()
        if row is None:
            return None
        return to_product(row, (await self.live_variants([product_id])).get(product_id, ()))

    async def live_variants(self, product_ids: Iterable[UUID]) -> dict[UUID, list[Variant]]:
        """The live variants of these products, in order."""
        ids = list(set(product_ids))
        found: dict[UUID, list[Variant]] = {}
        if not ids:
            return found
        rows = await self._session.execute(
            select(*_VARIANT_COLUMNS)
            .where(variants.c.product_id.in_(ids), variants.c.deleted_at.is_(None))
            .order_by(variants.c.product_id, variants.c.position)
        )
        for row in rows:
            found.setdefault(row.product_id, []).append(to_variant(row))
        return found

    async def skus_taken(self, seller_id: UUID, skus: Iterable[str], *, besides: UUID | None = None) -> set[str]:
        """Which of these SKUs a live variant of the seller has (other than `besides`)."""
        wanted = list(set(skus))
        if not wanted:
            return set()
        stmt = select(variants.c.sku).where(
            variants.c.seller_id == seller_id, variants.c.sku.in_(wanted), variants.c.deleted_at.is_(None)
        )
        if besides is not None:
            stmt = stmt.where(variants.c.variant_id != besides)
        return {row.sku for row in await self._session.execute(stmt)}

    async def add_product(self, product: Product) -> None:
        await self._session.execute(products.insert().values(**self._product_row(product)))
        await self._session.execute(variants.insert(), [self._variant_row(v) for v in product.variants])

    async def add_products(self, many: Sequence[Product]) -> None:
        await self._session.execute(products.insert(), [self._product_row(p) for p in many])
        await self._session.execute(variants.insert(), [self._variant_row(v) for p in many for v in p.variants])

    async def add_variant(self, variant: Variant) -> None:
        await self._session.execute(variants.insert().values(**self._variant_row(variant)))

    async def withdraw_variants(self, product_id: UUID, now: datetime) -> None:
        """A withdrawn product's variants go with it (their SKUs are free again)."""
        await self._session.execute(
            variants.update()
            .where(variants.c.product_id == product_id, variants.c.deleted_at.is_(None))
            .values(deleted_at=now, updated_at=now)
        )

    async def save_variant(self, variant: Variant) -> None:
        row = self._variant_row(variant)
        for column in ("variant_id", "product_id", "seller_id", "available", "created_at"):
            del row[column]  # fixed at listing; the stock read model is the inventory events' to change
        await self._session.execute(variants.update().where(variants.c.variant_id == variant.variant_id).values(**row))

    async def count_products(self) -> int:
        """Every product row, withdrawn ones included."""
        return int(await self._session.scalar(select(func.count()).select_from(products)) or 0)

    async def save_product(self, product: Product) -> None:
        row = self._product_row(product)
        del row["available"]  # the stock read model is the inventory events' to change
        await self._session.execute(products.update().where(products.c.product_id == product.product_id).values(**row))

    async def apply_stock(
        self, product_id: UUID, variant_id: UUID, available: int, at: datetime
    ) -> StockApplied | None:
        """Record the inventory service's figure for a variant unless a newer one is already
        recorded, and the product's sum over its live variants; the variant's figure before
        and after, or None if nothing changed (no such variant, or a newer figure recorded).

        Stock events can arrive out of order (competing consumers, redeliveries): the
        one with the latest `updated_at` wins. The product's row is locked first, so two
        variants' figures arriving at once are summed one after the other (each statement
        then sees what the other committed), and the figure before is read after the lock.
        """
        locked = await self._session.execute(
            select(products.c.product_id).where(products.c.product_id == product_id).with_for_update()
        )
        if locked.first() is None:
            return None
        previous = variants.alias("previous")
        changed = (
            await self._session.execute(
                variants.update()
                .where(
                    variants.c.variant_id == variant_id,
                    variants.c.product_id == product_id,
                    or_(variants.c.stock_updated_at.is_(None), variants.c.stock_updated_at <= at),
                    previous.c.variant_id == variants.c.variant_id,
                )
                .values(available=available, stock_updated_at=at)
                .returning(previous.c.available)
            )
        ).first()
        if changed is None:
            return None
        await self.sum_stock(product_id, at)
        return StockApplied(before=changed.available, after=available)

    async def sum_stock(self, product_id: UUID, at: datetime | None = None) -> None:
        """The product's `available`: the sum over its live variants (its row locked by the caller)."""
        total = (
            select(func.coalesce(func.sum(variants.c.available), 0))
            .where(variants.c.product_id == product_id, variants.c.deleted_at.is_(None))
            .scalar_subquery()
        )
        values: dict[str, Any] = {"available": total}
        if at is not None:
            values["stock_updated_at"] = func.greatest(products.c.stock_updated_at, at)
        await self._session.execute(update(products).where(products.c.product_id == product_id).values(**values))

    @staticmethod
    def _product_row(product: Product) -> dict[str, Any]:
        return {
            "product_id": product.product_id,
            "seller_id": product.seller_id,
            "name": product.name,
            "description": product.description,
            "price_minor": product.price_minor,
            "currency": product.currency,
            "price_exponent": product.price_exponent,
            "category": product.category,
            "image_url": product.image_url,
            "images": [{"url": i.url, "alt": i.alt} for i in product.images],
            "options": [o.model_dump(mode="json") for o in product.options],
            "tax_class": product.tax_class,
            "available": product.available,
            "created_at": product.created_at,
            "updated_at": product.updated_at,
            "deleted_at": product.deleted_at,
        }

    @staticmethod
    def _variant_row(variant: Variant) -> dict[str, Any]:
        return {
            "variant_id": variant.variant_id,
            "product_id": variant.product_id,
            "seller_id": variant.seller_id,
            "sku": variant.sku,
            "options": dict(variant.options),
            "price_minor": variant.price_minor,
            "compare_at_minor": variant.compare_at_minor,
            "weight_grams": variant.weight_grams,
            "available": variant.available,
            "position": variant.position,
            "created_at": variant.created_at,
            "updated_at": variant.updated_at,
            "deleted_at": variant.deleted_at,
        }

    # --- categories ---------------------------------------------------------------------

    async def all_categories(self) -> list[Category]:
        rows = (await self._session.execute(select(categories))).all()
        return [Category(**row._mapping) for row in rows]

    async def category(self, slug: str, *, for_update: bool = False) -> Category | None:
        stmt = select(categories).where(categories.c.slug == slug)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._session.execute(stmt)).first()
        return Category(**row._mapping) if row else None

    async def category_exists(self, slug: str) -> bool:
        return bool(await self._session.scalar(select(exists().where(categories.c.slug == slug))))

    async def category_parents(self) -> dict[str, str | None]:
        rows = (await self._session.execute(select(categories.c.slug, categories.c.parent))).all()
        return {slug: parent for slug, parent in rows}

    async def add_category(self, category: Category) -> None:
        await self._session.execute(
            categories.insert().values(
                slug=category.slug,
                name=category.name,
                parent=category.parent,
                created_at=category.created_at,
                updated_at=category.updated_at,
            )
        )

    async def save_category(self, category: Category) -> None:
        await self._session.execute(
            categories.update()
            .where(categories.c.slug == category.slug)
            .values(name=category.name, parent=category.parent, updated_at=category.updated_at)
        )

    async def delete_category(self, slug: str) -> None:
        await self._session.execute(categories.delete().where(categories.c.slug == slug))

    async def category_in_use(self, slug: str) -> str | None:
        """What keeps a category: "subcategories", "products" (withdrawn ones count: orders name them) or None."""
        if await self._session.scalar(select(exists().where(categories.c.parent == slug))):
            return "subcategories"
        if await self._session.scalar(select(exists().where(products.c.category == slug))):
            return "products"
        return None
