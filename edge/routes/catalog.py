"""The catalog endpoints: products and their variants, search, categories. Each route is one command.

Reads are public and the same for every caller (no token is forwarded), which is
also what lets the edge cache product pages and listings (edge/cache.py) under a key
without the caller in it. One exception: a seller's or an admin's read of a product
page is forwarded with their token and not cached, because its seller and admins see
each variant's stock count where everyone else sees in stock, low or out of stock.
"""

from __future__ import annotations

import re

from aiohttp import web

from contracts.catalog import (
    ADD_VARIANT,
    CREATE_CATEGORY,
    CREATE_PRODUCT,
    DELETE_CATEGORY,
    DELETE_PRODUCT,
    GET_PRODUCT,
    LIST_CATEGORIES,
    SEARCH_PRODUCTS,
    SUGGEST_PRODUCTS,
    UPDATE_CATEGORY,
    UPDATE_PRODUCT,
    UPDATE_VARIANT,
    WITHDRAW_VARIANT,
    AddVariant,
    CreateCategory,
    CreateProduct,
    DeleteCategory,
    DeleteProduct,
    GetProduct,
    ListCategories,
    SearchProducts,
    SuggestProducts,
    UpdateCategory,
    UpdateProduct,
    UpdateVariant,
    WithdrawVariant,
)
from edge.auth import optional_actor, require_actor
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
    actor = await optional_actor(request)
    if actor is not None and actor.role in _MAY_SEE_STOCK:
        # Perhaps its seller, or an admin: the catalog decides, and the answer is theirs alone.
        return await call_service(request, GET_PRODUCT, query, actor=actor, headers={"Cache-Control": "no-store"})
    page = await request.app[CACHE_KEY].product(query.product_id, lambda: send(request, GET_PRODUCT, query))
    return web.json_response(page)


# The roles that may manage products, and so see their variants' stock counts.
_MAY_SEE_STOCK = frozenset({"seller", "admin"})


async def list_products(request: web.Request) -> web.Response:
    query = parse_query(SearchProducts, request)
    listing = await request.app[CACHE_KEY].listing(
        query.model_dump(mode="json"), lambda: send(request, SEARCH_PRODUCTS, query)
    )
    return web.json_response(listing)


async def suggest_products(request: web.Request) -> web.Response:
    query = parse_query(SuggestProducts, request)
    # Cached as listings are (and dropped with them): "suggest" keeps the keys apart.
    suggestions = await request.app[CACHE_KEY].listing(
        {"suggest": query.model_dump(mode="json")}, lambda: send(request, SUGGEST_PRODUCTS, query)
    )
    return web.json_response(suggestions)


async def update_product(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    product_id = path_uuid(request, "productId")
    command = parse(UpdateProduct, json_body(request), server_fields={"product_id": product_id})
    return await call_service(request, UPDATE_PRODUCT, command, actor=actor)


async def delete_product(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    command = DeleteProduct(product_id=path_uuid(request, "productId"))
    return await call_service(request, DELETE_PRODUCT, command, actor=actor)


async def add_variant(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    product_id = path_uuid(request, "productId")
    command = parse(AddVariant, json_body(request), server_fields={"product_id": product_id})
    return await call_service(
        request, ADD_VARIANT, command, actor=actor, status=201, location="/api/products/{product_id}"
    )


async def update_variant(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    ids = {"product_id": path_uuid(request, "productId"), "variant_id": path_uuid(request, "variantId")}
    command = parse(UpdateVariant, json_body(request), server_fields=ids)
    return await call_service(request, UPDATE_VARIANT, command, actor=actor)


async def withdraw_variant(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    command = WithdrawVariant(product_id=path_uuid(request, "productId"), variant_id=path_uuid(request, "variantId"))
    return await call_service(request, WITHDRAW_VARIANT, command, actor=actor)


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
        summary="List a product (sellers and admins); it belongs to the caller. Without `options` it has one "
        "default variant (its id is the product's: `price` and `stock`, the initial stock the inventory service "
        "starts with); with `options`, `variants` lists each combination sold, with its SKU, price and stock. "
        "A SKU another live variant of the caller has is 409.",
    ),
    Endpoint(
        "GET",
        "/api/products",
        list_products,
        SEARCH_PRODUCTS,
        query=SearchProducts,
        errors=(422,),
        summary="Search and browse: full text over name and description (typos forgiven by word length, the "
        "last word also a prefix), filters, a category's subcategories included; keyset pages via `next_cursor`. "
        "A first page carries facets: counts per category and per price band of each currency, and the total "
        "(exact up to 1,000, then an estimate). A price filter or price order needs `currency`.",
    ),
    # Before /api/products/{productId}, which would take "suggest" for an id.
    Endpoint(
        "GET",
        "/api/products/suggest",
        suggest_products,
        SUGGEST_PRODUCTS,
        query=SuggestProducts,
        errors=(422,),
        summary="Autocomplete: up to `limit` names of products containing every word typed, the last as a "
        "prefix (from two letters), typos in the complete words forgiven as in a search; the names that match "
        "as typed first, shorter names first.",
    ),
    Endpoint(
        "GET",
        "/api/products/{productId}",
        get_product,
        GET_PRODUCT,
        errors=(401, 404),
        summary="Read a product with its variants and their availability. With its seller's or an admin's token, "
        "also each variant's `stock`; a token that is sent must be valid (else 401).",
    ),
    Endpoint(
        "PUT",
        "/api/products/{productId}",
        update_product,
        UPDATE_PRODUCT,
        body=UpdateProduct,
        body_omits=("product_id",),
        auth=True,
        errors=(404,),
        partial=True,
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
    Endpoint(
        "POST",
        "/api/products/{productId}/variants",
        add_variant,
        ADD_VARIANT,
        status=201,
        body=AddVariant,
        body_omits=("product_id",),
        auth=True,
        errors=(404, 409),
        headers=("Location",),
        summary="Add a variant to a product with options (its seller or an admin): one value for each option, a "
        "combination no live variant has. Answers with the product. A SKU in use is 409.",
    ),
    Endpoint(
        "PUT",
        "/api/products/{productId}/variants/{variantId}",
        update_variant,
        UPDATE_VARIANT,
        body=UpdateVariant,
        body_omits=("product_id", "variant_id"),
        auth=True,
        errors=(404, 409),
        partial=True,
        summary="Change a variant's SKU, price, compare-at price or weight (its seller or an admin; only the fields "
        "sent change, null removes an optional one). The default variant of a product without options has the "
        "product's id. Answers with the product.",
    ),
    Endpoint(
        "DELETE",
        "/api/products/{productId}/variants/{variantId}",
        withdraw_variant,
        WITHDRAW_VARIANT,
        auth=True,
        errors=(404, 409),
        summary="Withdraw a variant (its seller or an admin): it is no longer sold, carts stop showing it, past "
        "orders keep their copy. The last variant is 409: withdraw the product. Answers with the product.",
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
        partial=True,
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
