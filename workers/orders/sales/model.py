"""The sales report's pure parts: periods and their totals. No I/O.

Periods are calendar days, ISO weeks (starting on Monday) or calendar months, in UTC.
A report lists every period that meets its range, those without sales as zeros.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

Granularity = Literal["day", "week", "month"]


def period_start(day: date, granularity: Granularity) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def next_period(start: date, granularity: Granularity) -> date:
    if granularity == "week":
        return start + timedelta(days=7)
    if granularity == "month":
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start + timedelta(days=1)


def periods(first: date, last: date, granularity: Granularity) -> list[date]:
    """The starts of every period that meets [first, last]."""
    starts: list[date] = []
    at = period_start(first, granularity)
    while at <= last:
        starts.append(at)
        at = next_period(at, granularity)
    return starts


@dataclass(frozen=True)
class SaleLine:
    """One line of a confirmed order, as the report counts it."""

    order_id: object
    day: date
    quantity: int
    revenue_minor: int
    tax_minor: int = 0


@dataclass(frozen=True)
class PeriodTotals:
    start: date
    orders: int
    units: int
    revenue_minor: int
    tax_minor: int = 0


def by_period(lines: Iterable[SaleLine], first: date, last: date, granularity: Granularity) -> list[PeriodTotals]:
    """Totals per period; an order counts once in the period it was confirmed in."""
    starts = periods(first, last, granularity)
    orders: dict[date, set[object]] = {s: set() for s in starts}
    units = dict.fromkeys(starts, 0)
    revenue = dict.fromkeys(starts, 0)
    tax = dict.fromkeys(starts, 0)
    for line in lines:
        start = period_start(line.day, granularity)
        if start not in orders:
            continue  # outside the range: the query should not have returned it
        orders[start].add(line.order_id)
        units[start] += line.quantity
        revenue[start] += line.revenue_minor
        tax[start] += line.tax_minor
    return [PeriodTotals(s, len(orders[s]), units[s], revenue[s], tax[s]) for s in starts]
