"""Reports: a seller's sales (JSON or CSV), and the admin dashboard's orders and overview.

The numbers come from the orders service's sales projection (workers/orders/sales/),
which checks who may see them; the overview adds the broker's queue depths, which the
edge reads itself (edge/dead_letters.py).
"""

from __future__ import annotations

import csv
import io
import logging

from aiohttp import web

from contracts.operations import AdminOverview
from contracts.orders import (
    LIST_ORDERS,
    SALES_OVERVIEW,
    SALES_REPORT,
    ListOrders,
    SalesOverview,
    SalesReport,
    SalesReportQuery,
)
from edge import SETTINGS_KEY
from edge.auth import require_actor
from edge.commands import call_service, parse_query, path_uuid, send
from edge.dead_letters import DLQ_SUFFIX, DeadLetterError, DeadLetters, QueueDepth, is_dead_letter_queue
from edge.openapi import Endpoint

log = logging.getLogger("agora.edge.reports")
CSV_COLUMNS = ("period_start", "orders", "units", "revenue", "tax", "currency")


def _wants_csv(request: web.Request, query: SalesReportQuery) -> bool:
    accept = request.headers.get("Accept", "")
    return query.format == "csv" or ("text/csv" in accept and "application/json" not in accept)


async def sales_report(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    query = parse_query(SalesReportQuery, request)
    command = SalesReport(
        seller_id=path_uuid(request, "sellerId"),
        start=query.start,
        end=query.end,
        granularity=query.granularity,
        currency=query.currency,
    )
    if not _wants_csv(request, query):
        return await call_service(request, SALES_REPORT, command, actor=actor)
    report = await send(request, SALES_REPORT, command, actor=actor)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for period in report["periods"]:
        writer.writerow(
            (period["start"], period["orders"], period["units"], period["revenue"], period["tax"], report["currency"])
        )
    filename = f"sales-{query.start.isoformat()}-{query.end.isoformat()}.csv"
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


async def list_orders(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return await call_service(request, LIST_ORDERS, parse_query(ListOrders, request), actor=actor)


def agora_queues(depths: list[QueueDepth]) -> list[QueueDepth]:
    """Agora's work queues and their dead-letter queues: a work queue is one with a `.dlq`.
    The edge's reply queues, `amq.*`, the delay tiers and the unrouted queue are left out."""
    names = {d.queue for d in depths}
    return [d for d in depths if is_dead_letter_queue(d.queue) or f"{d.queue}{DLQ_SUFFIX}" in names]


async def admin_overview(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    sold = await send(request, SALES_OVERVIEW, parse_query(SalesOverview, request), actor=actor)
    try:
        depths = await DeadLetters.from_settings(request.app[SETTINGS_KEY]).queue_depths()
    except DeadLetterError as exc:  # the sales figures are still worth showing
        log.warning("queue depths unavailable", extra={"error": str(exc)})
        depths = []
    overview = AdminOverview.model_validate({**sold, "queues": [vars(d) for d in agora_queues(depths)]})
    return web.json_response(overview.model_dump(mode="json"))


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/sellers/{sellerId}/reports/sales",
        sales_report,
        SALES_REPORT,
        query=SalesReportQuery,
        auth=True,
        errors=(404, 422),
        also_as=("text/csv", "One row per period: `period_start,orders,units,revenue,tax,currency`"),
        summary="A seller's sales from `from` to `to` (days, UTC, both included) by `granularity` (day, week "
        "from Monday, month): orders confirmed and not cancelled since, every period listed (zeros too), the top "
        "10 products by revenue, and totals, in one currency (`currency`, by default the one most sales use). The "
        "seller or an admin; anyone else 404. With `format=csv` or `Accept: text/csv`, a CSV download "
        "(`period_start,orders,units,revenue,tax,currency`).",
    ),
    Endpoint(
        "GET",
        "/api/admin/orders",
        list_orders,
        LIST_ORDERS,
        query=ListOrders,
        auth=True,
        errors=(403, 422),
        summary="Every order, newest first, filtered by `status`, the day placed (`from`, `to`, UTC, "
        "included) and a search `q` (order id or its first 8 digits, customer's email, part of their name), in "
        "keyset pages via `next_cursor` (admins).",
    ),
    Endpoint(
        "GET",
        "/api/admin/overview",
        admin_overview,
        SALES_OVERVIEW,
        query=SalesOverview,
        response=AdminOverview,
        auth=True,
        errors=(403, 422),
        summary="The dashboard's overview (admins): orders confirmed (and not cancelled since) and their revenue "
        "per day for the last `days` days in `currency`, and the depth, consumers and message rates of Agora's work "
        "and dead-letter queues.",
    ),
)
