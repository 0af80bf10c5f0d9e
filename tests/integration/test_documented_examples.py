"""The API document's examples work when sent as they are (issue 19): a developer who
copies the documented order body from /api/docs gets an order, not a refusal."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp

from harness.accounts import bearer, login, register
from tests.orders_support import confirmed_and_captured, matrix_product


async def _order_examples(http: aiohttp.ClientSession) -> list[dict[str, Any]]:
    async with http.get("/api/openapi.json") as resp:
        document = await resp.json()
    body = document["paths"]["/api/orders"]["post"]["requestBody"]["content"]["application/json"]
    name = body["schema"]["$ref"].rsplit("/", 1)[1]
    examples: list[dict[str, Any]] = list(document["components"]["schemas"][name].get("examples", ()))
    examples += [e["value"] for e in body.get("examples", {}).values()]
    if "example" in body:
        examples.append(body["example"])
    return examples


async def test_each_documented_order_example_is_placed_and_confirmed(
    http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    examples = await _order_examples(http)
    assert examples, "POST /api/orders documents no example"
    product_id = await matrix_product(http, admin)
    for example in examples:
        user = await register(http)
        member = {**user, **(await login(http, user["email"], user["password"]))}
        if "items" not in example:  # the cart form: the caller's cart is what is ordered
            for _ in range(100):  # until the orders service has heard of the new product
                async with http.post(
                    "/api/cart/items", json={"product_id": product_id}, headers=bearer(member["access_token"])
                ) as resp:
                    if resp.status == 200:
                        break
                    assert resp.status in (404, 422), await resp.text()
                await asyncio.sleep(0.1)
            assert resp.status == 200, await resp.text()
        headers = {**bearer(member["access_token"]), "Idempotency-Key": str(uuid.uuid4())}
        async with http.post("/api/orders", json=example, headers=headers) as resp:
            assert resp.status == 202, (example, await resp.text())
            placed = await resp.json()
        order = await confirmed_and_captured(http, member, placed["order_id"])
        assert order["shipping_address"]["city"] == example["shipping_address"]["city"]
