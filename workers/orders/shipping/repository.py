"""Shipping methods in the orders schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.tables.orders import shipping_methods
from workers.orders.shipping.model import ShippingMethod

_COLUMNS = (
    shipping_methods.c.method_id,
    shipping_methods.c.name,
    shipping_methods.c.countries,
    shipping_methods.c.prices,
    shipping_methods.c.free_from,
    shipping_methods.c.min_days,
    shipping_methods.c.max_days,
    shipping_methods.c.created_at,
    shipping_methods.c.updated_at,
)


def _method(row: Any) -> ShippingMethod:
    fields = dict(row._mapping)
    fields["countries"] = tuple(fields["countries"])
    return ShippingMethod(**fields)


def _row(method: ShippingMethod) -> dict[str, Any]:
    return {
        "name": method.name,
        "countries": list(method.countries),
        "prices": dict(method.prices),
        "free_from": dict(method.free_from),
        "min_days": method.min_days,
        "max_days": method.max_days,
        "updated_at": method.updated_at,
    }


class ShippingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def live(self) -> list[ShippingMethod]:
        rows = await self._session.execute(
            select(*_COLUMNS).where(shipping_methods.c.deleted_at.is_(None)).order_by(shipping_methods.c.name)
        )
        return [_method(row) for row in rows]

    async def get(self, method_id: UUID, *, for_update: bool = False) -> ShippingMethod | None:
        query = select(*_COLUMNS).where(
            shipping_methods.c.method_id == method_id, shipping_methods.c.deleted_at.is_(None)
        )
        row = (await self._session.execute(query.with_for_update() if for_update else query)).first()
        return _method(row) if row is not None else None

    async def add(self, method: ShippingMethod) -> None:
        await self._session.execute(
            shipping_methods.insert().values(method_id=method.method_id, created_at=method.created_at, **_row(method))
        )

    async def save(self, method: ShippingMethod) -> None:
        await self._session.execute(
            update(shipping_methods).where(shipping_methods.c.method_id == method.method_id).values(**_row(method))
        )

    async def delete(self, method_id: UUID, now: datetime) -> None:
        await self._session.execute(
            update(shipping_methods).where(shipping_methods.c.method_id == method_id).values(deleted_at=now)
        )
