"""Carts made through the API, for the authorization matrix."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from harness.accounts import bearer, login, make_seller, register
from tests.catalog_support import create_category, create_product, new_tag


async def cart_target(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """Authorization-matrix target: a new member (the "owner") with a product in their cart."""
    seller = await make_seller(http, admin)
    slug = f"matrix-{new_tag()}"
    await create_category(http, admin, slug)
    product = await create_product(http, seller, slug)
    user = await register(http)
    session = await login(http, user["email"], user["password"])
    body = {"product_id": product["product_id"], "quantity": 1}
    for _ in range(150):  # until the orders service has heard of the product
        async with http.post("/api/cart/items", json=body, headers=bearer(session["access_token"])) as resp:
            if resp.status == 200:
                return {**user, **session, "params": {"productId": product["product_id"]}}
            assert resp.status == 404, await resp.text()
        await asyncio.sleep(0.1)
    raise AssertionError("the orders service never heard of the product")
