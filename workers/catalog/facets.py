"""A search's facets, pure: the price bands of each currency, and the counts PostgreSQL
returned turned into the `SearchFacets` of a reply (scaled when they are a sample).

Price bands are in each currency's own major units, never converted: for the dollar, the
euro, the pound and the other currencies whose price ceiling is 1,000,000 (contracts/money.py)
they start at 10, 25, 50, 100, 250, 500 and 1,000; for another currency at those amounts
times its ceiling over a million (the yen's bands start at 1,000, 2,500, ...; the Swedish
crown's at 100, 250, ...), which the ceilings were chosen to make comparable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from contracts.catalog import FACETS_EXACT_UP_TO, CategoryCount, PriceBandCount, SearchFacets
from contracts.money import CURRENCIES, currency, to_amount

# Where the bands of a currency with a ceiling of 1,000,000 start (the first band is below 10).
BAND_EDGES: tuple[Decimal, ...] = tuple(Decimal(n) for n in (10, 25, 50, 100, 250, 500, 1000))
_REFERENCE_CEILING = 1_000_000


def band_scale(code: str) -> Decimal:
    """What a currency's band edges are BAND_EDGES times."""
    return Decimal(currency(code).max_major) / _REFERENCE_CEILING


def band_edges_minor(code: str) -> tuple[int, ...]:
    """Where a currency's bands start, in its minor units (what the query compares)."""
    return tuple(int(edge * band_scale(code) * 10 ** currency(code).exponent) for edge in BAND_EDGES)


# (currency, band edges in minor units) of every accepted currency, for the query.
BAND_EDGES_MINOR: tuple[tuple[str, tuple[int, ...]], ...] = tuple(
    (code, band_edges_minor(code)) for code in sorted(CURRENCIES)
)


def band_bounds(code: str, band: int) -> tuple[str, str | None]:
    """The lowest price of band `band` (PostgreSQL's `width_bucket` over BAND_EDGES: 0 is
    below the first edge) and the price it ends below, as the API writes amounts."""
    exponent = currency(code).exponent
    scale = band_scale(code)

    def amount(edge: Decimal) -> str:
        return to_amount(int(edge * scale * 10**exponent), code)

    low = amount(BAND_EDGES[band - 1]) if band > 0 else to_amount(0, code)
    high = amount(BAND_EDGES[band]) if band < len(BAND_EDGES) else None
    return low, high


@dataclass(frozen=True)
class Counted:
    """What the facet query counted over at most FACETS_EXACT_UP_TO + 1 matches."""

    matches: int
    categories: dict[str, int]
    bands: dict[tuple[str, int], int]


def facets(counted: Counted, estimate: int | None, *, complete: bool = False) -> SearchFacets:
    """The reply's facets: exact if every match was counted (`complete`) or no more than
    FACETS_EXACT_UP_TO matched; otherwise the total is `estimate` (the planner's, never
    below what was counted) and every count is scaled from the sample to it."""
    exact = complete or counted.matches <= FACETS_EXACT_UP_TO
    total = counted.matches if exact else max(estimate or 0, counted.matches)
    factor = Decimal(total) / counted.matches if counted.matches else Decimal(1)

    def scaled(n: int) -> int:
        return n if exact else max(1, int((n * factor).to_integral_value()))

    categories = sorted(counted.categories.items(), key=lambda item: (-item[1], item[0]))
    bands = []
    for (code, band), n in sorted(counted.bands.items()):
        low, high = band_bounds(code, band)
        bands.append(PriceBandCount(currency=code, min=low, max=high, count=scaled(n)))
    return SearchFacets(
        total=total,
        exact=exact,
        categories=tuple(CategoryCount(category=slug, count=scaled(n)) for slug, n in categories),
        price_bands=tuple(bands),
    )


def rounded_estimate(rows: float) -> int:
    """A planner's row estimate as a shopper reads a count: two significant figures."""
    n = int(rows)
    if n < 100:
        return n
    digits = len(str(n)) - 2
    return int(round(n, -digits))


def counted_from(rows: Iterable[tuple[str, str | None, str | None, int]]) -> Counted:
    """The facet query's rows: ("total", -, -, n), ("category", slug, -, n), ("band", band, currency, n)."""
    matches = 0
    categories: dict[str, int] = {}
    bands: dict[tuple[str, int], int] = {}
    for facet, key, code, n in rows:
        if facet == "total":
            matches = n
        elif facet == "category" and key is not None:
            categories[key] = n
        elif facet == "band" and key is not None and code is not None:
            bands[(code, int(key))] = n
    return Counted(matches, categories, bands)
