"""Loading and saving carts.

Every change locks its cart row first (`FOR UPDATE`), so two changes of one cart
serialize. A merge locks the member's cart, then the guest's; nothing locks a guest
cart before a member's, so two transactions never wait on each other in a circle.
Taking a confirmed order's lines out of a member's cart (`take_ordered`) is one
statement, whose row locks are the cart lines it changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from sqlalchemy import ARRAY, Integer, and_, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.prepared import Prepared
from db.tables.orders import cart_items, carts
from workers.orders.carts.model import Cart, Line


def _take_ordered() -> Prepared:
    """Subtract the ordered quantities (`:variant_ids`, `:quantities`) from the member's
    (`:user_id`) cart lines of those variants, deleting the lines that reach 0."""
    ordered = (
        func.unnest(
            bindparam("variant_ids", type_=ARRAY(PG_UUID(as_uuid=True))),
            bindparam("quantities", type_=ARRAY(Integer())),
        )
        .table_valued("variant_id", "quantity")
        .render_derived(name="ordered")
    )
    cart = select(carts.c.cart_id).where(carts.c.user_id == bindparam("user_id")).scalar_subquery()
    line = and_(cart_items.c.cart_id == cart, cart_items.c.variant_id == ordered.c.variant_id)
    gone = delete(cart_items).where(line, cart_items.c.quantity <= ordered.c.quantity).cte("gone")
    fewer = (
        update(cart_items)
        .where(line, cart_items.c.quantity > ordered.c.quantity)
        .values(quantity=cart_items.c.quantity - ordered.c.quantity)
    )
    return Prepared(fewer.add_cte(gone))


_TAKE_ORDERED = _take_ordered()


async def take_ordered(db: asyncpg.Connection, user_id: UUID, ordered: Sequence[tuple[UUID, int]]) -> None:
    """Take what a member's confirmed order holds, (variant id, quantity) each, out of
    their cart: a line the order took whole goes, one the member added to since keeps the
    difference, and lines the order did not hold stay."""
    variant_ids, quantities = [v for v, _ in ordered], [q for _, q in ordered]
    await _TAKE_ORDERED.execute(db, user_id=user_id, variant_ids=variant_ids, quantities=quantities)


class CartRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def guest(self, cart_id: UUID, *, lock: bool = False) -> Cart | None:
        """A guest cart by id; a member's cart is never found this way."""
        return await self._one(select(carts).where(carts.c.cart_id == cart_id, carts.c.user_id.is_(None)), lock)

    async def member(self, user_id: UUID, *, lock: bool = False) -> Cart | None:
        return await self._one(select(carts).where(carts.c.user_id == user_id), lock)

    async def open_guest(self, cart_id: UUID, now: datetime) -> Cart | None:
        """The guest cart, made if new, locked; None if the id belongs to a member's cart."""
        await self._session.execute(
            insert(carts).values(cart_id=cart_id, user_id=None, created_at=now, updated_at=now).on_conflict_do_nothing()
        )
        return await self.guest(cart_id, lock=True)

    async def open_member(self, user_id: UUID, now: datetime) -> Cart:
        """The member's cart, made if they have none, locked."""
        await self._session.execute(
            insert(carts)
            .values(cart_id=uuid4(), user_id=user_id, created_at=now, updated_at=now)
            .on_conflict_do_nothing()
        )
        cart = await self.member(user_id, lock=True)
        assert cart is not None
        return cart

    async def save(self, before: Cart, after: Cart, now: datetime) -> None:
        kept = {line.variant_id for line in after.lines}
        gone = [line.variant_id for line in before.lines if line.variant_id not in kept]
        if gone:
            await self._session.execute(
                delete(cart_items).where(cart_items.c.cart_id == after.cart_id, cart_items.c.variant_id.in_(gone))
            )
        changed = [line for line in after.lines if line not in before.lines]
        if changed:
            statement = insert(cart_items).values(
                [
                    {
                        "cart_id": after.cart_id,
                        "variant_id": x.variant_id,
                        "product_id": x.product_id,
                        "quantity": x.quantity,
                        "added_at": x.added_at,
                    }
                    for x in changed
                ]
            )
            await self._session.execute(
                statement.on_conflict_do_update(
                    index_elements=[cart_items.c.cart_id, cart_items.c.variant_id],
                    set_={"quantity": statement.excluded.quantity},
                )
            )
        await self._session.execute(update(carts).where(carts.c.cart_id == after.cart_id).values(updated_at=now))

    async def delete_member(self, user_id: UUID) -> None:
        """Delete the member's cart and its lines (the account was erased)."""
        await self._session.execute(delete(carts).where(carts.c.user_id == user_id))

    async def delete(self, cart_id: UUID) -> None:
        await self._session.execute(delete(carts).where(carts.c.cart_id == cart_id))

    async def sweep_guests(self, before: datetime, limit: int) -> int:
        """Delete guest carts untouched since `before` that no one holds; how many went."""
        stale = (
            select(carts.c.cart_id)
            .where(carts.c.user_id.is_(None), carts.c.updated_at < before)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        result = await self._session.execute(delete(carts).where(carts.c.cart_id.in_(stale)).returning(carts.c.cart_id))
        return len(result.all())

    async def _one(self, query: Any, lock: bool) -> Cart | None:
        row = (await self._session.execute(query.with_for_update() if lock else query)).first()
        if row is None:
            return None
        lines = await self._session.execute(
            select(cart_items)
            .where(cart_items.c.cart_id == row.cart_id)
            .order_by(cart_items.c.added_at, cart_items.c.variant_id)
        )
        return Cart(row.cart_id, row.user_id, _lines(lines.all()))


def _lines(rows: Sequence[Any]) -> tuple[Line, ...]:
    return tuple(Line(row.product_id, row.quantity, row.added_at, row.variant_id) for row in rows)
