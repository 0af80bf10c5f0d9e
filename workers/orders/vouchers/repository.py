"""Vouchers and their uses in the orders schema.

A use is taken in the transaction that places the order: the voucher's row is updated
only while `uses < usage_limit` (so concurrent checkouts queue on its lock and the limit
holds), then the customer's uses are counted under that lock (each statement of a READ
COMMITTED transaction sees what committed before it, and any other checkout of the same
voucher waits for this one) and the use is written, keyed by the order. It is redeemed or
released in the transaction that moves the order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.tables.orders import voucher_uses, vouchers
from workers.orders.vouchers.model import UseStep, Voucher

_REDEEMED = (
    select(func.count())
    .where(voucher_uses.c.voucher_id == vouchers.c.voucher_id, voucher_uses.c.state == "redeemed")
    .scalar_subquery()
    .label("redeemed")
)
_COLUMNS = (*(c for c in vouchers.c), _REDEEMED)


def _voucher(row: Any) -> Voucher:
    fields = dict(row._mapping)
    fields["categories"] = tuple(fields["categories"])
    fields["sellers"] = tuple(fields["sellers"])
    return Voucher(**fields)


def _row(voucher: Voucher) -> dict[str, Any]:
    return {
        "percent": voucher.percent,
        "amounts": dict(voucher.amounts),
        "min_spend": dict(voucher.min_spend),
        "starts_at": voucher.starts_at,
        "ends_at": voucher.ends_at,
        "usage_limit": voucher.usage_limit,
        "per_customer_limit": voucher.per_customer_limit,
        "categories": list(voucher.categories),
        "sellers": list(voucher.sellers),
        "active": voucher.active,
        "updated_at": voucher.updated_at,
    }


class VoucherRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def listing(self, active: bool | None = None) -> list[Voucher]:
        query = select(*_COLUMNS).order_by(vouchers.c.code)
        if active is not None:
            query = query.where(vouchers.c.active == active)
        return [_voucher(row) for row in await self._session.execute(query)]

    async def get(self, voucher_id: UUID, *, for_update: bool = False) -> Voucher | None:
        query = select(*_COLUMNS).where(vouchers.c.voucher_id == voucher_id)
        row = (await self._session.execute(query.with_for_update(of=vouchers) if for_update else query)).first()
        return _voucher(row) if row is not None else None

    async def by_code(self, code: str) -> Voucher | None:
        """The voucher of a code, whatever its case (kept upper-case). Its counts are not read: the
        checkout's reservation decides on them."""
        query = select(*vouchers.c).where(vouchers.c.code == code.upper())
        row = (await self._session.execute(query)).first()
        return _voucher(row) if row is not None else None

    async def add(self, voucher: Voucher) -> bool:
        """False if the code is taken."""
        result = await self._session.execute(
            insert(vouchers)
            .values(voucher_id=voucher.voucher_id, code=voucher.code, created_at=voucher.created_at, **_row(voucher))
            .on_conflict_do_nothing(index_elements=[vouchers.c.code])
            .returning(vouchers.c.voucher_id)
        )
        return result.first() is not None

    async def save(self, voucher: Voucher) -> None:
        await self._session.execute(
            update(vouchers).where(vouchers.c.voucher_id == voucher.voucher_id).values(**_row(voucher))
        )

    async def reserve(
        self, voucher: Voucher, order_id: UUID, user_id: UUID, discount_minor: int, currency: str, now: datetime
    ) -> str | None:
        """Take a use of `voucher` for the order; None if taken, else why not (`used_up`:
        no use left; `customer_limit`: this customer has used it as often as it allows)."""
        taken = await self._session.execute(
            update(vouchers)
            .where(
                vouchers.c.voucher_id == voucher.voucher_id,
                (vouchers.c.usage_limit.is_(None)) | (vouchers.c.uses < vouchers.c.usage_limit),
            )
            .values(uses=vouchers.c.uses + 1, updated_at=now)
            .returning(vouchers.c.per_customer_limit)
        )
        row = taken.first()
        if row is None:
            return "used_up"
        held = select(func.count()).where(
            voucher_uses.c.voucher_id == voucher.voucher_id,
            voucher_uses.c.user_id == user_id,
            voucher_uses.c.state != "released",
        )
        within = literal(True) if row.per_customer_limit is None else held.scalar_subquery() < row.per_customer_limit
        written = await self._session.execute(
            voucher_uses.insert()
            .from_select(
                [
                    "order_id",
                    "voucher_id",
                    "user_id",
                    "state",
                    "discount_minor",
                    "currency",
                    "created_at",
                    "updated_at",
                ],
                select(
                    literal(order_id),
                    literal(voucher.voucher_id),
                    literal(user_id),
                    literal("reserved"),
                    literal(discount_minor),
                    literal(currency),
                    literal(now),
                    literal(now),
                ).where(within),
            )
            .returning(voucher_uses.c.order_id)
        )
        return None if written.first() is not None else "customer_limit"

    async def settle(self, order_id: UUID, step: UseStep, now: datetime) -> None:
        """Redeem the order's reserved use, or release the use it holds (the voucher's count
        given back); nothing if it holds none."""
        if step == "redeem":
            await self._session.execute(
                update(voucher_uses)
                .where(voucher_uses.c.order_id == order_id, voucher_uses.c.state == "reserved")
                .values(state="redeemed", updated_at=now)
            )
            return
        released = (
            update(voucher_uses)
            .where(voucher_uses.c.order_id == order_id, voucher_uses.c.state != "released")
            .values(state="released", updated_at=now)
            .returning(voucher_uses.c.voucher_id)
            .cte("released")
        )
        await self._session.execute(
            update(vouchers)
            .where(vouchers.c.voucher_id == released.c.voucher_id)
            .values(uses=vouchers.c.uses - 1, updated_at=now)
            .add_cte(released)
        )
