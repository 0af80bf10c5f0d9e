"""Revocation takes effect within seconds, at the edge and in the workers (issue 13).

Before: an access token is checked by signature and expiry only, so after a logout, a
password change, a demotion, disabling or erasure the old token kept working for up to
15 minutes, in every service but the users service itself. Each test here holds a token,
revokes it the way a person or an admin would, and measures how long until it is refused
over HTTP (the edge) and, where it matters, on the broker (the worker checks again).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from contracts.carts import ADD_CART_ITEM
from contracts.catalog import CREATE_PRODUCT
from contracts.orders import PLACE_ORDER
from harness.accounts import bearer, login, make_seller, register
from harness.bus import Bus
from harness.processes import agora_cli
from harness.stack import Stack
from tests.catalog_support import create_category, new_tag
from tests.orders_support import ADDRESS, matrix_product

WITHIN_SECONDS = 5.0

Probe = Callable[[], Awaitable[int]]


def probe(http: aiohttp.ClientSession, method: str, path: str, token: str, body: Any = None) -> Probe:
    async def status() -> int:
        async with http.request(method, path, json=body, headers=bearer(token)) as resp:
            return resp.status

    return status


async def refused_within(check: Probe, seconds: float = WITHIN_SECONDS) -> float:
    """How long until `check` answers 401; fails past `seconds`."""
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        if await check() == 401:
            return elapsed
        await asyncio.sleep(0.1)
    raise AssertionError(f"still accepted {seconds:g} s after the revocation")


async def session_of(http: aiohttp.ClientSession, user: dict[str, Any]) -> dict[str, Any]:
    return await login(http, user["email"], user["password"])


async def refused_on_the_broker(bus: Bus, routing_key: str, body: dict[str, Any], token: str) -> dict[str, Any]:
    """The worker's own answer to a command carrying the token (the edge is not asked),
    once it has learnt of the revocation from its copy of the event (within the limit)."""
    started = time.monotonic()
    while time.monotonic() - started < WITHIN_SECONDS:
        reply = await bus.call(
            routing_key, {**body, **({"order_id": str(uuid.uuid4())} if "order_id" in body else {})}, token=token
        )
        if not reply["ok"] and reply["error"]["code"] == "unauthorized":
            return dict(reply["error"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"the worker still took the token {WITHIN_SECONDS:g} s after the revocation")


async def admin_sets(http: aiohttp.ClientSession, admin: dict[str, Any], user_id: str, change: dict[str, Any]) -> None:
    async with http.put(f"/api/users/{user_id}", json=change, headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 200, await resp.text()


async def refused_everywhere(check: Probe, bus: Bus, routing_key: str, body: dict[str, Any], token: str) -> None:
    """Refused within the limit at the edge, and by the worker itself on the broker (each
    learns of the revocation from its own copy of the event, so one may be a moment later)."""
    await refused_within(check)
    await refused_on_the_broker(bus, routing_key, body, token)


async def test_logout_voids_that_sessions_access_token_and_not_the_others(http: aiohttp.ClientSession) -> None:
    user = await register(http)
    this, other = await session_of(http, user), await session_of(http, user)
    me = probe(http, "GET", "/api/users/me", this["access_token"])
    assert await me() == 200
    async with http.post("/api/auth/logout", json={"refresh_token": this["refresh_token"]}) as resp:
        assert resp.status == 204
    await refused_within(me)
    assert await refused_within(probe(http, "PUT", f"/api/users/{user['user_id']}", this["access_token"], {})) < 1
    assert await probe(http, "GET", "/api/users/me", other["access_token"])() == 200


async def test_logout_all_voids_every_session(http: aiohttp.ClientSession) -> None:
    user = await register(http)
    first, second = await session_of(http, user), await session_of(http, user)
    async with http.post("/api/auth/logout-all", headers=bearer(first["access_token"])) as resp:
        assert resp.status == 204
    for session in (first, second):
        await refused_within(probe(http, "GET", "/api/users/me", session["access_token"]))
    # A new sign-in right after works: only tokens issued before the logout are void.
    assert await probe(http, "GET", "/api/users/me", (await session_of(http, user))["access_token"])() == 200


async def test_a_password_change_voids_old_tokens_and_a_new_sign_in_works_at_once(
    http: aiohttp.ClientSession,
) -> None:
    user = await register(http)
    old = await session_of(http, user)
    body = {"current_password": user["password"], "new_password": "another long passphrase"}
    async with http.post(
        f"/api/users/{user['user_id']}/password", json=body, headers=bearer(old["access_token"])
    ) as resp:
        assert resp.status == 204, await resp.text()
    await refused_within(probe(http, "GET", "/api/users/me", old["access_token"]))
    fresh = await login(http, user["email"], "another long passphrase")
    assert await probe(http, "GET", "/api/users/me", fresh["access_token"])() == 200


async def test_a_reused_refresh_token_voids_the_sessions_access_tokens(http: aiohttp.ClientSession) -> None:
    user = await register(http)
    session = await session_of(http, user)
    async with http.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]}) as resp:
        assert resp.status == 200
        rotated = await resp.json()
    # The first refresh token again: someone copied it. The whole session ends.
    async with http.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]}) as resp:
        assert resp.status == 401
    for token in (session["access_token"], rotated["access_token"]):
        await refused_within(probe(http, "GET", "/api/users/me", token))


async def test_a_demoted_seller_cannot_create_products_at_the_edge_or_on_the_broker(
    http: aiohttp.ClientSession, bus: Bus, admin: dict[str, Any]
) -> None:
    seller = await make_seller(http, admin)
    category = f"revoked-{new_tag()}"
    await create_category(http, admin, category)
    body = {"name": f"P {new_tag()}", "price": "1.00", "currency": "USD", "category": category}
    create = probe(http, "POST", "/api/products", seller["access_token"], body)
    assert await create() == 201
    await admin_sets(http, admin, seller["user"]["user_id"], {"role": "member"})
    await refused_everywhere(create, bus, CREATE_PRODUCT.routing_key, body, seller["access_token"])


async def test_a_disabled_account_fills_no_cart_at_the_edge_or_on_the_broker(
    http: aiohttp.ClientSession, bus: Bus, admin: dict[str, Any]
) -> None:
    product_id = await matrix_product(http, admin)
    member = await session_of(http, await register(http))
    item = {"product_id": product_id, "quantity": 1}
    add = probe(http, "POST", "/api/cart/items", member["access_token"], item)
    for _ in range(100):  # until the orders service has heard of the product
        if await add() == 200:
            break
        await asyncio.sleep(0.1)
    await admin_sets(http, admin, member["user"]["user_id"], {"disabled": True})
    await refused_everywhere(add, bus, ADD_CART_ITEM.routing_key, item, member["access_token"])


async def test_an_erased_account_places_no_order_whatever_token_is_used(
    stack: Stack, http: aiohttp.ClientSession, bus: Bus, admin: dict[str, Any]
) -> None:
    product_id = await matrix_product(http, admin)
    user = await register(http)
    member = await session_of(http, user)
    order = {"items": [{"product_id": product_id, "quantity": 1}], "shipping_address": ADDRESS}
    place = probe(http, "POST", "/api/orders", member["access_token"], {**order, "payment_token": "tok_visa"})
    async with http.delete(f"/api/users/{user['user_id']}", headers=bearer(member["access_token"])) as resp:
        assert resp.status == 204
    elapsed = await refused_within(place)
    assert elapsed < WITHIN_SECONDS
    command = {**order, "order_id": str(uuid.uuid4()), "payment_token": "tok_visa"}
    error = await refused_on_the_broker(bus, PLACE_ORDER.routing_key, command, member["access_token"])
    assert error["code"] == "unauthorized"
    # A partner allowed to order for members cannot order for this one either.
    partner = await _partner_token(stack, http)
    for_them = {**command, "order_id": str(uuid.uuid4()), "on_behalf_of": user["user_id"]}
    for _ in range(50):  # until the orders service has the erasure
        reply = await bus.call(PLACE_ORDER.routing_key, for_them, token=partner)
        if not reply["ok"]:
            break
        for_them["order_id"] = str(uuid.uuid4())
        await asyncio.sleep(0.1)
    assert reply["error"]["code"] == "forbidden", reply


async def test_disabling_a_partner_voids_its_tokens(stack: Stack, http: aiohttp.ClientSession, bus: Bus) -> None:
    name = f"shop-{uuid.uuid4().hex[:8]}"
    token = await _partner_token(stack, http, name)
    assert agora_cli(stack.env, "partners", "disable", name).returncode == 0
    started = time.monotonic()
    while time.monotonic() - started < WITHIN_SECONDS:
        items = [{"product_id": str(uuid.uuid4()), "quantity": 1}]
        command = {"order_id": str(uuid.uuid4()), "items": items, "shipping_address": ADDRESS}
        command["payment_token"] = "tok_visa"
        reply = await bus.call(PLACE_ORDER.routing_key, command, token=token)
        if not reply["ok"] and reply["error"]["code"] == "unauthorized":
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the disabled partner's token still works")


async def _partner_token(stack: Stack, http: aiohttp.ClientSession, name: str | None = None) -> str:
    name = name or f"shop-{uuid.uuid4().hex[:8]}"
    scopes = "orders:write,orders:read,orders:members"
    done = agora_cli(stack.env, "partners", "create", name, "--scopes", scopes, "--json")
    assert done.returncode == 0, done.stderr
    partner = json.loads(done.stdout)
    form = {"grant_type": "client_credentials", **{k: partner[k] for k in ("client_id", "client_secret")}}
    async with http.post("/api/oauth/token", data=form) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["access_token"])
