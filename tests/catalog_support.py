"""Catalog objects made through the API, for the catalog tests and the authorization matrix."""

from __future__ import annotations

import asyncio
import random
import string
import time
from typing import Any

import aiohttp
from redis.asyncio import Redis

from harness import environment
from harness.accounts import bearer, login, make_seller, register


def new_tag() -> str:
    # Letters only: one token for the full-text parser, unique to the test.
    return "".join(random.choices(string.ascii_lowercase, k=10))


async def create_category(
    http: aiohttp.ClientSession, admin: dict[str, Any], slug: str, parent: str | None = None
) -> None:
    body = {"slug": slug, "name": slug.replace("-", " ").title(), "parent": parent}
    async with http.post("/api/categories", json=body, headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 201, await resp.text()


async def create_product(
    http: aiohttp.ClientSession, owner: dict[str, Any], category: str, **fields: Any
) -> dict[str, Any]:
    body = {
        "name": f"Product {new_tag()}",
        "description": "A fine thing.",
        "price": "19.99",
        "currency": "USD",
        "category": category,
        **fields,
    }
    async with http.post("/api/products", json=body, headers=bearer(owner["access_token"])) as resp:
        assert resp.status == 201, await resp.text()
        result: dict[str, Any] = await resp.json()
        return result


async def product_target(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """Authorization-matrix target: a product of a new seller (the "owner"), in a new category."""
    seller = await make_seller(http, admin)
    slug = f"matrix-{new_tag()}"
    await create_category(http, admin, slug)
    product = await create_product(http, seller, slug)
    return {**seller, "category": slug, "params": {"productId": product["product_id"]}}


async def category_target(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """Authorization-matrix target: a new, empty category; the "owner" is a new member (categories have none)."""
    slug = f"matrix-{new_tag()}"
    await create_category(http, admin, slug)
    user = await register(http)
    session = await login(http, user["email"], user["password"])
    return {**user, **session, "category": slug, "params": {"slug": slug}}


async def variant_target(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """Authorization-matrix target: a product in sizes S and M (and L, not yet sold) of a new
    seller (the "owner"); {variantId} is its S variant."""
    seller = await make_seller(http, admin)
    slug = f"matrix-{new_tag()}"
    await create_category(http, admin, slug)
    product = await create_product(
        http,
        seller,
        slug,
        options=[{"name": "Size", "values": ["S", "M", "L"]}],
        variants=[{"options": {"Size": "S"}}, {"options": {"Size": "M"}}],
    )
    small = next(v for v in product["variants"] if v["options"] == {"Size": "S"})
    params = {"productId": product["product_id"], "variantId": small["variant_id"]}
    return {**seller, "category": slug, "params": params}


def shipping_method_body() -> dict[str, Any]:
    return {
        "name": f"Matrix parcel {new_tag()}",
        "countries": ["DE"],
        "prices": {"EUR": "4.90"},
        "min_days": 1,
        "max_days": 3,
    }


async def shipping_method_target(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """Authorization-matrix target: a shipping method (admins' alone) and a member."""
    async with http.post(
        "/api/shipping-methods", json=shipping_method_body(), headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 201, await resp.text()
        method = await resp.json()
    user = await register(http)
    session = await login(http, user["email"], user["password"])
    return {**user, **session, "params": {"methodId": method["method_id"]}}


def tax_rate_body() -> dict[str, Any]:
    """A rate of a tax class of its own (in a country no test orders in), so no order is taxed by it."""
    return {"country": "IS", "tax_class": f"matrix-{new_tag()}", "rate": "24", "name": "VSK"}


async def tax_rate_target(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """Authorization-matrix target: a tax rate (admins' alone) and a member."""
    async with http.post("/api/tax-rates", json=tax_rate_body(), headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 201, await resp.text()
        rate = await resp.json()
    user = await register(http)
    session = await login(http, user["email"], user["password"])
    return {**user, **session, "params": {"rateId": rate["rate_id"], "currency": "NOK"}}


async def cache_settled(product_id: str, within: float = 10.0) -> None:
    """Wait until the edge has heard of a new product (its `product_created` made its cache
    generation) and the generation has then stopped moving for half a second: no event
    about it is still on its way to the edge. (Waiting for stillness alone was not enough:
    on a busy machine the creation's event could come after half a second of nothing.)"""
    redis = Redis.from_url(environment.test_env()["AGORA_REDIS_URL"], decode_responses=True)
    try:
        key, last = f"agora:cache:gen:product:{product_id}", None
        started = stable_since = time.monotonic()
        while last is None or time.monotonic() - stable_since < 0.5:
            assert time.monotonic() - started < within, f"the edge did not hear of {product_id} in {within} s"
            value = await redis.get(key)
            if value != last:
                last, stable_since = value, time.monotonic()
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()
