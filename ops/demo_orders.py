"""Demo orders: a shop that looks alive on first start (issue 19).

Placed through the public HTTP API and the order saga like any client's: the demo members
sign in and order products of both demo sellers, in dollars and in euros, with the payment
sandbox's `tok_visa` (a few with `tok_chargeDeclined`, which leaves an order waiting to be
paid again); then the orders move along as a shop's people move them: an admin ships some
(with a carrier and tracking number) and marks some delivered, a customer cancels one
right after it was paid (refunded in full), an admin cancels a shipped one (refunded too).

Idempotent: the `index`-th order has the Idempotency-Key `agora-demo-order-<index>` and a
body drawn from that index alone, so a second run answers the same orders instead of
placing new ones, and only moves on those that have not reached their intended status.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any, Literal

import aiohttp

from ops.demo_catalog import DEMO_PRODUCTS, DEMO_SELLERS, demo_product, products_of

DEMO_ORDERS = 300
# Demo members who shop, with where their parcels go.
SHOPPERS: dict[str, dict[str, str]] = {
    "alice@example.com": {
        "recipient": "Alice Example",
        "line1": "1 Market St",
        "city": "San Francisco",
        "region": "CA",
        "postal_code": "94105",
        "country": "US",
    },
    "bob@example.com": {
        "recipient": "Bob Example",
        "line1": "Unter den Linden 77",
        "city": "Berlin",
        "postal_code": "10117",
        "country": "DE",
    },
}
CARRIERS = ("UPS", "DHL", "FedEx", "USPS")
_CONCURRENCY = 8
_WAIT_SECONDS = 90.0

# Where an order ends up. Declined: its payment failed (it may be paid again for a while).
# Cancelled: by its customer once paid; refunded: by an admin after shipping (both refund).
Fate = Literal["confirmed", "shipped", "delivered", "cancelled", "refunded", "declined"]
# Repeated over the indexes, so that even a dozen orders show every fate; overall about
# 40 % delivered, 24 % shipped, 16 % confirmed, 8 % each cancelled and refunded, 4 % declined.
_FATES: tuple[Fate, ...] = (
    "delivered", "shipped", "confirmed", "refunded", "delivered", "cancelled", "declined", "shipped", "delivered",
    "confirmed", "delivered", "shipped", "delivered", "refunded", "delivered", "shipped", "confirmed", "delivered",
    "cancelled", "shipped", "delivered", "confirmed", "delivered", "shipped", "delivered",
)  # fmt: skip


def fate(index: int) -> Fate:
    return _FATES[index % len(_FATES)]


def idempotency_key(index: int) -> str:
    return f"agora-demo-order-{index}"


def stocked_demo_products() -> dict[str, list[str]]:
    """Names of the demo products sold without options and listed with stock, by currency,
    in catalog order: the same lists every run, so an order's body is too."""
    found: dict[str, list[str]] = {}
    for index in range(DEMO_PRODUCTS):
        body = demo_product(index)
        if "variants" not in body and body["stock"] > 0:
            found.setdefault(body["currency"], []).append(body["name"])
    return found


def order_body(index: int, shopper: str, product_ids: dict[str, list[str]]) -> dict[str, Any]:
    """The `index`-th demo order's body: one to three products of one currency (mostly
    dollars), one or two of each, the shopper's address, the fate's card."""
    rng = random.Random(f"demo-order-{index}")
    currency = "EUR" if rng.random() < 0.2 and product_ids.get("EUR") else "USD"
    chosen = rng.sample(product_ids[currency], k=min(rng.choice((1, 1, 2, 3)), len(product_ids[currency])))
    return {
        "items": [{"product_id": p, "quantity": rng.choice((1, 1, 1, 2))} for p in chosen],
        "shipping_address": SHOPPERS[shopper],
        "payment_token": "tok_chargeDeclined" if fate(index) == "declined" else "tok_visa",
    }


