"""Vouchers: admin-managed discount codes a checkout applies (issue 18).

The orders service owns them (it applies a code at placement and reserves its use as a
step of the order's saga), so their commands are `orders.*`. A voucher takes a
percentage off, or a fixed amount per currency (a voucher without an amount in the
order's currency does not apply to it); it may need a minimum spend (per currency), be
valid only within a window, be used a limited number of times in all and per customer,
and apply only to products of some categories and/or of some sellers: then only those
lines are discounted and count toward the minimum spend. Codes are case-insensitive:
they are kept and shown upper-case. Only admins see or manage vouchers.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import AfterValidator, Field, StrictBool, StringConstraints, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from contracts.base import WHOLE, Contract, not_null
from contracts.errors import invalid_input
from contracts.money import CURRENCIES, CurrencyCode, MoneyError, to_minor
from contracts.taxes import Percent
from contracts.topology import CommandSpec

MAX_SCOPE = 100


def _upper(code: str) -> str:
    return code.upper()


VoucherCode = Annotated[
    str,
    StringConstraints(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$"),
    AfterValidator(_upper),
    Field(description="Letters, digits, `-` and `_`; case-insensitive (kept upper-case)", examples=["SUMMER-10"]),
]
VoucherAmount = Annotated[
    str,
    StringConstraints(max_length=32, pattern=r"^\d{1,12}(?:\.\d{1,3})?$"),
    Field(description="A decimal string in the currency's major unit", examples=["5.00"]),
]
Amounts = Annotated[
    dict[CurrencyCode, VoucherAmount],
    Field(max_length=len(CURRENCIES), examples=[{"USD": "5.00", "EUR": "4.50"}]),
]
Limit = Annotated[int, Field(ge=1, le=1_000_000_000), WHOLE]
CategorySlug = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]


def _distinct(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(set(values)) != len(values):
        raise ValueError("lists a value twice")
    return values


Categories = Annotated[
    tuple[CategorySlug, ...],
    Field(
        max_length=MAX_SCOPE,
        description="Category slugs: only products in these categories are discounted (none: any category)",
    ),
    AfterValidator(_distinct),
]
Sellers = Annotated[
    tuple[UUID, ...],
    Field(max_length=MAX_SCOPE, description="Only these sellers' products are discounted (none: any seller)"),
    AfterValidator(_distinct),
]

Problems = list[tuple[tuple[str | int, ...], str]]


def voucher_minor(amount: str, code: str) -> int:
    """`"5.00"` in EUR → 500 (`"0"` → 0: a minimum spend of nothing)."""
    if amount.strip("0.") == "":
        return 0
    return to_minor(amount, code)


def _amount_problems(field: str, amounts: dict[str, str] | None, *, positive: bool) -> Problems:
    problems: Problems = []
    for code, amount in (amounts or {}).items():
        try:
            minor = voucher_minor(amount, code)
        except MoneyError as exc:
            problems.append(((field, code), str(exc)))
            continue
        if positive and minor == 0:
            problems.append(((field, code), "must be more than zero"))
    return problems


def _shape_problems(
    percent: str | None, amounts: dict[str, str] | None, starts_at: datetime | None, ends_at: datetime | None
) -> Problems:
    """What a voucher as a whole must be: exactly one kind of discount, a window in order."""
    problems = _amount_problems("amounts", amounts, positive=True)
    if percent is None and not amounts:
        problems.append((("percent",), "give `percent` or `amounts`"))
    elif percent is not None and amounts:
        problems.append((("amounts",), "give `percent` or `amounts`, not both"))
    elif percent is not None and Decimal(percent) == 0:
        problems.append((("percent",), "must be more than zero"))
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        problems.append((("ends_at",), "must be after starts_at"))
    return problems


class CreateVoucher(Contract):
    code: VoucherCode
    percent: Percent | None = Field(default=None, description="A percentage off the eligible lines; or `amounts`")
    amounts: Amounts | None = Field(
        default=None, description="Currency → the amount off (capped at the eligible lines' total); or `percent`"
    )
    min_spend: Amounts = Field(
        default_factory=dict,
        description="Currency → the least the eligible lines must come to, before the discount (none: no minimum)",
    )
    starts_at: datetime | None = Field(default=None, description="Valid from (none: at once)")
    ends_at: datetime | None = Field(default=None, description="Valid until, excluded (none: for ever)")
    usage_limit: Limit | None = Field(default=None, description="How many orders may use it in all (none: any)")
    per_customer_limit: Limit | None = Field(
        default=None, description="How many orders of one customer may use it (none: any)"
    )
    categories: Categories = ()
    sellers: Sellers = ()
    active: StrictBool = True

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = _shape_problems(self.percent, self.amounts, self.starts_at, self.ends_at)
        problems += _amount_problems("min_spend", self.min_spend, positive=False)
        if problems:
            raise invalid_input(type(self).__name__, problems)
        return self


class UpdateVoucher(Contract):
    """A partial update: only the fields sent change (`amounts` and `min_spend` whole).
    Sending `percent` makes it a percentage voucher, `amounts` a fixed one; `null` for a
    limit or a window's end removes it."""

    voucher_id: UUID
    percent: Percent | SkipJsonSchema[None] = None
    amounts: Amounts | SkipJsonSchema[None] = None
    min_spend: Amounts | SkipJsonSchema[None] = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: Limit | None = None
    per_customer_limit: Limit | None = None
    categories: Categories | SkipJsonSchema[None] = None
    sellers: Sellers | SkipJsonSchema[None] = None
    active: StrictBool | SkipJsonSchema[None] = None

    _not_null = field_validator("percent", "amounts", "min_spend", "categories", "sellers", "active")(not_null)

    @model_validator(mode="after")
    def _amounts(self) -> Self:
        # What needs the stored voucher too (one kind of discount, the window's order) is
        # checked by the orders service on the voucher after the change.
        problems = _amount_problems("amounts", self.amounts, positive=True)
        problems += _amount_problems("min_spend", self.min_spend, positive=False)
        if self.percent is not None and self.amounts is not None:
            problems.append((("amounts",), "give `percent` or `amounts`, not both"))
        if problems:
            raise invalid_input(type(self).__name__, problems)
        return self


