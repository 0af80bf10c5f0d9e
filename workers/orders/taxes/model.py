"""Taxes: pure rules, no I/O. Which rate applies to a line, and how much tax it carries.

A rate applies to one product tax class in one country, or one region of it; the
region's rate wins over the country's. Amounts are in minor units; each line's tax is
rounded half up on its own (what a receipt shows adds up), and a line's tax comes out of
its price when the currency's prices include tax, or on top of it when they do not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

from contracts.taxes import TaxRateView
from kernel.tokens import Actor
from workers.runtime.errors import DomainError


def require_admin(actor: Actor) -> None:
    if actor.role != "admin":
        raise DomainError("forbidden", "only admins manage taxes")


@dataclass(frozen=True)
class TaxRate:
    rate_id: UUID
    country: str
    region: str  # "" for the whole country
    tax_class: str
    rate: Decimal  # a percentage
    name: str
    created_at: datetime
    updated_at: datetime

    def view(self) -> TaxRateView:
        return TaxRateView(
            rate_id=self.rate_id,
            country=self.country,
            region=self.region or None,
            tax_class=self.tax_class,
            rate=percent_text(self.rate),
            name=self.name,
        )


def percent_text(rate: Decimal) -> str:
    """19.0000 → "19", 7.2500 → "7.25"."""
    return format(rate.normalize(), "f")


@dataclass(frozen=True)
class Taxes:
    """The rates that may apply to one destination, and whether prices include tax."""

    rates: Sequence[TaxRate]
    prices_include_tax: bool

    def rate_for(self, country: str, region: str | None, tax_class: str) -> TaxRate | None:
        """The region's rate for the class, else the country's, else None (no tax)."""
        candidates = [r for r in self.rates if r.country == country and r.tax_class == tax_class]
        exact = next((r for r in candidates if region is not None and r.region == region), None)
        return exact or next((r for r in candidates if r.region == ""), None)

    def tax_on(self, amount_minor: int, rate: TaxRate | None) -> int:
        """The tax in `amount_minor`: carved out of it when prices include tax, else added to it."""
        if rate is None or amount_minor == 0:
            return 0
        share = rate.rate / (100 + rate.rate) if self.prices_include_tax else rate.rate / 100
        return int((Decimal(amount_minor) * share).quantize(Decimal(1), rounding=ROUND_HALF_UP))


NO_TAXES = Taxes((), False)


@dataclass(frozen=True)
class TaxLine:
    """One rate's share of an order (what a receipt lists)."""

    name: str
    rate: Decimal
    amount_minor: int


def tax_lines(charged: Iterable[tuple[TaxRate | None, int]]) -> tuple[TaxLine, ...]:
    """The tax of each (rate, amount) charged, summed per rate name and percentage."""
    totals: dict[tuple[str, Decimal], int] = {}
    for rate, amount in charged:
        if rate is not None and amount:
            key = (rate.name, rate.rate)
            totals[key] = totals.get(key, 0) + amount
    return tuple(TaxLine(name, rate, amount) for (name, rate), amount in sorted(totals.items()))
