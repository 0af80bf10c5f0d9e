"""The inventory endpoints: a variant's stock. Reservations are broker-only (the order saga)."""

from __future__ import annotations

from aiohttp import web

from contracts.inventory import (
    GET_STOCK,
    LIST_LOW_STOCK,
    SET_STOCK,
    GetStock,
    ListLowStock,
    LowStockQuery,
    SetStock,
    StockQuery,
)
from edge.auth import optional_actor, require_actor
from edge.commands import call_service, parse, parse_query, path_uuid
from edge.middleware import json_body
from edge.openapi import Endpoint


async def get_stock(request: web.Request) -> web.Response:
    # Public, but a token is forwarded: the product's seller and admins see more.
    actor = await optional_actor(request)
    query = GetStock(product_id=path_uuid(request, "productId"), variant_id=parse_query(StockQuery, request).variant_id)
    return await call_service(request, GET_STOCK, query, actor=actor)


async def set_stock(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    product_id = path_uuid(request, "productId")
    command = parse(SetStock, json_body(request), server_fields={"product_id": product_id})
    return await call_service(request, SET_STOCK, command, actor=actor)


async def my_low_stock(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    query = parse_query(LowStockQuery, request)
    command = ListLowStock(seller_id=actor.user_id, limit=query.limit)
    return await call_service(request, LIST_LOW_STOCK, command, actor=actor)


async def admin_low_stock(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    query = parse_query(LowStockQuery, request)
    return await call_service(request, LIST_LOW_STOCK, ListLowStock(limit=query.limit), actor=actor)


ENDPOINTS = (
    # Before `/api/inventory/{productId}`, which would otherwise take `low-stock` for an id.
    Endpoint(
        "GET",
        "/api/inventory/low-stock",
        my_low_stock,
        LIST_LOW_STOCK,
        query=LowStockQuery,
        auth=True,
        errors=(403, 422),
        summary="The caller's own products whose available stock is at or below their `low_stock_threshold` "
        "(sold out included), lowest first (sellers and admins; members 403).",
    ),
    Endpoint(
        "GET",
        "/api/admin/inventory/low-stock",
        admin_low_stock,
        LIST_LOW_STOCK,
        query=LowStockQuery,
        auth=True,
        errors=(403, 422),
        summary="Every seller's products whose available stock is at or below their `low_stock_threshold` "
        "(sold out included), lowest first (admins).",
    ),
    Endpoint(
        "GET",
        "/api/inventory/{productId}",
        get_stock,
        GET_STOCK,
        query=StockQuery,
        errors=(401, 404),
        summary="A variant's stock available to sell (`variant_id` in the query; without it, the product's default "
        "variant: a product with options needs one, else 422), for everyone. With the product's seller's or an "
        "admin's token, also `reserved` and `low_stock_threshold`; a token that is sent must be valid (else 401).",
    ),
    Endpoint(
        "PUT",
        "/api/inventory/{productId}",
        set_stock,
        SET_STOCK,
        body=SetStock,
        body_omits=("product_id",),
        auth=True,
        errors=(403, 404, 409),
        summary="Set (`stock`) or adjust (`delta`, with a `reason`) a variant's stock (`variant_id`; without it, "
        "the product's default variant), and/or its "
        "`low_stock_threshold` (the product's seller or an admin; anyone else 403). Taking more than is "
        "available is 409. Every change is recorded in the stock-movement ledger.",
    ),
)
