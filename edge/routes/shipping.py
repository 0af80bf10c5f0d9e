"""Shipping methods: anyone lists those on offer for an address and currency (a checkout
page's choice, priced); admins add, change and delete them."""

from __future__ import annotations

from aiohttp import web

from contracts.shipping import (
    CREATE_SHIPPING_METHOD,
    DELETE_SHIPPING_METHOD,
    LIST_SHIPPING_METHODS,
    UPDATE_SHIPPING_METHOD,
    CreateShippingMethod,
    DeleteShippingMethod,
    ListShippingMethods,
    UpdateShippingMethod,
)
from edge.auth import require_actor
from edge.commands import call_service, parse, parse_query, path_uuid
from edge.middleware import json_body
from edge.openapi import Endpoint


async def list_shipping_methods(request: web.Request) -> web.Response:
    return await call_service(request, LIST_SHIPPING_METHODS, parse_query(ListShippingMethods, request))


async def create_shipping_method(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    command = parse(CreateShippingMethod, json_body(request))
    return await call_service(
        request,
        CREATE_SHIPPING_METHOD,
        command,
        actor=actor,
        status=201,
        location="/api/shipping-methods/{method_id}",
    )


async def update_shipping_method(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    method_id = path_uuid(request, "methodId")
    command = parse(UpdateShippingMethod, json_body(request), server_fields={"method_id": method_id})
    return await call_service(request, UPDATE_SHIPPING_METHOD, command, actor=actor)


async def delete_shipping_method(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    command = DeleteShippingMethod(method_id=path_uuid(request, "methodId"))
    return await call_service(request, DELETE_SHIPPING_METHOD, command, actor=actor)


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/shipping-methods",
        list_shipping_methods,
        LIST_SHIPPING_METHODS,
        query=ListShippingMethods,
        errors=(422,),
        summary="The shipping methods. With `country` and `currency`: those a checkout may offer (serving the "
        "country, priced in the currency), each with its `price` for `subtotal` (0 from its free-shipping "
        "threshold), cheapest first.",
    ),
    Endpoint(
        "POST",
        "/api/shipping-methods",
        create_shipping_method,
        CREATE_SHIPPING_METHOD,
        status=201,
        body=CreateShippingMethod,
        auth=True,
        errors=(403,),
        headers=("Location",),
        summary="Admin: add a shipping method: countries served, a price per currency offered, optional "
        "free-shipping thresholds, a delivery estimate.",
    ),
    Endpoint(
        "PUT",
        "/api/shipping-methods/{methodId}",
        update_shipping_method,
        UPDATE_SHIPPING_METHOD,
        body=UpdateShippingMethod,
        body_omits=("method_id",),
        auth=True,
        errors=(403, 404),
        partial=True,
        summary="Admin: change a shipping method (only the fields sent; `prices` and `free_from` whole). Orders "
        "already placed keep what they were charged.",
    ),
    Endpoint(
        "DELETE",
        "/api/shipping-methods/{methodId}",
        delete_shipping_method,
        DELETE_SHIPPING_METHOD,
        status=204,
        auth=True,
        errors=(403, 404),
        summary="Admin: stop offering a shipping method.",
    ),
)
