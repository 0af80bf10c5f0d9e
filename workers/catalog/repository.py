"""Loading and saving products and categories (the catalog schema)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.tables.catalog import categories, products
from workers.catalog.model import Category, Product

_PRODUCT_COLUMNS = (
    products.c.product_id,
    products.c.seller_id,
    products.c.name,
    products.c.description,
    products.c.price_minor,
    products.c.currency,
    products.c.category,
    products.c.image_url,
    products.c.created_at,
    products.c.updated_at,
    products.c.deleted_at,
    products.c.available,
)


def to_product(row: Any) -> Product:
    return Product(**{c.name: row._mapping[c.name] for c in _PRODUCT_COLUMNS})


def product_columns() -> tuple[Any, ...]:
    return _PRODUCT_COLUMNS


class CatalogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- products -----------------------------------------------------------------------

    async def live_product(self, product_id: UUID, *, for_update: bool = False) -> Product | None:
        """A product that has not been withdrawn; locked for a change if asked."""
        stmt = select(*_PRODUCT_COLUMNS).where(products.c.product_id == product_id, products.c.deleted_at.is_(None))
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._session.execute(stmt)).first()
        return to_product(row) if row else None

    async def add_product(self, product: Product) -> None:
        await self._session.execute(products.insert().values(**self._product_row(product)))

    async def add_products(self, many: Sequence[Product]) -> None:
        await self._session.execute(products.insert(), [self._product_row(p) for p in many])

    async def count_products(self) -> int:
        """Every product row, withdrawn ones included."""
        return int(await self._session.scalar(select(func.count()).select_from(products)) or 0)

    async def save_product(self, product: Product) -> None:
        row = self._product_row(product)
        del row["available"]  # the stock read model is the inventory events' to change
        await self._session.execute(products.update().where(products.c.product_id == product.product_id).values(**row))

    async def apply_stock(self, product_id: UUID, available: int, at: datetime) -> None:
        """Record the inventory service's figure unless a newer one is already recorded.

        Stock events can arrive out of order (competing consumers, redeliveries): the
        one with the latest `updated_at` wins.
        """
        await self._session.execute(
            products.update()
            .where(
                products.c.product_id == product_id,
                or_(products.c.stock_updated_at.is_(None), products.c.stock_updated_at <= at),
            )
            .values(available=available, stock_updated_at=at)
        )

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
            "available": product.available,
            "created_at": product.created_at,
            "updated_at": product.updated_at,
            "deleted_at": product.deleted_at,
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
