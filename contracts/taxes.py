"""Taxes: admin-managed rates by country (and region) and product tax class, and whether a
currency's prices include tax.

The orders service owns them (it computes an order's tax lines at placement), so their
commands are `orders.*`. A product belongs to a tax class (`standard` unless its seller
says otherwise); a rate applies to one class in one country, optionally one region of it
(a US state: `region` as on the shipping address); the most specific rate wins (the
region's, else the country's), and a destination without a rate for the class has no tax.
A currency's prices either include tax (what a shopper in the EU sees: the tax is carved
out of the price) or exclude it (US-style: the tax is added at checkout).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field, StrictBool, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema

from contracts.base import WORDS, Contract, not_null
from contracts.money import CurrencyCode
from contracts.topology import CommandSpec

DEFAULT_TAX_CLASS = "standard"
TaxClass = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$"),
    Field(description="A product tax class: `standard` (the default), `reduced`, `zero`, or one an admin names"),
]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$"), Field(description="ISO 3166-1 alpha-2 code")]
Region = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=WORDS),
    Field(description="A region of the country as written on shipping addresses (`CA`), matched exactly"),
]
TaxName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50, pattern=WORDS)]


# 0 to 100 with up to 4 decimals, written so the document says it too.
Percent = Annotated[
    str,
    StringConstraints(max_length=8, pattern=r"^(?:100(?:\.0{1,4})?|\d{1,2}(?:\.\d{1,4})?)$"),
    Field(description='A percentage from 0 to 100 as a decimal string, e.g. `"19"` or `"7.25"`', examples=["19"]),
]


class CreateTaxRate(Contract):
    country: Country
    region: Region | None = Field(default=None, description="Only for addresses in this region")
    tax_class: TaxClass = DEFAULT_TAX_CLASS
    rate: Percent
    name: TaxName = Field(description="What the tax is called on orders and receipts (`VAT`, `Sales tax`)")


class UpdateTaxRate(Contract):
    """Change a rate's percentage or name (its place, country, region and class, stays)."""

    rate_id: UUID
    rate: Percent | SkipJsonSchema[None] = None
    name: TaxName | SkipJsonSchema[None] = None

    _not_null = field_validator("rate", "name")(not_null)


class DeleteTaxRate(Contract):
    rate_id: UUID


class ListTaxRates(Contract):
    country: Country | None = None


class TaxRateView(Contract):
    rate_id: UUID
    country: str
    region: str | None
    tax_class: str
    rate: str
    name: str


class TaxRateList(Contract):
    items: tuple[TaxRateView, ...] = Field(description="By country, region (the country's own first), class")


class SetCurrencyTax(Contract):
    """Whether prices in `currency` include tax (entered and shown with it) or not."""

    currency: CurrencyCode
    prices_include_tax: StrictBool


class ListCurrencyTax(Contract):
    pass


class CurrencyTaxView(Contract):
    currency: str
    prices_include_tax: bool


class CurrencyTaxList(Contract):
    items: tuple[CurrencyTaxView, ...] = Field(
        description="The currencies an admin set; any other currency's prices exclude tax"
    )


LIST_TAX_RATES = CommandSpec(
    "orders", "list_tax_rates", 1, ListTaxRates, TaxRateList, kind="query", summary="The tax rates."
)
CREATE_TAX_RATE = CommandSpec(
    "orders",
    "create_tax_rate",
    1,
    CreateTaxRate,
    TaxRateView,
    requires_actor=True,
    summary="Admin: add a tax rate for a country (or a region of it) and a product tax class.",
)
UPDATE_TAX_RATE = CommandSpec(
    "orders",
    "update_tax_rate",
    1,
    UpdateTaxRate,
    TaxRateView,
    requires_actor=True,
    summary="Admin: change a tax rate (orders already placed keep the tax they were charged).",
)
DELETE_TAX_RATE = CommandSpec(
    "orders", "delete_tax_rate", 1, DeleteTaxRate, None, requires_actor=True, summary="Admin: remove a tax rate."
)
LIST_CURRENCY_TAX = CommandSpec(
    "orders",
    "list_currency_tax",
    1,
    ListCurrencyTax,
    CurrencyTaxList,
    kind="query",
    summary="Which currencies' prices include tax.",
)
SET_CURRENCY_TAX = CommandSpec(
    "orders",
    "set_currency_tax",
    1,
    SetCurrencyTax,
    CurrencyTaxView,
    requires_actor=True,
    summary="Admin: say whether prices in a currency include tax.",
)

COMMANDS: tuple[CommandSpec, ...] = (
    LIST_TAX_RATES,
    CREATE_TAX_RATE,
    UPDATE_TAX_RATE,
    DELETE_TAX_RATE,
    LIST_CURRENCY_TAX,
    SET_CURRENCY_TAX,
)
