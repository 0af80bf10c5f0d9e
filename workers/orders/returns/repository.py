"""Loading and saving returns and refunds (the orders schema).

Everything that decides how much of an order may still be returned or refunded first
locks the order's row (`lock_order`), so two requests for one order are decided one
after the other, each on what the other wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.tables.orders import order_returns, orders, refund_lines, refunds, return_lines
from workers.orders.returns.model import Refund, RefundLine, Return, ReturnLine

# What an erased customer's return says of why it came back.
ERASED_REASON = "(erased)"
_RETURN_FIELDS = (
    "order_id",
    "user_id",
    "requested_by",
    "status",
    "reason",
    "note",
    "currency",
    "decided_by",
    "requested_at",
    "decided_at",
    "received_at",
    "refunded_at",
    "updated_at",
)
_REFUND_FIELDS = (
    "order_id",
    "return_id",
    "user_id",
    "status",
    "amount_minor",
    "shipping_minor",
    "currency",
    "reason",
    "failure",
    "requested_by",
    "requested_at",
    "settled_at",
    "attempt",
    "retry_at",
)


class ReturnsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_order(self, order_id: UUID) -> bool:
        """Lock the order's row for this transaction; False if there is no such order."""
        row = await self._session.execute(
            select(orders.c.order_id).where(orders.c.order_id == order_id).with_for_update()
        )
        return row.first() is not None

    # --- returns ----------------------------------------------------------------------

    async def add_return(self, ret: Return) -> bool:
        """Insert a new return with its lines; False if its id is taken."""
        added = await self._session.execute(
            pg_insert(order_returns)
            .values(return_id=ret.return_id, **{name: getattr(ret, name) for name in _RETURN_FIELDS})
            .on_conflict_do_nothing()
            .returning(order_returns.c.return_id)
        )
        if added.first() is None:
            return False
        await self._session.execute(
            return_lines.insert(),
            [
                {
                    "return_id": ret.return_id,
                    "variant_id": x.variant_id,
                    "product_id": x.product_id,
                    "seller_id": x.seller_id,
                    "quantity": x.quantity,
                    "resaleable": x.resaleable,
                }
                for x in ret.lines
            ],
        )
        return True

    async def save_return(self, ret: Return) -> None:
        await self._session.execute(
            update(order_returns)
            .where(order_returns.c.return_id == ret.return_id)
            .values(**{name: getattr(ret, name) for name in _RETURN_FIELDS})
        )
        for x in ret.lines:
            await self._session.execute(
                update(return_lines)
                .where(return_lines.c.return_id == ret.return_id, return_lines.c.variant_id == x.variant_id)
                .values(resaleable=x.resaleable)
            )

    async def forget_reasons(self, user_id: UUID) -> None:
        await self._session.execute(
            update(order_returns).where(order_returns.c.user_id == user_id).values(reason=ERASED_REASON)
        )

    async def get_return(self, return_id: UUID) -> Return | None:
        found = await self._returns(order_returns.c.return_id == return_id)
        return found[0] if found else None

    async def returns_of(self, order_ids: Sequence[UUID]) -> list[Return]:
        """The orders' returns, oldest first."""
        if not order_ids:
            return []
        return await self._returns(order_returns.c.order_id.in_(order_ids), oldest_first=True)

    async def listing(
        self,
        *,
        user_id: UUID | None,
        seller_id: UUID | None,
        order_id: UUID | None,
        status: str | None,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> list[Return]:
        """Returns newest first, filtered, strictly after the cursor's (requested_at, return_id)."""
        r = order_returns.c
        conditions: list[Any] = []
        if user_id is not None:
            conditions.append(r.user_id == user_id)
        if seller_id is not None:
            conditions.append(
                r.return_id.in_(select(return_lines.c.return_id).where(return_lines.c.seller_id == seller_id))
            )
        if order_id is not None:
            conditions.append(r.order_id == order_id)
        if status is not None:
            conditions.append(r.status == status)
        if after is not None:
            conditions.append(tuple_(r.requested_at, r.return_id) < tuple_(*after))
        return await self._returns(*conditions, limit=limit)

    async def _returns(self, *conditions: Any, limit: int | None = None, oldest_first: bool = False) -> list[Return]:
        order = (
            (order_returns.c.requested_at, order_returns.c.return_id)
            if oldest_first
            else (order_returns.c.requested_at.desc(), order_returns.c.return_id.desc())
        )
        rows = list(await self._session.execute(select(order_returns).where(*conditions).order_by(*order).limit(limit)))
        if not rows:
            return []
        lines: dict[UUID, list[ReturnLine]] = {row.return_id: [] for row in rows}
        for x in await self._session.execute(
            select(return_lines).where(return_lines.c.return_id.in_(list(lines))).order_by(return_lines.c.variant_id)
        ):
            lines[x.return_id].append(ReturnLine(x.variant_id, x.product_id, x.seller_id, x.quantity, x.resaleable))
        return [
            Return(
                return_id=row.return_id,
                lines=tuple(lines[row.return_id]),
                **{name: row._mapping[name] for name in _RETURN_FIELDS},
            )
            for row in rows
        ]

    # --- refunds ----------------------------------------------------------------------

    async def add_refund(self, refund: Refund) -> bool:
        """Insert a new refund with its lines; False if its id is taken."""
        added = await self._session.execute(
            pg_insert(refunds)
            .values(refund_id=refund.refund_id, **{name: getattr(refund, name) for name in _REFUND_FIELDS})
            .on_conflict_do_nothing()
            .returning(refunds.c.refund_id)
        )
        if added.first() is None:
            return False
        if refund.lines:
            await self._session.execute(
                refund_lines.insert(),
                [
                    {
                        "refund_id": refund.refund_id,
                        "variant_id": x.variant_id,
                        "quantity": x.quantity,
                        "amount_minor": x.amount_minor,
                    }
                    for x in refund.lines
                ],
            )
        return True

    async def save_refund(self, refund: Refund) -> None:
        await self._session.execute(
            update(refunds)
            .where(refunds.c.refund_id == refund.refund_id)
            .values(
                status=refund.status,
                failure=refund.failure,
                settled_at=refund.settled_at,
                attempt=refund.attempt,
                retry_at=refund.retry_at,
            )
        )

    async def unanswered(self, now: datetime, limit: int) -> list[Refund]:
        """Pending refunds due to be asked for again, locked; rows another replica holds are skipped."""
        return await self._refunds(
            select(refunds)
            .where(refunds.c.status == "pending", refunds.c.retry_at <= now)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

    async def get_refund(self, refund_id: UUID, *, for_update: bool = False) -> Refund | None:
        query = select(refunds).where(refunds.c.refund_id == refund_id)
        found = await self._refunds(query.with_for_update() if for_update else query)
        return found[0] if found else None

    async def refunds_of(self, order_ids: Sequence[UUID]) -> list[Refund]:
        """The orders' refunds, oldest first."""
        if not order_ids:
            return []
        return await self._refunds(select(refunds).where(refunds.c.order_id.in_(order_ids)))

    async def _refunds(self, query: Any) -> list[Refund]:
        rows = list(await self._session.execute(query.order_by(refunds.c.requested_at, refunds.c.refund_id)))
        if not rows:
            return []
        lines: dict[UUID, list[RefundLine]] = {row.refund_id: [] for row in rows}
        for x in await self._session.execute(
            select(refund_lines).where(refund_lines.c.refund_id.in_(list(lines))).order_by(refund_lines.c.variant_id)
        ):
            lines[x.refund_id].append(RefundLine(x.variant_id, x.quantity, x.amount_minor))
        return [
            Refund(
                refund_id=row.refund_id,
                lines=tuple(lines[row.refund_id]),
                **{name: row._mapping[name] for name in _REFUND_FIELDS},
            )
            for row in rows
        ]


T = TypeVar("T", Return, Refund)


def grouped(items: Iterable[T]) -> dict[UUID, list[T]]:
    """Returns or refunds by their order's id."""
    by_order: dict[UUID, list[T]] = {}
    for item in items:
        by_order.setdefault(item.order_id, []).append(item)
    return by_order
