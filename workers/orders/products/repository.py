"""The catalog's products as the orders service knows them: a read model kept from catalog events.

Carts show names and current prices from it, and orders are priced from it, without
reading the catalog's schema (architecture §1). Events may arrive out of order and
more than once: a row keeps the time of the newest event applied (`updated_at`), an
older event never overwrites it, and a deletion is final (a delete that overtakes its
product's creation leaves a tombstone that the creation then finds).
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import asyncpg
from sqlalchemy import ARRAY, any_, bindparam, func, select, true, update
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.prepared import Prepared
from db.tables.orders import order_products, order_variants
from workers.orders.products.model import ProductSnapshot, VariantSnapshot

_IDS = bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True)))
# The products and all their variants, in one statement (a product has at most 100).
_SNAPSHOT = Prepared(
    select(
        order_products,
        order_variants.c.variant_id,
        order_variants.c.sku,
        order_variants.c.label,
        order_variants.c.price_minor.label("variant_price_minor"),
        order_variants.c.deleted.label("variant_deleted"),
    )
    .select_from(order_products.outerjoin(order_variants, order_variants.c.product_id == order_products.c.product_id))
    .where(order_products.c.product_id == any_(_IDS))
)


async def product_snapshot(db: asyncpg.Connection, ids: Iterable[UUID]) -> dict[UUID, ProductSnapshot]:
    """The products named, with their variants, as last heard from the catalog (deleted ones
    included, flagged)."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await _SNAPSHOT.fetch(db, ids=wanted)
    variants: dict[UUID, dict[UUID, VariantSnapshot]] = {}
    for row in rows:
        found = variants.setdefault(row["product_id"], {})
        if row["variant_id"] is not None:
            found[row["variant_id"]] = VariantSnapshot(
                row["variant_id"], row["sku"], row["label"], row["variant_price_minor"], row["variant_deleted"]
            )
    return {
        row["product_id"]: ProductSnapshot(
            row["product_id"],
            row["seller_id"],
            row["name"],
            row["price_minor"],
            row["currency"],
            row["deleted"],
            row["has_options"],
            variants[row["product_id"]],
            row["image_url"],
            row["tax_class"],
            row["category"],
        )
        for row in rows
    }


async def upsert(session: AsyncSession, product_id: UUID, changes: dict[str, object], *, final: bool = False) -> None:
    """Apply what an event says, unless a newer event was applied already.

    A row first made by an update or a delete (its creation still on the way) gets
    placeholders for what that event did not carry; the creation fills them in.
    """
    placeholders: dict[str, object] = {"name": "", "price_minor": 0, "currency": "", "updated_at": func.now()}
    statement = insert(order_products).values(product_id=product_id, **{**placeholders, **changes})
    newer = true() if final else order_products.c.updated_at <= statement.excluded.updated_at
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[order_products.c.product_id],
            set_={name: statement.excluded[name] for name in changes},
            where=newer,
        )
    )


async def mark_options(session: AsyncSession, product_id: UUID) -> None:
    """The product has options (known from its creation, whichever event made its row)."""
    await session.execute(
        update(order_products).where(order_products.c.product_id == product_id).values(has_options=True)
    )


async def upsert_variant(
    session: AsyncSession, variant_id: UUID, product_id: UUID, changes: dict[str, object], *, final: bool = False
) -> None:
    """Apply what an event says of a variant, unless a newer event was applied already (a
    withdrawal is final, as a product's deletion is)."""
    placeholders: dict[str, object] = {"label": "", "price_minor": 0, "updated_at": func.now()}
    statement = insert(order_variants).values(
        variant_id=variant_id, product_id=product_id, **{**placeholders, **changes}
    )
    newer = true() if final else order_variants.c.updated_at <= statement.excluded.updated_at
    if not final:
        newer = newer & order_variants.c.deleted.is_(False)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[order_variants.c.variant_id],
            set_={name: statement.excluded[name] for name in changes},
            where=newer,
        )
    )
