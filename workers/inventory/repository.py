"""Loading and saving stock and reservations.

Locks are always taken in one order, so two transactions never wait on each other in
a circle: a reservation row first (at most one, or the sweeper's batch, claimed with
SKIP LOCKED), then stock rows in product-id order, in one statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from agora.tokens import Actor
from contracts.inventory import FailedLine, ReservationLine
from db.tables import reservations, stock, stock_movements
from db.writes import insert_if_new
from workers.inventory.model import Movement, Reservation, Stock, StockError


class InventoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- stock ------------------------------------------------------------------------

    async def add_stock(self, record: Stock) -> bool:
        """Insert a new stock row; False if the product has one already."""
        return await insert_if_new(
            self._session,
            stock,
            {
                "product_id": record.product_id,
                "seller_id": record.seller_id,
                "available": record.available,
                "reserved": record.reserved,
                "low_stock_threshold": record.low_stock_threshold,
                "created_at": record.created_at,
                "updated_at": record.updated_at,
            },
        )

    async def low_stock(self, seller_id: UUID | None, limit: int) -> list[Any]:
        """Live products at or below their threshold (one seller's, or all), lowest first."""
        rows = await self._session.execute(
            select(stock.c.product_id, stock.c.seller_id, stock.c.available, stock.c.low_stock_threshold)
            .where(stock.c.available <= stock.c.low_stock_threshold, stock.c.discontinued_at.is_(None))
            .where(stock.c.seller_id == seller_id if seller_id is not None else true())
            .order_by(stock.c.available, stock.c.product_id)
            .limit(limit)
        )
        return list(rows)

    async def get(self, product_id: UUID) -> Stock | None:
        row = (await self._session.execute(select(stock).where(stock.c.product_id == product_id))).first()
        return _stock(row) if row else None

    async def many(self, product_ids: Iterable[UUID]) -> dict[UUID, Stock]:
        """The stock rows as last committed, without locking them."""
        rows = await self._session.execute(select(stock).where(stock.c.product_id.in_(set(product_ids))))
        return {row.product_id: _stock(row) for row in rows}

    async def take_unannounced(self, limit: int) -> list[Any]:
        """Rows with a change not yet announced, their marks cleared: product, levels,
        the latest movement's kind (`change`) and when. Rows another transaction holds
        (a reservation) are skipped: their mark stays for the next turn."""
        due = (
            select(stock.c.product_id, stock.c.change_unannounced.label("change"))
            .where(stock.c.change_unannounced.is_not(None))
            .order_by(stock.c.product_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("due")
        )
        rows = await self._session.execute(
            update(stock)
            .where(stock.c.product_id == due.c.product_id)
            .values(change_unannounced=None)
            .returning(stock.c.product_id, stock.c.available, stock.c.reserved, due.c.change, stock.c.updated_at)
        )
        return list(rows)

    async def for_update(self, product_ids: Iterable[UUID]) -> dict[UUID, Stock]:
        """Lock the stock rows, in product-id order (the lock order of every transaction)."""
        ids = sorted(set(product_ids))
        if not ids:
            return {}
        rows = await self._session.execute(
            select(stock).where(stock.c.product_id.in_(ids)).order_by(stock.c.product_id).with_for_update()
        )
        return {row.product_id: _stock(row) for row in rows}

    async def apply(
        self,
        movement: Movement,
        now: datetime,
        *,
        actor: Actor | None,
        correlation_id: str | None,
    ) -> tuple[int, int]:
        """Apply a movement as a conditional update and record it in the ledger.

        The condition keeps stock from going negative whatever the caller decided;
        the CHECK constraints are the last line behind it.
        """
        new_available = stock.c.available + movement.delta_available
        new_reserved = stock.c.reserved + movement.delta_reserved
        row = (
            await self._session.execute(
                update(stock)
                .where(stock.c.product_id == movement.product_id, new_available >= 0, new_reserved >= 0)
                .values(
                    available=new_available, reserved=new_reserved, updated_at=now, change_unannounced=movement.kind
                )
                .returning(stock.c.available, stock.c.reserved)
            )
        ).first()
        if row is None:
            raise StockError(f"stock of {movement.product_id} would go negative")
        await self._session.execute(
            stock_movements.insert().values(
                product_id=movement.product_id,
                kind=movement.kind,
                delta_available=movement.delta_available,
                delta_reserved=movement.delta_reserved,
                available_after=row.available,
                reserved_after=row.reserved,
                reason=movement.reason,
                reference=movement.reference,
                actor_id=actor.user_id if actor else None,
                actor_role=actor.role if actor else None,
                correlation_id=correlation_id,
                at=now,
            )
        )
        return int(row.available), int(row.reserved)

    async def set_threshold(self, product_id: UUID, threshold: int, now: datetime) -> None:
        await self._session.execute(
            update(stock).where(stock.c.product_id == product_id).values(low_stock_threshold=threshold, updated_at=now)
        )

    async def discontinue(self, product_id: UUID, now: datetime) -> bool:
        result = await self._session.execute(
            update(stock)
            .where(stock.c.product_id == product_id, stock.c.discontinued_at.is_(None))
            .values(discontinued_at=now, updated_at=now)
            .returning(stock.c.product_id)
        )
        return result.first() is not None

    # --- reservations -----------------------------------------------------------------

    async def claim_reservation(self, reservation: Reservation) -> bool:
        """Insert the reservation row if the order has none; False if it has.

        Two commands for one order serialize here: the second waits for the first to
        commit, then finds its row.
        """
        values = {**_reservation_values(reservation), "created_at": reservation.created_at}
        return await insert_if_new(self._session, reservations, values)

    async def reservation_for_update(self, order_id: UUID) -> Reservation | None:
        row = (
            await self._session.execute(
                select(reservations).where(reservations.c.order_id == order_id).with_for_update()
            )
        ).first()
        return _reservation(row) if row else None

    async def save_reservation(self, reservation: Reservation) -> None:
        await self._session.execute(
            update(reservations)
            .where(reservations.c.order_id == reservation.order_id)
            .values(**_reservation_values(reservation))
        )

    async def expired_for_update(self, now: datetime, limit: int) -> Sequence[Reservation]:
        """Live reservations past their TTL that no other transaction holds."""
        rows = await self._session.execute(
            select(reservations)
            .where(reservations.c.status == "reserved", reservations.c.expires_at <= now)
            .order_by(reservations.c.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_reservation(row) for row in rows]


def _stock(row: Any) -> Stock:
    return Stock(
        product_id=row.product_id,
        seller_id=row.seller_id,
        available=row.available,
        reserved=row.reserved,
        low_stock_threshold=row.low_stock_threshold,
        created_at=row.created_at,
        updated_at=row.updated_at,
        discontinued_at=row.discontinued_at,
    )


def _reservation_values(reservation: Reservation) -> dict[str, Any]:
    return {
        "order_id": reservation.order_id,
        "status": reservation.status,
        "lines": [line.model_dump(mode="json") for line in reservation.lines],
        "failed": [line.model_dump(mode="json") for line in reservation.failed],
        "expires_at": reservation.expires_at,
        "updated_at": reservation.updated_at,
    }


def _reservation(row: Any) -> Reservation:
    return Reservation(
        order_id=row.order_id,
        status=row.status,
        lines=tuple(ReservationLine.model_validate(line) for line in row.lines),
        failed=tuple(FailedLine.model_validate(line) for line in row.failed),
        expires_at=row.expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
