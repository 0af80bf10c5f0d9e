"""Money in the API and in storage: decimal strings outside, integer minor units inside.

The currencies Agora accepts are listed here with their ISO 4217 minor-unit exponent
(the number of decimals) and a ceiling: a price above it is a typo, not a product.
A short explicit table, rather than a locale library, because accepting a currency is
a business decision (payments must support it too), and the exponent is part of that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from babel.numbers import format_currency
from pydantic import AfterValidator, Field


@dataclass(frozen=True)
class Currency:
    code: str
    exponent: int
    # The largest price, in major units, that a listing may carry.
    max_major: int


CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        Currency("USD", 2, 1_000_000),
        Currency("EUR", 2, 1_000_000),
        Currency("GBP", 2, 1_000_000),
        Currency("CHF", 2, 1_000_000),
        Currency("CAD", 2, 1_000_000),
        Currency("AUD", 2, 1_000_000),
        Currency("SEK", 2, 10_000_000),
        Currency("NOK", 2, 10_000_000),
        Currency("DKK", 2, 10_000_000),
        Currency("PLN", 2, 5_000_000),
        Currency("JPY", 0, 100_000_000),
        Currency("KWD", 3, 300_000),
    )
}

# Digits, optionally a point and more digits: no sign, no exponent, no spaces.
_DECIMAL = re.compile(r"^([0-9]{1,12})(?:\.([0-9]{1,6}))?$")


class MoneyError(ValueError):
    pass


def currency(code: str) -> Currency:
    try:
        return CURRENCIES[code]
    except KeyError:
        raise MoneyError(f"currency must be one of {', '.join(sorted(CURRENCIES))}") from None


def to_minor(amount: str, code: str) -> int:
    """`"19.99"` in USD → 1999. Refuses more decimals than the currency has, signs, and absurd sizes."""
    cur = currency(code)
    if amount.startswith("-"):
        raise MoneyError("must not be negative")
    match = _DECIMAL.fullmatch(amount)
    if match is None:
        raise MoneyError('must be a decimal string such as "19.99"')
    whole: str = match.group(1)
    fraction: str = match.group(2) or ""
    if len(fraction) > cur.exponent:
        raise MoneyError(f"{cur.code} has {cur.exponent} decimal places at most")
    scale: int = 10**cur.exponent
    minor = int(whole) * scale + int(fraction.ljust(cur.exponent, "0") or "0")
    if minor == 0:
        raise MoneyError("must be more than zero")
    if minor > cur.max_major * scale:
        raise MoneyError(f"must be at most {for_people(cur.max_major * scale, cur.code)}")
    return minor


def to_amount(minor: int, code: str) -> str:
    """1999 in USD → `"19.99"`; 1500 in JPY → `"1500"`."""
    exponent = currency(code).exponent
    return str(Decimal(minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent)))


# The locale amounts are written in for people until a customer's own locale is known.
PEOPLE_LOCALE = "en_US"


def for_people(amount: int | str, code: str, locale: str = PEOPLE_LOCALE) -> str:
    """1999 (minor units) or `"19.99"` (the API's string) in USD → `"$19.99"`; in EUR `"€19.99"`
    (`"19,99 €"` in de_DE): an amount for a message or a page, written by Babel (CLDR) with the
    currency's own decimals. Never for the API, which speaks `to_amount`'s strings."""
    major = Decimal(to_amount(amount, code)) if isinstance(amount, int) else Decimal(amount)
    return format_currency(major, code, locale=locale)


# Nothing, where no currency decides the decimals (an empty cart): still a money string with
# cents, as every amount in the API is, never a bare "0".
ZERO = "0.00"


def to_decimal(amount: str) -> Decimal:
    """A filter bound (`min_price`) as a number, whatever the currency."""
    if _DECIMAL.fullmatch(amount) is None:
        raise MoneyError('must be a decimal string such as "19.99"')
    return Decimal(amount)


def _accepted(code: str) -> str:
    if code not in CURRENCIES:
        raise ValueError(f"must be one of {', '.join(sorted(CURRENCIES))}")
    return code


# A currency Agora accepts: an enum in the documents, so a client (and schemathesis)
# knows the list without reading a description.
CurrencyCode = Annotated[
    str,
    AfterValidator(_accepted),
    Field(description="ISO 4217 code of a currency Agora accepts", json_schema_extra={"enum": sorted(CURRENCIES)}),
]
