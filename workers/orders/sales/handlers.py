"""The sales projection (`orders.sales`) and what is read from it: sellers' sales reports
and the admin dashboard's revenue per day.

The projection is written by the saga step that confirms or cancels the order, in
its transaction (issue 14: it was fed by the service's own events, a delivery per
order for nothing the saga did not already know). Migration 0016 filled in what was
still on its way through those events when they were retired.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import DateTime, Select, and_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert

from contracts.money import to_amount
from contracts.orders import (
    DaySales,
    OrderStatus,
    SalesOverview,
    SalesOverviewView,
    SalesPeriod,
    SalesReport,
    SalesReportView,
    SalesTotals,
    TopProduct,
)
from db.prepared import Prepared
from db.tables.orders import order_lines, orders, sales
from workers.orders.sales.model import SaleLine, by_period
from workers.runtime.context import HandlerContext
from workers.runtime.errors import DomainError, not_found

DEFAULT_CURRENCY = "USD"
TOP_PRODUCTS = 10
# What a line sold for: its price less its share of a voucher's discount (before tax).
_LINE_REVENUE = sales.c.quantity * sales.c.unit_price_minor - sales.c.discount_minor


# --- the projection ---------------------------------------------------------------------


_CONFIRMED_LINES = (
    select(
        order_lines.c.order_id,
        order_lines.c.variant_id,
        order_lines.c.product_id,
        order_lines.c.seller_id,
        order_lines.c.name,
        order_lines.c.variant_label,
        order_lines.c.quantity,
        order_lines.c.unit_price_minor,
        order_lines.c.tax_minor,
        order_lines.c.discount_minor,
        orders.c.currency,
        bindparam("at", type_=DateTime(timezone=True)).label("confirmed_at"),
    )
    .join(orders, orders.c.order_id == order_lines.c.order_id)
    .where(order_lines.c.order_id == bindparam("order_id"))
)
_ADD_SALES = Prepared(
    insert(sales)
    .from_select([c.name for c in _CONFIRMED_LINES.selected_columns], _CONFIRMED_LINES)
    .on_conflict_do_nothing()
)
_CANCEL_SALES = Prepared(
    update(sales)
    .where(sales.c.order_id == bindparam("s_order_id"), sales.c.cancelled_at.is_(None))
    .values(cancelled_at=bindparam("s_at"))
)


async def on_status_changed(db: asyncpg.Connection, order_id: UUID, status: OrderStatus, at: datetime) -> None:
    """Keep the projection in the transaction that changes the order's status: a
    confirmation adds the order's lines, a cancellation marks them cancelled."""
    if status == "confirmed":
        await _ADD_SALES.execute(db, order_id=order_id, at=at)
    elif status == "cancelled":
        await _CANCEL_SALES.execute(db, s_order_id=order_id, s_at=at)


# --- reading it -------------------------------------------------------------------------


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    return datetime.combine(first, time(), UTC), datetime.combine(last + timedelta(days=1), time(), UTC)


def _counted(seller_id: Any, first: date, last: date) -> Any:
    start, end = _bounds(first, last)
    conditions = [sales.c.confirmed_at >= start, sales.c.confirmed_at < end, sales.c.cancelled_at.is_(None)]
    if seller_id is not None:
        conditions.append(sales.c.seller_id == seller_id)
    return and_(*conditions)


class SalesHandlers:
    """The sales reports (wired in app.py); the saga writes the projection they read."""

    async def sales_report(self, query: SalesReport, ctx: HandlerContext) -> SalesReportView:
        actor = ctx.require_actor()
        if actor.role != "admin" and actor.user_id != query.seller_id:
            raise not_found("seller")
        if query.end < query.start:
            raise DomainError("validation_failed", "`to` must not be before `from`")
        counted = _counted(query.seller_id, query.start, query.end)
        currency = query.currency or await _main_currency(ctx, counted)
        counted = and_(counted, sales.c.currency == currency)
        day = func.date(func.timezone("UTC", sales.c.confirmed_at))
        revenue = func.sum(_LINE_REVENUE)
        rows = await ctx.session.execute(
            select(
                sales.c.order_id,
                day.label("day"),
                sales.c.quantity,
                _LINE_REVENUE.label("revenue_minor"),
                sales.c.tax_minor,
            ).where(counted)
        )
        lines = [SaleLine(r.order_id, r.day, r.quantity, r.revenue_minor, r.tax_minor) for r in rows]
        totals = by_period(lines, query.start, query.end, query.granularity)
        # Per variant: "the tee, M / Red" sells, not the tee in general.
        top: Select[Any] = (
            select(
                sales.c.variant_id,
                sales.c.product_id,
                func.max(sales.c.name).label("name"),
                func.max(sales.c.variant_label).label("variant"),
                func.sum(sales.c.quantity).label("units"),
                revenue.label("revenue"),
            )
            .where(counted)
            .group_by(sales.c.variant_id, sales.c.product_id)
            .order_by(revenue.desc(), sales.c.variant_id)
            .limit(TOP_PRODUCTS)
        )
        return SalesReportView(
            seller_id=query.seller_id,
            start=query.start,
            end=query.end,
            granularity=query.granularity,
            currency=currency,
            periods=tuple(
                SalesPeriod(
                    start=t.start,
                    orders=t.orders,
                    units=t.units,
                    revenue=to_amount(t.revenue_minor, currency),
                    tax=to_amount(t.tax_minor, currency),
                )
                for t in totals
            ),
            top_products=tuple(
                TopProduct(
                    product_id=r.product_id,
                    variant_id=r.variant_id,
                    name=r.name,
                    variant=r.variant,
                    units=int(r.units),
                    revenue=to_amount(int(r.revenue), currency),
                )
                for r in await ctx.session.execute(top)
            ),
            totals=SalesTotals(
                orders=len({line.order_id for line in lines}),
                units=sum(line.quantity for line in lines),
                revenue=to_amount(sum(line.revenue_minor for line in lines), currency),
                tax=to_amount(sum(line.tax_minor for line in lines), currency),
            ),
        )

    async def sales_overview(self, query: SalesOverview, ctx: HandlerContext) -> SalesOverviewView:
        """Confirmed orders and revenue per day, the last `days` days up to today (UTC): admins."""
        if ctx.require_actor().role != "admin":
            raise DomainError("forbidden", "only admins may see the overview")
        last = datetime.now(UTC).date()
        first = last - timedelta(days=query.days - 1)
        day = func.date(func.timezone("UTC", sales.c.confirmed_at)).label("day")
        rows = await ctx.session.execute(
            select(
                day,
                func.count(sales.c.order_id.distinct()).label("orders"),
                func.sum(_LINE_REVENUE).label("revenue"),
            )
            .where(_counted(None, first, last), sales.c.currency == query.currency)
            .group_by(day)
        )
        found = {r.day: (int(r.orders), int(r.revenue)) for r in rows}
        return SalesOverviewView(
            currency=query.currency,
            days=tuple(
                DaySales(
                    date=first + timedelta(days=n),
                    orders=found.get(first + timedelta(days=n), (0, 0))[0],
                    revenue=to_amount(found.get(first + timedelta(days=n), (0, 0))[1], query.currency),
                )
                for n in range(query.days)
            ),
        )


async def _main_currency(ctx: HandlerContext, counted: Any) -> str:
    """The currency most of these sales are in (a seller usually sells in one)."""
    rows = await ctx.session.execute(select(sales.c.currency, func.count()).where(counted).group_by(sales.c.currency))
    tally = Counter({r[0]: int(r[1]) for r in rows})
    return tally.most_common(1)[0][0] if tally else DEFAULT_CURRENCY
