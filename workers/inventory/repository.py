"""Loading and saving stock and reservations.

Locks are always taken in one order, so two transactions never wait on each other in
a circle: a reservation row first (at most one, or the sweeper's batch, claimed with
SKIP LOCKED), then stock rows in variant-id order, in one statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import (
    ARRAY,
    DateTime,
    Integer,
    String,
    any_,
    bindparam,
    column,
    exists,
    func,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.inventory import FailedLine, ReservationLine
from db.prepared import Prepared, bind_columns
from db.tables.inventory import reservations, stock, stock_movements
from db.writes import insert_if_new
from kernel.tokens import Actor
from workers.inventory.model import Movement, Reservation, Stock, StockError

if TYPE_CHECKING:
    from workers.runtime.context import HandlerContext


_IDS = bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True)))
_MANY = Prepared(select(stock).where(stock.c.variant_id == any_(_IDS)))
_FOR_UPDATE = Prepared(
    select(stock).where(stock.c.variant_id == any_(_IDS)).order_by(stock.c.variant_id).with_for_update()
)
_LEDGER_GIVEN = ("kind", "reason", "reference", "actor_id", "actor_role", "correlation_id", "at")


def _move() -> Prepared:
    """One movement in one statement: the conditional update of the stock row and its
    ledger entry with the levels after it; the levels, or no row if the update would
    take stock below zero (then nothing is written)."""
    delta_available = bindparam("delta_available", type_=Integer)
    delta_reserved = bindparam("delta_reserved", type_=Integer)
    moved = (
        update(stock)
        .where(
            stock.c.variant_id == bindparam("s_variant_id"),
            stock.c.available + delta_available >= 0,
            stock.c.reserved + delta_reserved >= 0,
        )
        .values(
            available=stock.c.available + delta_available,
            reserved=stock.c.reserved + delta_reserved,
            updated_at=bindparam("m_at"),
            change_unannounced=bindparam("m_kind"),
        )
        .returning(stock.c.variant_id, stock.c.product_id, stock.c.available, stock.c.reserved)
        .cte("moved")
    )
    given = bind_columns(stock_movements, _LEDGER_GIVEN, "m_")
    ledger = (
        stock_movements.insert()
        .from_select(
            [
                "variant_id",
                "product_id",
                "delta_available",
                "delta_reserved",
                "available_after",
                "reserved_after",
                *given,
            ],
            select(
                moved.c.variant_id,
                moved.c.product_id,
                delta_available,
                delta_reserved,
                moved.c.available,
                moved.c.reserved,
                *given.values(),
            ),
        )
        .cte("ledger")
    )
    return Prepared(select(moved.c.available, moved.c.reserved).add_cte(ledger))


_MOVE = _move()


def _move_totals() -> Prepared:
    """Many movements of one kind in one statement: each stock row changed by its total
    (conditionally, as `_MOVE`), its levels after; a row the condition refused is missing."""
    totals = (
        func.unnest(
            bindparam("variant_ids", type_=ARRAY(PG_UUID(as_uuid=True))),
            bindparam("deltas_available", type_=ARRAY(Integer)),
            bindparam("deltas_reserved", type_=ARRAY(Integer)),
        )
        .table_valued("variant_id", "delta_available", "delta_reserved")
        .render_derived(name="totals")
    )
    return Prepared(
        update(stock)
        .where(
            stock.c.variant_id == totals.c.variant_id,
            stock.c.available + totals.c.delta_available >= 0,
            stock.c.reserved + totals.c.delta_reserved >= 0,
        )
        .values(
            available=stock.c.available + totals.c.delta_available,
            reserved=stock.c.reserved + totals.c.delta_reserved,
            updated_at=bindparam("at"),
            change_unannounced=bindparam("kind"),
        )
        .returning(stock.c.variant_id, stock.c.available, stock.c.reserved)
    )


_MOVE_TOTALS = _move_totals()
_LEDGER_ENTRY = Prepared(
    stock_movements.insert()
    .inline()
    .values(
        **bind_columns(
            stock_movements,
            (
                "variant_id",
                "product_id",
                "delta_available",
                "delta_reserved",
                "available_after",
                "reserved_after",
                *_LEDGER_GIVEN,
            ),
            "m_",
        )
    )
)
_RESERVATION_COLUMNS = ("order_id", "status", "lines", "failed", "expires_at", "updated_at")
_CLAIM_RESERVATION = Prepared(
    pg_insert(reservations)
    .values(
        created_at=bindparam("r_created_at"),
        **bind_columns(reservations, _RESERVATION_COLUMNS, "r_"),
    )
    .on_conflict_do_nothing()
    .returning(reservations.c.order_id)
)


def _claim_reservations() -> Prepared:
    """Placeholders (`failed`, nothing short yet) for many orders in one statement, in
    order-id order (the lock order); the orders that got one (an order with a row
    already is left out). The orders go as one JSON array of {order_id, lines}."""
    given = (
        func.jsonb_to_recordset(bindparam("orders", type_=JSONB))
        .table_valued(column("order_id", PG_UUID(as_uuid=True)), column("lines", JSONB))
        .render_derived(name="given", with_types=True)
    )
    rows = select(
        given.c.order_id,
        literal("failed", String),
        given.c.lines,
        bindparam("at", type_=DateTime(timezone=True)),
        bindparam("at", type_=DateTime(timezone=True)),
    ).order_by(given.c.order_id)
    return Prepared(
        pg_insert(reservations)
        .from_select(["order_id", "status", "lines", "created_at", "updated_at"], rows)
        .on_conflict_do_nothing()
        .returning(reservations.c.order_id)
    )


_CLAIM_RESERVATIONS = _claim_reservations()
_RESERVATION_FOR_UPDATE = Prepared(
    select(reservations).where(reservations.c.order_id == bindparam("order_id")).with_for_update()
)
_RESERVATIONS_FOR_UPDATE = Prepared(
    select(reservations)
    .where(reservations.c.order_id == any_(bindparam("order_ids", type_=ARRAY(PG_UUID(as_uuid=True)))))
    .order_by(reservations.c.order_id)
    .with_for_update()
)
_SAVE_RESERVATION = Prepared(
    update(reservations)
    .where(reservations.c.order_id == bindparam("r_order_id"))
    .values(**bind_columns(reservations, _RESERVATION_COLUMNS[1:], "r_"))
)


class InventoryRepository:
    """A reservation's reads and writes and every stock movement are statements compiled
    once and run on the transaction's asyncpg connection (db/prepared.py); the rest goes
    through the SQLAlchemy session."""

    def __init__(self, ctx: HandlerContext) -> None:
        self._ctx = ctx

    @property
    def _session(self) -> AsyncSession:
        return self._ctx.session

    # --- stock ------------------------------------------------------------------------

    async def add_stock(self, record: Stock) -> bool:
        """Insert a new stock row; False if the product has one already."""
        return await insert_if_new(
            self._session,
            stock,
            {
                "variant_id": record.variant_id,
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
        """Live variants at or below their threshold (one seller's, or all), lowest first."""
        rows = await self._session.execute(
            select(
                stock.c.variant_id,
                stock.c.product_id,
                stock.c.seller_id,
                stock.c.available,
                stock.c.low_stock_threshold,
            )
            .where(stock.c.available <= stock.c.low_stock_threshold, stock.c.discontinued_at.is_(None))
            .where(stock.c.seller_id == seller_id if seller_id is not None else true())
            .order_by(stock.c.available, stock.c.variant_id)
            .limit(limit)
        )
        return list(rows)

    async def get(self, variant_id: UUID) -> Stock | None:
        row = (await self._session.execute(select(stock).where(stock.c.variant_id == variant_id))).first()
        return _stock(row._mapping) if row else None

    async def has_live_variants(self, product_id: UUID) -> bool:
        """Whether the product has stock rows still on sale (of variants other than a default one)."""
        live = exists().where(stock.c.product_id == product_id, stock.c.discontinued_at.is_(None))
        return bool(await self._session.scalar(select(live)))

    async def product_known(self, product_id: UUID) -> bool:
        """Whether the product's listing (or its withdrawal, which leaves a row keyed by the
        product's id) arrived already."""
        return bool(await self._session.scalar(select(exists().where(stock.c.product_id == product_id))))

    async def many(self, variant_ids: Iterable[UUID]) -> dict[UUID, Stock]:
        """The stock rows as last committed, without locking them, by variant id."""
        rows = await _MANY.fetch(self._ctx.db, ids=list(set(variant_ids)))
        return {row["variant_id"]: _stock(row) for row in rows}

    async def take_unannounced(self, limit: int) -> list[Any]:
        """Rows with a change not yet announced, their marks cleared: product, levels,
        the latest movement's kind (`change`) and when. Rows another transaction holds
        (a reservation) are skipped: their mark stays for the next turn."""
        due = (
            select(stock.c.variant_id, stock.c.change_unannounced.label("change"))
            .where(stock.c.change_unannounced.is_not(None))
            .order_by(stock.c.variant_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("due")
        )
        rows = await self._session.execute(
            update(stock)
            .where(stock.c.variant_id == due.c.variant_id)
            .values(change_unannounced=None)
            .returning(
                stock.c.variant_id,
                stock.c.product_id,
                stock.c.available,
                stock.c.reserved,
                due.c.change,
                stock.c.updated_at,
            )
        )
        return list(rows)

    async def for_update(self, variant_ids: Iterable[UUID]) -> dict[UUID, Stock]:
        """Lock the stock rows, in variant-id order (the lock order of every transaction)."""
        ids = sorted(set(variant_ids))
        if not ids:
            return {}
        rows = await _FOR_UPDATE.fetch(self._ctx.db, ids=ids)
        return {row["variant_id"]: _stock(row) for row in rows}

    async def apply(
        self,
        movement: Movement,
        now: datetime,
        *,
        actor: Actor | None,
        correlation_id: str | None,
    ) -> tuple[int, int]:
        """Apply a movement as a conditional update and record it in the ledger (one
        statement).

        The condition keeps stock from going negative whatever the caller decided;
        the CHECK constraints are the last line behind it.
        """
        row = await _MOVE.fetchrow(
            self._ctx.db,
            s_variant_id=movement.variant_id,
            delta_available=movement.delta_available,
            delta_reserved=movement.delta_reserved,
            m_kind=movement.kind,
            m_reason=movement.reason,
            m_reference=movement.reference,
            m_actor_id=actor.user_id if actor else None,
            m_actor_role=actor.role if actor else None,
            m_correlation_id=correlation_id,
            m_at=now,
        )
        if row is None:
            raise StockError(f"stock of {movement.variant_id} would go negative")
        return int(row["available"]), int(row["reserved"])

    async def apply_together(self, moves: Sequence[tuple[Movement, Stock, HandlerContext]], now: datetime) -> None:
        """Apply movements of one kind to locked stock rows, several per row (commands
        handled together): each row changed once by its total, and a ledger entry per
        movement with the levels after it (`after`, as the caller computed them in
        order), whose actor and correlation are its command's. Two statements in all."""
        if not moves:
            return
        totals: dict[UUID, tuple[int, int]] = {}
        for movement, _, _ in moves:
            available, reserved = totals.get(movement.variant_id, (0, 0))
            totals[movement.variant_id] = (available + movement.delta_available, reserved + movement.delta_reserved)
        ids = sorted(totals)
        rows = await _MOVE_TOTALS.fetch(
            self._ctx.db,
            variant_ids=ids,
            deltas_available=[totals[i][0] for i in ids],
            deltas_reserved=[totals[i][1] for i in ids],
            at=now,
            kind=moves[0][0].kind,
        )
        last = {movement.variant_id: after for movement, after, _ in moves}
        levels = {row["variant_id"]: (row["available"], row["reserved"]) for row in rows}
        if levels != {i: (last[i].available, last[i].reserved) for i in ids}:
            # Not what the locked rows said: the caller decided wrongly. Nothing is kept (the
            # transaction rolls back).
            raise StockError(f"stock moved otherwise than decided: {sorted(set(ids) - levels.keys())} refused")
        await _LEDGER_ENTRY.executemany(
            self._ctx.db,
            [
                {
                    "m_variant_id": movement.variant_id,
                    "m_product_id": after.product_id,
                    "m_delta_available": movement.delta_available,
                    "m_delta_reserved": movement.delta_reserved,
                    "m_available_after": after.available,
                    "m_reserved_after": after.reserved,
                    "m_kind": movement.kind,
                    "m_reason": movement.reason,
                    "m_reference": movement.reference,
                    "m_actor_id": ctx.actor.user_id if ctx.actor else None,
                    "m_actor_role": ctx.actor.role if ctx.actor else None,
                    "m_correlation_id": ctx.envelope.correlation_id,
                    "m_at": now,
                }
                for movement, after, ctx in moves
            ],
        )

    async def set_threshold(self, variant_id: UUID, threshold: int, now: datetime) -> None:
        await self._session.execute(
            update(stock).where(stock.c.variant_id == variant_id).values(low_stock_threshold=threshold, updated_at=now)
        )

    async def discontinue(self, product_id: UUID, now: datetime, *, variant_id: UUID | None = None) -> int:
        """Stop selling the product's variants (or the one named); how many rows that stopped."""
        condition = stock.c.product_id == product_id
        if variant_id is not None:
            condition = condition & (stock.c.variant_id == variant_id)
        result = await self._session.execute(
            update(stock)
            .where(condition, stock.c.discontinued_at.is_(None))
            .values(discontinued_at=now, updated_at=now)
            .returning(stock.c.variant_id)
        )
        return len(result.all())

    # --- reservations -----------------------------------------------------------------

    async def claim_reservation(self, reservation: Reservation) -> bool:
        """Insert the reservation row if the order has none; False if it has.

        Two commands for one order serialize here: the second waits for the first to
        commit, then finds its row.
        """
        values = _reservation_values(reservation)
        return (
            await _CLAIM_RESERVATION.fetchrow(self._ctx.db, r_created_at=reservation.created_at, **values) is not None
        )

    async def reservation_for_update(self, order_id: UUID) -> Reservation | None:
        row = await _RESERVATION_FOR_UPDATE.fetchrow(self._ctx.db, order_id=order_id)
        return _reservation(row) if row else None

    async def save_reservation(self, reservation: Reservation) -> None:
        await _SAVE_RESERVATION.execute(self._ctx.db, **_reservation_values(reservation))

    async def claim_reservations(self, placeholders: Sequence[Reservation]) -> set[UUID]:
        """`claim_reservation` for many orders in one statement (created now, `failed`
        until saved): the orders that got their row now."""
        if not placeholders:
            return set()
        orders = [
            {"order_id": str(r.order_id), "lines": [line.model_dump(mode="json") for line in r.lines]}
            for r in placeholders
        ]
        rows = await _CLAIM_RESERVATIONS.fetch(self._ctx.db, orders=orders, at=placeholders[0].created_at)
        return {row["order_id"] for row in rows}

    async def reservations_for_update(self, order_ids: Iterable[UUID]) -> dict[UUID, Reservation]:
        """Lock the orders' reservations, in order-id order."""
        ids = sorted(set(order_ids))
        if not ids:
            return {}
        rows = await _RESERVATIONS_FOR_UPDATE.fetch(self._ctx.db, order_ids=ids)
        return {row["order_id"]: _reservation(row) for row in rows}

    async def save_reservations(self, saved: Sequence[Reservation]) -> None:
        """`save_reservation` for many, pipelined (one round trip)."""
        await _SAVE_RESERVATION.executemany(self._ctx.db, [_reservation_values(r) for r in saved])

    async def expired_for_update(self, now: datetime, limit: int) -> Sequence[Reservation]:
        """Live reservations past their TTL that no other transaction holds."""
        rows = await self._session.execute(
            select(reservations)
            .where(reservations.c.status == "reserved", reservations.c.expires_at <= now)
            .order_by(reservations.c.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_reservation(row._mapping) for row in rows]


def _stock(row: Mapping[Any, Any]) -> Stock:
    return Stock(
        variant_id=row["variant_id"],
        product_id=row["product_id"],
        seller_id=row["seller_id"],
        available=row["available"],
        reserved=row["reserved"],
        low_stock_threshold=row["low_stock_threshold"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        discontinued_at=row["discontinued_at"],
    )


def _reservation_values(reservation: Reservation) -> dict[str, Any]:
    """The row's columns as the statements above name their parameters."""
    return {
        "r_order_id": reservation.order_id,
        "r_status": reservation.status,
        "r_lines": [line.model_dump(mode="json") for line in reservation.lines],
        "r_failed": [line.model_dump(mode="json") for line in reservation.failed],
        "r_expires_at": reservation.expires_at,
        "r_updated_at": reservation.updated_at,
    }


def _reservation(row: Mapping[Any, Any]) -> Reservation:
    return Reservation(
        order_id=row["order_id"],
        status=row["status"],
        lines=tuple(ReservationLine.model_validate(line) for line in row["lines"]),
        failed=tuple(FailedLine.model_validate(line) for line in row["failed"]),
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
