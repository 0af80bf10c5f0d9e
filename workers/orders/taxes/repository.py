"""Tax rates and currency settings in the orders schema."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.prepared import Prepared
from db.tables.orders import currency_tax, tax_rates
from workers.orders.taxes.model import Taxes, TaxRate

_RATE_FIELDS = tuple(column.name for column in tax_rates.c)
# The country's rates and the currency's setting: one row even for a country without
# rates (the setting's). Read as an order is placed, so a prepared statement (db/prepared.py).
_DESTINATION = Prepared(
    text(
        f"""
        SELECT {", ".join(f"t.{name}" for name in _RATE_FIELDS)},
            coalesce((SELECT prices_include_tax FROM orders.currency_tax WHERE currency = :currency), false)
                AS prices_include_tax
        FROM (SELECT 1) AS one LEFT JOIN orders.tax_rates t ON t.country = :country
        """
    )
)


async def for_destination(conn: asyncpg.Connection, country: str, currency: str) -> Taxes:
    """The rates an order to `country` in `currency` is taxed with, in one statement."""
    rows = await _DESTINATION.fetch(conn, country=country, currency=currency)
    return Taxes(
        tuple(_rate(row) for row in rows if row["rate_id"] is not None),
        bool(rows[0]["prices_include_tax"]),
    )


def _rate(row: Mapping[Any, Any]) -> TaxRate:
    """A rate from its row: an asyncpg record, or a SQLAlchemy row's `_mapping`."""
    return TaxRate(**{name: row[name] for name in _RATE_FIELDS})


class TaxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def rates(self, country: str | None = None) -> list[TaxRate]:
        query = select(tax_rates).order_by(tax_rates.c.country, tax_rates.c.region, tax_rates.c.tax_class)
        if country is not None:
            query = query.where(tax_rates.c.country == country)
        return [_rate(row._mapping) for row in await self._session.execute(query)]

    async def get(self, rate_id: UUID, *, for_update: bool = False) -> TaxRate | None:
        query = select(tax_rates).where(tax_rates.c.rate_id == rate_id)
        row = (await self._session.execute(query.with_for_update() if for_update else query)).first()
        return _rate(row._mapping) if row is not None else None

    async def add(self, rate: TaxRate) -> bool:
        """False if the place and class have a rate already."""
        inserted = await self._session.execute(
            insert(tax_rates)
            .values(**vars(rate))
            .on_conflict_do_nothing(constraint="uq_tax_rates_place_class")
            .returning(tax_rates.c.rate_id)
        )
        return inserted.first() is not None

    async def save(self, rate_id: UUID, rate: Decimal, name: str, now: datetime) -> None:
        await self._session.execute(
            update(tax_rates).where(tax_rates.c.rate_id == rate_id).values(rate=rate, name=name, updated_at=now)
        )

    async def delete(self, rate_id: UUID) -> None:
        await self._session.execute(delete(tax_rates).where(tax_rates.c.rate_id == rate_id))

    async def currencies(self) -> list[tuple[str, bool]]:
        rows = await self._session.execute(
            select(currency_tax.c.currency, currency_tax.c.prices_include_tax).order_by(currency_tax.c.currency)
        )
        return [(row.currency, row.prices_include_tax) for row in rows]

    async def set_currency(self, currency: str, inclusive: bool, now: datetime) -> None:
        statement = insert(currency_tax).values(currency=currency, prices_include_tax=inclusive, updated_at=now)
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[currency_tax.c.currency],
                set_={"prices_include_tax": inclusive, "updated_at": now},
            )
        )
