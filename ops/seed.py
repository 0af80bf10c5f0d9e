"""Demo data, created through the public HTTP API like any client would.

Idempotent: an account that already exists (409) is left as it is. Roles are given
by signing in as the admin that `agora users create-admin --from-env` made. The demo
catalog (ops/demo_catalog.py) follows: categories, two sellers' products with stock;
then, if asked, demo orders placed and moved along (ops/demo_orders.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import aiohttp

from kernel.settings import Settings
from ops.demo_catalog import bulk_products, seed_catalog
from ops.demo_orders import seed_orders

# The local admin of `scripts/up` (`agora users create-admin --from-env`).
LOCAL_ADMIN_EMAIL = "admin@example.com"
LOCAL_ADMIN_PASSWORD = "agora-admin-2026"
DEMO_PASSWORD = os.environ.get("AGORA_DEMO_PASSWORD", "agora-demo-2026")
DEMO_USERS = (
    {
        "email": "alice@example.com",
        "username": "alice",
        "phone": "+14155550101",
        "address": {
            "line1": "1 Market St",
            "city": "San Francisco",
            "region": "CA",
            "postal_code": "94105",
            "country": "US",
        },
    },
    {"email": "bob@example.com", "username": "bob"},
    {"email": "carol@example.com", "username": "carol"},
    {"email": "erin@example.com", "username": "erin"},
)
# Accounts the admin gives another role, as an admin would through the API.
DEMO_ROLES = {"carol@example.com": "seller", "erin@example.com": "seller"}
# A discount code to try at the storefront's checkout: 10 % off, once per customer.
DEMO_VOUCHER = {"code": "WELCOME10", "percent": "10", "per_customer_limit": 1}
# What the demo shop charges for delivery and tax: the storefront's checkout offers the
# methods, and orders show the tax lines (euro prices include VAT, dollar prices add sales tax).
DEMO_SHIPPING = (
    {"name": "Standard", "countries": ["US"], "prices": {"USD": "4.90"}, "free_from": {"USD": "50.00"},
     "min_days": 3, "max_days": 5},
    {"name": "Express", "countries": ["US"], "prices": {"USD": "14.90"}, "min_days": 1, "max_days": 2},
    {"name": "DHL Paket", "countries": ["DE", "AT", "FR", "NL"], "prices": {"EUR": "4.90"},
     "free_from": {"EUR": "60.00"}, "min_days": 2, "max_days": 4},
)  # fmt: skip
DEMO_TAX_RATES = (
    {"country": "DE", "rate": "19", "name": "VAT"},
    {"country": "US", "region": "CA", "rate": "7.25", "name": "Sales tax"},
)


async def seed(settings: Settings, *, products: int | None = None, orders: int = 0) -> int:
    """Demo accounts and the demo catalog; `products`: top the catalog up to that many
    (benchmarks); `orders`: that many demo orders, placed and moved along (ops/demo_orders.py)."""
    base = f"http://{settings.host}:{settings.http_port}"
    async with aiohttp.ClientSession(base) as http:
        auth = await _admin_auth(http)
        for user in DEMO_USERS:
            # Asked of the admin API first: registering an account that exists still counts
            # against the per-address registration limit, and `scripts/up` runs this every time.
            if auth is not None and await _find_user(http, auth, str(user["email"])) is not None:
                print(f"seed: {user['email']} already there")
                continue
            async with http.post("/api/users/register", json={**user, "password": DEMO_PASSWORD}) as resp:
                if resp.status not in (201, 409):
                    print(f"seed: registering {user['email']} failed: {resp.status} {await resp.text()}")
                    return 1
                print(f"seed: {user['email']} {'created' if resp.status == 201 else 'already there'}")
        if auth is None or await _give_roles(http, auth) or await _demo_shop(http, auth):
            return 1
        seller_ids = await seed_catalog(http, auth, DEMO_PASSWORD)
        if seller_ids is None:
            return 1
        if orders and await seed_orders(http, auth, DEMO_PASSWORD, orders):
            return 1
    if products:
        return await bulk_products(settings, products, seller_ids)
    return 0


async def _find_user(http: aiohttp.ClientSession, auth: dict[str, str], email: str) -> dict[str, str] | None:
    async with http.get("/api/admin/users", params={"q": email}, headers=auth) as resp:
        found: list[dict[str, str]] = [u for u in (await resp.json())["items"] if u["email"] == email]
    return found[0] if found else None


async def _admin_auth(http: aiohttp.ClientSession) -> dict[str, str] | None:
    admin = {
        "email": os.environ.get("AGORA_ADMIN_EMAIL", LOCAL_ADMIN_EMAIL),
        "password": os.environ.get("AGORA_ADMIN_PASSWORD", LOCAL_ADMIN_PASSWORD),
    }
    async with http.post("/api/users/login", json=admin) as resp:
        if resp.status != 200:
            print(f"seed: cannot sign in as the admin ({resp.status}); roles not given")
            return None
        return {"Authorization": f"Bearer {(await resp.json())['access_token']}"}


async def _give_roles(http: aiohttp.ClientSession, auth: dict[str, str]) -> int:
    for email, role in DEMO_ROLES.items():
        found = await _find_user(http, auth, email)
        if found is None:
            print(f"seed: {email} not found")
            return 1
        if found["role"] != role:
            async with http.put(f"/api/users/{found['user_id']}", json={"role": role}, headers=auth) as resp:
                if resp.status != 200:
                    print(f"seed: making {email} a {role} failed: {resp.status} {await resp.text()}")
                    return 1
        print(f"seed: {email} is a {role}")
    return 0


async def _demo_shop(http: aiohttp.ClientSession, auth: dict[str, str]) -> int:
    """Shipping methods, tax and a discount code, as an admin sets them up; what is there stays."""
    async with http.get("/api/shipping-methods", headers=auth) as resp:
        existing = {m["name"] for m in (await resp.json())["items"]}
    async with http.put("/api/tax-settings/EUR", json={"prices_include_tax": True}, headers=auth) as resp:
        if resp.status != 200:
            print(f"seed: the EUR tax setting failed: {resp.status} {await resp.text()}")
            return 1
    made: list[tuple[str, Mapping[str, object]]] = [
        *(("/api/shipping-methods", m) for m in DEMO_SHIPPING if m["name"] not in existing),
        *(("/api/tax-rates", rate) for rate in DEMO_TAX_RATES),
        ("/api/vouchers", DEMO_VOUCHER),
    ]
    for path, body in made:
        async with http.post(path, json=body, headers=auth) as resp:
            if resp.status not in (201, 409):  # 409: made by an earlier run
                print(f"seed: {path} {body} failed: {resp.status} {await resp.text()}")
                return 1
    print(
        "seed: shipping methods (Standard, Express, DHL Paket), VAT in DE (in euro prices), sales tax in CA, "
        f"voucher {DEMO_VOUCHER['code']} (10 % off, once per customer)"
    )
    return 0
