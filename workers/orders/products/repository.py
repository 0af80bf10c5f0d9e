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
from sqlalchemy import ARRAY, any_, bindparam, func, select, true
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.prepared import Prepared
from db.tables.orders import order_products
from workers.orders.products.model import ProductSnapshot

_SNAPSHOT = Prepared(
    select(order_products).where(
        order_products.c.product_id == any_(bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True))))
    )
)


async def product_snapshot(db: asyncpg.Connection, ids: Iterable[UUID]) -> dict[UUID, ProductSnapshot]:
    """The products named, as last heard from the catalog (deleted ones included, flagged)."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    return {
        row["product_id"]: ProductSnapshot(
            row["product_id"], row["seller_id"], row["name"], row["price_minor"], row["currency"], row["deleted"]
        )
        for row in await _SNAPSHOT.fetch(db, ids=wanted)
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
