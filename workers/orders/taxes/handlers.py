"""Tax rates and currency settings: admins manage them; anyone reads them."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from contracts.errors import FieldError
from contracts.taxes import (
    CreateTaxRate,
    CurrencyTaxList,
    CurrencyTaxView,
    DeleteTaxRate,
    ListCurrencyTax,
    ListTaxRates,
    SetCurrencyTax,
    TaxRateList,
    TaxRateView,
    UpdateTaxRate,
)
from workers.orders.taxes.model import TaxRate, require_admin
from workers.orders.taxes.repository import TaxRepository
from workers.runtime.context import HandlerContext
from workers.runtime.errors import DomainError, not_found


class TaxHandlers:
    """Wired in app.py."""

    async def list_tax_rates(self, cmd: ListTaxRates, ctx: HandlerContext) -> TaxRateList:
        return TaxRateList(items=tuple(r.view() for r in await TaxRepository(ctx.session).rates(cmd.country)))

    async def create_tax_rate(self, cmd: CreateTaxRate, ctx: HandlerContext) -> TaxRateView:
        require_admin(ctx.require_actor())
        now = datetime.now(UTC)
        rate = TaxRate(
            rate_id=uuid.uuid4(),
            country=cmd.country,
            region=cmd.region or "",
            tax_class=cmd.tax_class,
            rate=Decimal(cmd.rate),
            name=cmd.name,
            created_at=now,
            updated_at=now,
        )
        if not await TaxRepository(ctx.session).add(rate):
            raise DomainError(
                "conflict",
                "this country (and region) has a rate for this tax class already: change that one",
                (FieldError(field="tax_class", message="has a rate here already"),),
            )
        return rate.view()

    async def update_tax_rate(self, cmd: UpdateTaxRate, ctx: HandlerContext) -> TaxRateView:
        require_admin(ctx.require_actor())
        repo = TaxRepository(ctx.session)
        rate = await repo.get(cmd.rate_id, for_update=True)
        if rate is None:
            raise not_found("tax rate")
        now = datetime.now(UTC)
        changed = replace(
            rate,
            rate=Decimal(cmd.rate) if cmd.rate is not None else rate.rate,
            name=cmd.name if cmd.name is not None else rate.name,
            updated_at=now,
        )
        await repo.save(changed.rate_id, changed.rate, changed.name, now)
        return changed.view()

    async def delete_tax_rate(self, cmd: DeleteTaxRate, ctx: HandlerContext) -> None:
        require_admin(ctx.require_actor())
        repo = TaxRepository(ctx.session)
        if await repo.get(cmd.rate_id, for_update=True) is None:
            raise not_found("tax rate")
        await repo.delete(cmd.rate_id)

    async def list_currency_tax(self, cmd: ListCurrencyTax, ctx: HandlerContext) -> CurrencyTaxList:
        found = await TaxRepository(ctx.session).currencies()
        return CurrencyTaxList(items=tuple(CurrencyTaxView(currency=c, prices_include_tax=i) for c, i in found))

    async def set_currency_tax(self, cmd: SetCurrencyTax, ctx: HandlerContext) -> CurrencyTaxView:
        require_admin(ctx.require_actor())
        await TaxRepository(ctx.session).set_currency(cmd.currency, cmd.prices_include_tax, datetime.now(UTC))
        return CurrencyTaxView(currency=cmd.currency, prices_include_tax=cmd.prices_include_tax)
