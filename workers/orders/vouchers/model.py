"""Vouchers: pure rules, no I/O. Whether a code applies to an order, how much it takes
off each line, and what an order's move does to the use it holds.

A voucher's discount is computed on the lines it applies to (all of them, or those of
its categories and sellers): a percentage of their total rounded half up, or its fixed
amount in the order's currency capped at their total; then spread over those lines in
proportion to their totals, to the cent, by largest remainder (the lines' discounts add
up to the order's). A use is reserved when the order is placed, redeemed when it is
confirmed and released when it is cancelled, whenever that happens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal
from uuid import UUID

from contracts.money import for_people, to_amount
from contracts.orders import OrderStatus
from contracts.vouchers import CreateVoucher, VoucherView, voucher_minor
from kernel.tokens import Actor
from workers.orders.taxes.model import percent_text
from workers.runtime.errors import DomainError, invalid

UseStep = Literal["redeem", "release"]


def require_admin(actor: Actor) -> None:
    if actor.role != "admin":
        raise DomainError("forbidden", "only admins manage vouchers")


class VoucherRefused(Exception):
    """The code does not apply to this order: the message says why (answered on `voucher_code`)."""


def _minor(amounts: Mapping[str, str]) -> dict[str, int]:
    return {code: voucher_minor(amount, code) for code, amount in amounts.items()}


@dataclass(frozen=True)
class Voucher:
    voucher_id: UUID
    code: str
    percent: Decimal | None
    amounts: Mapping[str, int]  # currency → minor units off (a fixed voucher)
    min_spend: Mapping[str, int]  # currency → the least the eligible lines must come to
    starts_at: datetime | None
    ends_at: datetime | None
    usage_limit: int | None
    per_customer_limit: int | None
    categories: tuple[str, ...]
    sellers: tuple[UUID, ...]
    active: bool
    created_at: datetime
    updated_at: datetime
    uses: int = 0  # reserved and redeemed
    redeemed: int = 0

    def view(self) -> VoucherView:
        return VoucherView(
            voucher_id=self.voucher_id,
            code=self.code,
            percent=percent_text(self.percent) if self.percent is not None else None,
            amounts={code: to_amount(minor, code) for code, minor in sorted(self.amounts.items())},
            min_spend={code: to_amount(minor, code) for code, minor in sorted(self.min_spend.items())},
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            usage_limit=self.usage_limit,
            per_customer_limit=self.per_customer_limit,
            categories=self.categories,
            sellers=self.sellers,
            active=self.active,
            uses=self.uses,
            redeemed=self.redeemed,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )

    def updated(self, changes: Mapping[str, Any], now: datetime) -> Voucher:
        """The voucher after a partial update, checked as a whole."""
        fields = dict(changes)
        if "percent" in fields:
            fields["percent"] = Decimal(fields["percent"])
            fields["amounts"] = {}
        elif "amounts" in fields:
            fields["amounts"] = _minor(fields["amounts"])
            fields["percent"] = None
        if "min_spend" in fields:
            fields["min_spend"] = _minor(fields["min_spend"])
        for scope in ("categories", "sellers"):
            if scope in fields:
                fields[scope] = tuple(fields[scope])
        after = replace(self, **fields, updated_at=now)
        if after.starts_at is not None and after.ends_at is not None and after.ends_at <= after.starts_at:
            raise invalid("ends_at", "must be after starts_at")
        return after

    def applies_to(self, seller_id: UUID, category: str | None) -> bool:
        """Whether a product of this seller and category is discounted."""
        return (not self.sellers or seller_id in self.sellers) and (
            not self.categories or (category is not None and category in self.categories)
        )

    def discounts(self, currency: str, lines: Sequence[tuple[bool, int]], now: datetime) -> tuple[int, ...]:
        """Each line's discount, `lines` being (eligible, line total in minor units) in an
        order in `currency` placed at `now`; `VoucherRefused` if the code does not apply."""
        if not self.active:
            raise VoucherRefused("this voucher is not active")
        if self.starts_at is not None and now < self.starts_at:
            raise VoucherRefused("this voucher is not valid yet")
        if self.ends_at is not None and now >= self.ends_at:
            raise VoucherRefused("this voucher has expired")
        if self.percent is None and currency not in self.amounts:
            raise VoucherRefused(f"this voucher does not apply to orders in {currency}")
        eligible = sum(total for applies, total in lines if applies)
        if eligible == 0:
            raise VoucherRefused("this voucher applies to none of these items")
        least = self.min_spend.get(currency, 0)
        if eligible < least:
            raise VoucherRefused(f"the items it applies to must come to at least {for_people(least, currency)}")
        if self.percent is not None:
            off = int((Decimal(eligible) * self.percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        else:
            off = min(self.amounts[currency], eligible)
        return spread(off, [total if applies else 0 for applies, total in lines])


def spread(amount: int, weights: Sequence[int]) -> tuple[int, ...]:
    """`amount` split in proportion to `weights`, in whole minor units that add up to it:
    each share rounded down, the units left over going to the largest remainders (the
    first line on a tie). A weight of zero gets nothing."""
    whole = sum(weights)
    if whole == 0 or amount == 0:
        return tuple(0 for _ in weights)
    shares = [amount * w // whole for w in weights]
    left = amount - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % whole), i))
    for i in by_remainder[:left]:
        shares[i] += 1
    return tuple(shares)


def new_voucher(cmd: CreateVoucher, voucher_id: UUID, now: datetime) -> Voucher:
    return Voucher(
        voucher_id=voucher_id,
        code=cmd.code,
        percent=Decimal(cmd.percent) if cmd.percent is not None else None,
        amounts=_minor(cmd.amounts or {}),
        min_spend=_minor(cmd.min_spend),
        starts_at=cmd.starts_at,
        ends_at=cmd.ends_at,
        usage_limit=cmd.usage_limit,
        per_customer_limit=cmd.per_customer_limit,
        categories=tuple(cmd.categories),
        sellers=tuple(cmd.sellers),
        active=cmd.active,
        created_at=now,
        updated_at=now,
    )


def use_step(before: OrderStatus, after: OrderStatus) -> UseStep | None:
    """What an order's move does to the voucher use it holds: confirmed, the reserved use
    is redeemed; cancelled (before or after confirmation), it is given back. An order
    waiting to be paid again is still pending: it keeps its use."""
    if after == before:
        return None
    if after == "confirmed":
        return "redeem"
    if after == "cancelled":
        return "release"
    return None
