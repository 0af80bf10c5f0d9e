from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from workers.orders.sales.model import SaleLine, by_period, period_start, periods


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    assert period_start(date(2026, 11, 25), "week") == date(2026, 11, 23)
    assert period_start(date(2026, 11, 25), "month") == date(2026, 11, 1)
    assert periods(date(2026, 11, 25), date(2027, 1, 2), "month") == [
        date(2026, 11, 1),
        date(2026, 12, 1),
        date(2027, 1, 1),
    ]
    assert periods(date(2026, 11, 25), date(2026, 11, 30), "week") == [date(2026, 11, 23), date(2026, 11, 30)]


def test_empty_periods_are_zeros_and_an_order_counts_once() -> None:
    lines = [
        SaleLine("a", date(2026, 11, 2), 2, 2000),
        SaleLine("a", date(2026, 11, 2), 1, 999),
        SaleLine("b", date(2026, 11, 4), 1, 500),
    ]
    totals = by_period(lines, date(2026, 11, 1), date(2026, 11, 4), "day")
    assert [(t.start.day, t.orders, t.units, t.revenue_minor) for t in totals] == [
        (1, 0, 0, 0),
        (2, 1, 3, 2999),
        (3, 0, 0, 0),
        (4, 1, 1, 500),
    ]


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    st.integers(0, 800),
    st.sampled_from(["day", "week", "month"]),
)
def test_periods_cover_the_range_without_gaps(first: date, length: int, granularity: str) -> None:
    last = date.fromordinal(first.toordinal() + length)
    starts = periods(first, last, granularity)  # type: ignore[arg-type]
    assert starts[0] <= first and starts[-1] <= last
    assert starts == sorted(set(starts))
    for day in (first, last):
        assert period_start(day, granularity) in starts  # type: ignore[arg-type]
