"""Shipping methods: admin-managed ways to deliver an order, priced per currency.

The orders service owns them (it prices an order's shipping at checkout), so their
commands are `orders.*`. A method serves a list of countries, has a price in each
currency it is offered in (a method without a price in the order's currency is not
offered for it), an optional free-shipping threshold per currency (an order whose
goods reach it ships free), and a delivery estimate in days. Reading them is public: a
checkout page lists the methods for the address and currency at hand.
"""

from __future__ import annotations

from typing import Annotated, Self
from uuid import UUID

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from contracts.base import WHOLE, WORDS, Contract, not_null
from contracts.errors import invalid_input
from contracts.money import CURRENCIES, CurrencyCode, MoneyError, to_minor
from contracts.topology import CommandSpec

# An amount that may be zero (a free method): up to 12 digits and 3 decimals.
ShippingAmount = Annotated[
    str,
    StringConstraints(max_length=32, pattern=r"^\d{1,12}(?:\.\d{1,3})?$"),
    Field(description='A decimal string in the currency\'s major unit; `"0"` ships free', examples=["4.90"]),
]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$"), Field(description="ISO 3166-1 alpha-2 code")]
MethodName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=WORDS)]
Days = Annotated[int, Field(ge=0, le=365), WHOLE]
MAX_COUNTRIES = 250


def shipping_minor(amount: str, code: str) -> int:
    """`"4.90"` in EUR → 490; `"0"` → 0 (a price of nothing is allowed here, unlike a product's)."""
    if amount.strip("0.") == "":
        return 0
    return to_minor(amount, code)


def _distinct(countries: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(countries)) != len(countries):
        raise ValueError("lists a country twice")
    return countries


Countries = Annotated[
    tuple[Country, ...], Field(min_length=1, max_length=MAX_COUNTRIES), AfterValidator(_distinct)
]
Prices = Annotated[
    dict[CurrencyCode, ShippingAmount],
    Field(
        min_length=1,
        max_length=len(CURRENCIES),
        description="Currency → price: the method is offered for orders in these currencies",
        examples=[{"USD": "4.90", "EUR": "4.50"}],
    ),
]
Thresholds = Annotated[
    dict[CurrencyCode, ShippingAmount],
    Field(
        max_length=len(CURRENCIES),
        description="Currency → the goods' total from which it ships free (each currency must also have a price)",
        examples=[{"USD": "50.00"}],
    ),
]


Problems = list[tuple[tuple[str, ...], str]]


def _money_problems(prices: dict[str, str] | None, free_from: dict[str, str] | None) -> Problems:
    problems: Problems = []
    for field, amounts in (("prices", prices or {}), ("free_from", free_from or {})):
        for code, amount in amounts.items():
            try:
                shipping_minor(amount, code)
            except MoneyError as exc:
                problems.append(((field, code), str(exc)))
    if prices is not None and free_from:
        problems += [(("free_from", code), "has no price in this currency") for code in free_from if code not in prices]
    return problems


class CreateShippingMethod(Contract):
    name: MethodName
    countries: Countries
    prices: Prices
    free_from: Thresholds = Field(default_factory=dict)
    min_days: Days = Field(description="Delivery estimate: at the soonest, in days after shipping")
    max_days: Days = Field(description="Delivery estimate: at the latest")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = _money_problems(self.prices, self.free_from)
        if self.max_days < self.min_days:
            problems.append((("max_days",), "must not be less than min_days"))
        if problems:
            raise invalid_input(type(self).__name__, problems)
        return self


class UpdateShippingMethod(Contract):
    """A partial update: only the fields sent change (`prices` and `free_from` whole)."""

    method_id: UUID
    name: MethodName | SkipJsonSchema[None] = None
    countries: Countries | SkipJsonSchema[None] = None
    prices: Prices | SkipJsonSchema[None] = None
    free_from: Thresholds | SkipJsonSchema[None] = None
    min_days: Days | SkipJsonSchema[None] = None
    max_days: Days | SkipJsonSchema[None] = None

    _not_null = field_validator("name", "countries", "prices", "free_from", "min_days", "max_days")(not_null)

    @model_validator(mode="after")
    def _amounts(self) -> Self:
        # What needs the stored method too (a threshold without a price, the days' order)
        # is checked by the orders service on the method after the change.
        problems = [p for p in _money_problems(self.prices, self.free_from) if p[1] != "has no price in this currency"]
        if problems:
            raise invalid_input(type(self).__name__, problems)
        return self


class DeleteShippingMethod(Contract):
    method_id: UUID


class ListShippingMethods(Contract):
    """With `country` and `currency`: the methods a checkout may offer, each priced for
    `subtotal` (free from its threshold). Without them: every method (for admins' pages)."""

    country: Country | None = None
    currency: CurrencyCode | None = None
    subtotal: ShippingAmount | None = Field(
        default=None, description="The goods' total in `currency`, for the free-shipping thresholds"
    )

    @model_validator(mode="after")
    def _subtotal_needs_currency(self) -> Self:
        problems: Problems = []
        if self.subtotal is not None:
            if self.currency is None:
                problems.append((("currency",), "is required with subtotal"))
            else:
                try:
                    shipping_minor(self.subtotal, self.currency)
                except MoneyError as exc:
                    problems.append((("subtotal",), str(exc)))
        if problems:
            raise invalid_input(type(self).__name__, problems)
        return self


class ShippingMethodView(Contract):
    method_id: UUID
    name: str
    countries: tuple[str, ...]
    prices: dict[str, str]
    free_from: dict[str, str]
    min_days: int
    max_days: int
    price: str | None = Field(
        default=None,
        description="With `currency` asked: what the method costs for this order (`0` past its threshold)",
    )


class ShippingMethodList(Contract):
    items: tuple[ShippingMethodView, ...] = Field(description="Cheapest first when priced, else by name")


LIST_SHIPPING_METHODS = CommandSpec(
    "orders",
    "list_shipping_methods",
    1,
    ListShippingMethods,
    ShippingMethodList,
    kind="query",
    summary="The shipping methods (for a country and currency: those on offer, priced).",
)
CREATE_SHIPPING_METHOD = CommandSpec(
    "orders",
    "create_shipping_method",
    1,
    CreateShippingMethod,
    ShippingMethodView,
    requires_actor=True,
    summary="Admin: add a shipping method.",
)
UPDATE_SHIPPING_METHOD = CommandSpec(
    "orders",
    "update_shipping_method",
    1,
    UpdateShippingMethod,
    ShippingMethodView,
    requires_actor=True,
    summary="Admin: change a shipping method (orders placed keep the price they were charged).",
)
DELETE_SHIPPING_METHOD = CommandSpec(
    "orders",
    "delete_shipping_method",
    1,
    DeleteShippingMethod,
    None,
    requires_actor=True,
    summary="Admin: stop offering a shipping method (orders placed with it keep it).",
)

COMMANDS: tuple[CommandSpec, ...] = (
    LIST_SHIPPING_METHODS,
    CREATE_SHIPPING_METHOD,
    UPDATE_SHIPPING_METHOD,
    DELETE_SHIPPING_METHOD,
)
