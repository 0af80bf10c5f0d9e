"""Shipping methods: pure rules, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from contracts.money import to_amount
from contracts.shipping import CreateShippingMethod, ShippingMethodView, shipping_minor
from kernel.tokens import Actor
from workers.runtime.errors import DomainError, invalid


def require_admin(actor: Actor) -> None:
    if actor.role != "admin":
        raise DomainError("forbidden", "only admins manage shipping methods")


def _minor(amounts: Mapping[str, str]) -> dict[str, int]:
    return {code: shipping_minor(amount, code) for code, amount in amounts.items()}


@dataclass(frozen=True)
class ShippingMethod:
    method_id: UUID
    name: str
    countries: tuple[str, ...]
    prices: Mapping[str, int]  # currency → minor units
    free_from: Mapping[str, int]  # currency → the goods' total (minor units) from which it is free
    min_days: int
    max_days: int
    created_at: datetime
    updated_at: datetime

    def serves(self, country: str | None, currency: str | None) -> bool:
        return (country is None or country in self.countries) and (currency is None or currency in self.prices)

    def price_for(self, currency: str, subtotal_minor: int | None) -> int:
        """What shipping costs in `currency` for goods worth `subtotal_minor` (None: unknown)."""
        threshold = self.free_from.get(currency)
        if threshold is not None and subtotal_minor is not None and subtotal_minor >= threshold:
            return 0
        return self.prices[currency]

    def view(self, currency: str | None = None, subtotal_minor: int | None = None) -> ShippingMethodView:
        return ShippingMethodView(
            method_id=self.method_id,
            name=self.name,
            countries=self.countries,
            prices={code: to_amount(minor, code) for code, minor in sorted(self.prices.items())},
            free_from={code: to_amount(minor, code) for code, minor in sorted(self.free_from.items())},
            min_days=self.min_days,
            max_days=self.max_days,
            price=to_amount(self.price_for(currency, subtotal_minor), currency) if currency else None,
        )

    def updated(self, changes: Mapping[str, Any], now: datetime) -> ShippingMethod:
        """The method after a partial update, checked as a whole."""
        fields = dict(changes)
        for money in ("prices", "free_from"):
            if money in fields:
                fields[money] = _minor(fields[money])
        if "countries" in fields:
            fields["countries"] = tuple(fields["countries"])
        after = replace(self, **fields, updated_at=now)
        orphans = sorted(set(after.free_from) - set(after.prices))
        if orphans:
            raise invalid("free_from", f"has no price in {', '.join(orphans)}")
        if after.max_days < after.min_days:
            raise invalid("max_days", "must not be less than min_days")
        return after


def new_method(cmd: CreateShippingMethod, method_id: UUID, now: datetime) -> ShippingMethod:
    return ShippingMethod(
        method_id=method_id,
        name=cmd.name,
        countries=tuple(cmd.countries),
        prices=_minor(cmd.prices),
        free_from=_minor(cmd.free_from),
        min_days=cmd.min_days,
        max_days=cmd.max_days,
        created_at=now,
        updated_at=now,
    )