class GetVoucher(Contract):
    voucher_id: UUID


class ListVouchers(Contract):
    """The query string of `GET /api/vouchers`."""

    active: bool | None = Field(default=None, description="Only the active (true) or inactive (false) ones")


class VoucherView(Contract):
    voucher_id: UUID
    code: str
    percent: str | None
    amounts: dict[str, str]
    min_spend: dict[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    usage_limit: int | None
    per_customer_limit: int | None
    categories: tuple[str, ...]
    sellers: tuple[UUID, ...]
    active: bool
    uses: int = Field(description="Orders holding a use: pending ones (reserved) and confirmed ones (redeemed)")
    redeemed: int = Field(description="Of those, the confirmed orders'")
    created_at: datetime
    updated_at: datetime


class VoucherList(Contract):
    items: tuple[VoucherView, ...] = Field(description="By code")


LIST_VOUCHERS = CommandSpec(
    "orders",
    "list_vouchers",
    1,
    ListVouchers,
    VoucherList,
    kind="query",
    requires_actor=True,
    summary="Admin: the vouchers, with their uses.",
)
GET_VOUCHER = CommandSpec(
    "orders",
    "get_voucher",
    1,
    GetVoucher,
    VoucherView,
    kind="query",
    requires_actor=True,
    summary="Admin: a voucher, with its uses.",
)
CREATE_VOUCHER = CommandSpec(
    "orders",
    "create_voucher",
    1,
    CreateVoucher,
    VoucherView,
    requires_actor=True,
    summary="Admin: add a voucher (its code must be new, whatever its case).",
)
UPDATE_VOUCHER = CommandSpec(
    "orders",
    "update_voucher",
    1,
    UpdateVoucher,
    VoucherView,
    requires_actor=True,
    summary="Admin: change or deactivate a voucher (orders placed keep the discount they got).",
)

COMMANDS: tuple[CommandSpec, ...] = (LIST_VOUCHERS, GET_VOUCHER, CREATE_VOUCHER, UPDATE_VOUCHER)