class _Shop:
    """The seed's HTTP conversation: the shoppers' and the admin's tokens, renewed on a 401."""

    def __init__(self, http: aiohttp.ClientSession, admin_auth: dict[str, str], password: str) -> None:
        self.http = http
        self.admin = admin_auth
        self.password = password
        self._tokens: dict[str, dict[str, str]] = {}

    async def auth(self, email: str, *, renew: bool = False) -> dict[str, str]:
        if renew or email not in self._tokens:
            body = {"email": email, "password": self.password}
            async with self.http.post("/api/users/login", json=body) as resp:
                if resp.status != 200:
                    raise SeedError(f"cannot sign in as {email} ({resp.status})")
                self._tokens[email] = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}
        return self._tokens[email]

    async def call(
        self, method: str, path: str, who: str | None, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """`who`: a shopper's email, or None for the admin."""
        for attempt in range(2):
            auth = self.admin if who is None else await self.auth(who, renew=attempt > 0)
            async with self.http.request(method, path, json=body, headers={**auth, **(headers or {})}) as resp:
                answer = await resp.json(content_type=None)
                if resp.status != 401 or who is None:
                    return resp.status, answer
        return resp.status, answer


class SeedError(Exception):
    pass


async def seed_orders(http: aiohttp.ClientSession, admin_auth: dict[str, str], password: str, count: int) -> int:
    """Place `count` demo orders (those placed before are answered, not doubled) and move
    them along. Returns 0, or 1 after a failure (printed)."""
    started = time.monotonic()
    shop = _Shop(http, admin_auth, password)
    try:
        product_ids = await _demo_product_ids(shop)
    except SeedError as exc:
        print(f"seed: demo orders not placed: {exc}")
        return 1
    slots = asyncio.Semaphore(_CONCURRENCY)
    shoppers = list(SHOPPERS)

    async def one(index: int) -> str:
        async with slots:
            return await _order(shop, index, shoppers[index % len(shoppers)], product_ids)

    outcomes = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    tally = Counter(o for o in outcomes if isinstance(o, str))
    summary = ", ".join(f"{n} {what}" for what, n in sorted(tally.items(), key=lambda kv: -kv[1]))
    print(f"seed: {count} demo orders ({summary}) in {time.monotonic() - started:.0f} s")
    if failures:
        print(f"seed: {len(failures)} demo orders failed, e.g. {failures[0]}")
        return 1
    return 0


async def _demo_product_ids(shop: _Shop) -> dict[str, list[str]]:
    """The stocked demo products' ids by currency, in catalog order."""
    by_name: dict[str, str] = {}
    for email in DEMO_SELLERS:
        async with shop.http.post("/api/users/login", json={"email": email, "password": shop.password}) as resp:
            if resp.status != 200:
                raise SeedError(f"cannot sign in as {email} ({resp.status})")
            seller_id = (await resp.json())["user"]["user_id"]
        by_name |= {name: product["product_id"] for name, product in (await products_of(shop.http, seller_id)).items()}
    wanted = stocked_demo_products()
    ids = {currency: [by_name[n] for n in names if n in by_name] for currency, names in wanted.items()}
    if not ids.get("USD"):
        raise SeedError("the demo catalog is not there (run `agora seed` without --orders first)")
    return ids


async def _order(shop: _Shop, index: int, shopper: str, product_ids: dict[str, list[str]]) -> str:
    """Place (or find again) the `index`-th order, then move it towards its fate; its
    status (or "payment failed") as it ends."""
    body = order_body(index, shopper, product_ids)
    deadline = time.monotonic() + _WAIT_SECONDS
    while True:
        status, placed = await shop.call(
            "POST", "/api/orders", shopper, body, headers={"Idempotency-Key": idempotency_key(index)}
        )
        # Products just listed reach the orders service by their events: until then, 422 on items.
        unknown = status == 422 and any(e["field"].startswith("items") for e in placed.get("errors", ()))
        if not unknown or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    if status not in (200, 202):
        raise SeedError(f"order {index}: {status} {placed}")
    order_id = placed["order_id"]
    order = await _settled(shop, order_id, shopper)
    wanted = fate(index)
    if order["status"] == "confirmed" and wanted in ("shipped", "delivered", "refunded"):
        parcel = {
            "status": "shipped",
            "carrier": CARRIERS[index % len(CARRIERS)],
            "tracking_number": f"AG{index:06d}{order_id[:6].upper()}",
        }
        order = await _move(shop, order_id, None, parcel)
    if order["status"] == "shipped" and wanted == "delivered":
        order = await _move(shop, order_id, None, {"status": "delivered"})
    if order["status"] == "shipped" and wanted == "refunded":
        order = await _move(shop, order_id, None, {"status": "cancelled"})  # an admin's: refunded in full
    if order["status"] == "confirmed" and wanted == "cancelled":
        order = await _move(shop, order_id, shopper, {"status": "cancelled"})  # the customer's: refunded too
    if order["status"] == "pending" and order["payment_status"] == "failed":
        return "awaiting payment"
    return str(order["status"])


async def _settled(shop: _Shop, order_id: str, shopper: str) -> dict[str, Any]:
    """The order once the saga has decided: confirmed with its payment captured, cancelled,
    or waiting for a new payment (declined)."""
    deadline = time.monotonic() + _WAIT_SECONDS
    while True:
        status, order = await shop.call("GET", f"/api/orders/{order_id}", shopper)
        if status != 200:
            raise SeedError(f"order {order_id}: {status} {order}")
        settled = (order["status"] == "confirmed" and order["payment_status"] == "captured") or (
            order["status"] in ("shipped", "delivered", "cancelled")
            or (order["status"] == "pending" and order["payment_status"] == "failed")
        )
        if settled:
            return dict(order)
        if time.monotonic() > deadline:
            raise SeedError(f"order {order_id} still {order['status']}/{order['payment_status']}")
        await asyncio.sleep(0.25)


async def _move(shop: _Shop, order_id: str, who: str | None, body: dict[str, Any]) -> dict[str, Any]:
    status, order = await shop.call("PUT", f"/api/orders/{order_id}", who, body)
    if status != 200:
        raise SeedError(f"moving order {order_id} to {body['status']}: {status} {order}")
    return dict(order)
