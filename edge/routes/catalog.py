"""The catalog endpoints: products, search, categories. Each route is one command.

Reads are public and the same for every caller (no token is forwarded), which is
also what lets the edge cache product pages and listings (edge/cache.py) under a key
without the caller in it.
"""

from __future__ import annotations

import re

from aiohttp import web

from contracts.catalog import (
    CREATE_CATEGORY,
    CREATE_PRODUCT,
    DELETE_CATEGORY,
    DELETE_PRODUCT,
    GET_PRODUCT,
    LIST_CATEGORIES,
    SEARCH_PRODUCTS,
    UPDATE_CATEGORY,
    UPDATE_PRODUCT,
    CreateCategory,
    CreateProduct,
    DeleteCategory,
    DeleteProduct,
    GetProduct,
    ListCategories,
    SearchProducts,
    UpdateCategory,
    UpdateProduct,
)
from edge.auth import require_actor
from edge.cache import CACHE_KEY
from edge.commands import call_service, parse, parse_query, path_uuid, send
from edge.middleware import json_body
from edge.openapi import Endpoint
from edge.problems import HttpProblem

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def path_slug(request: web.Request, name: str) -> str:
    # A slug that cannot exist names nothing: 404, like one that does not exist.
    slug = request.match_info[name]
    if len(slug) > 64 or not _SLUG.fullmatch(slug):
        raise HttpProblem("not_found", "no resource at this URL")
    return slug


async def create_product(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    command = parse(CreateProduct, json_body(request))
    return await call_service(
        request, CREATE_PRODUCT, command, actor=actor, status=201, location="/api/products/{product_id}"
    )


async def get_product(request: web.Request) -> web.Response:
    query = GetProduct(product_id=path_uuid(request, "productId"))
    page = await request.app[CACHE_KEY].product(query.product_id, lambda: send(request, GET_PRODUCT, query))
    return web.json_response(page)


async def list_products(request: web.Request) -> web.Response:
    query = parse_query(SearchProducts, request)
    listing = await request.app[CACHE_KEY].listing(
        query.model_dump(mode="json"), lambda: send(request, SEARCH_PRODUCTS, query)
    )
    return web.json_response(listing)


async def update_product(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    product_id = path_uuid(request, "productId")
    command = parse(UpdateProduct, json_body(request), server_fields={"product_id": product_id})
    return await call_service(request, UPDATE_PRODUCT, command, actor=actor)


async def delete_product(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    command = DeleteProduct(product_id=path_uuid(request, "productId"))
    return await call_service(request, DELETE_PRODUCT, command, actor=actor)


async def list_categories(request: web.Request) -> web.Response:
    return await call_service(request, LIST_CATEGORIES, ListCategories())


async def create_category(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return await call_service(
        request, CREATE_CATEGORY, parse(CreateCategory, json_body(request)), actor=actor, status=201
    )


async def update_category(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    slug = path_slug(request, "slug")
    command = parse(UpdateCategory, json_body(request), server_fields={"slug": slug})
    return await call_service(request, UPDATE_CATEGORY, command, actor=actor)


async def delete_category(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    command = DeleteCategory(slug=path_slug(request, "slug"))
    return await call_service(request, DELETE_CATEGORY, command, actor=actor)


ENDPOINTS = (
    Endpoint(
        "POST",
        "/api/products",
        create_product,
        CREATE_PRODUCT,
        status=201,
        body=CreateProduct,
        auth=True,
        errors=(403,),
        headers=("Location",),
        summary="List a product (sellers and admins); it belongs to the caller. "
        "`stock` is the initial stock the inventory service starts with.",
    ),
    Endpoint(
        "GET",
        "/api/products",
        list_products,
        SEARCH_PRODUCTS,
        query=SearchProducts,
        errors=(422,),
        summary="Search and browse: full text over name and description (typos tolerated), filters, "
        "a category's subcategories included; keyset pages via `next_cursor`.",
    ),
    Endpoint("GET", "/api/products/{productId}", get_product, GET_PRODUCT, errors=(404,), summary="Read a product."),
    Endpoint(
        "PUT",
        "/api/products/{productId}",
        update_product,
        UPDATE_PRODUCT,
        body=UpdateProduct,
        body_omits=("product_id",),
        auth=True,
        errors=(404,),
        summary="Change a product (its seller or an admin): only the fields sent change; "
        "another seller's product is 404.",
    ),
    Endpoint(
        "DELETE",
        "/api/products/{productId}",
        delete_product,
        DELETE_PRODUCT,
        status=204,
        auth=True,
        errors=(404,),
        summary="Withdraw a product (its seller or an admin): later reads are 404; past orders keep their copy.",
    ),
    Endpoint("GET", "/api/categories", list_categories, LIST_CATEGORIES, summary="The category tree."),
    Endpoint(
        "POST",
        "/api/categories",
        create_category,
        CREATE_CATEGORY,
        status=201,
        body=CreateCategory,
        auth=True,
        errors=(409,),
        summary="Admin: add a category, top-level or under `parent`.",
    ),
    Endpoint(
        "PUT",
        "/api/categories/{slug}",
        update_category,
        UPDATE_CATEGORY,
        body=UpdateCategory,
        body_omits=("slug",),
        path_params=DeleteCategory,
        auth=True,
        errors=(404,),
        summary="Admin: rename a category or move it (with its subtree) under another parent.",
    ),
    Endpoint(
        "DELETE",
        "/api/categories/{slug}",
        delete_category,
        DELETE_CATEGORY,
        status=204,
        path_params=DeleteCategory,
        auth=True,
        errors=(404, 409),
        summary="Admin: remove a category that has no subcategories and no products.",
    ),
)
