"""The authorization matrix: every endpoint by every kind of caller, with the status each must get.

Every route of the API has a row here; `test_every_endpoint_has_a_row` fails when a
new endpoint arrives without one. The columns:

- guest: no credentials;
- owner: the member whose account (or token) the request is about;
- other: another member;
- seller: a seller who is not the owner;
- admin.

Objects a caller may not see are 404 (not 403): an id alone reveals nothing. A field
only admins may set is 403 for any other caller, before the object is looked up.

Each cell gets a fresh *target* from the row's `target` factory: by default a new
member, who is the "owner" and whose id fills `{userId}`. A row about another kind of
object (a seller's product) brings a factory that makes one and names its owner; the
placeholders of the path are filled from the target's `params`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from edge.routes import ENDPOINTS, REDIRECTS
from harness.accounts import bearer, create_admin, login, make_seller, new_user, register
from harness.stack import Stack
from tests.cart_support import cart_target
from tests.catalog_support import (
    category_target,
    new_tag,
    product_target,
    shipping_method_body,
    shipping_method_target,
    tax_rate_body,
    tax_rate_target,
    variant_target,
)
from tests.orders_support import finished_order_target, order_body, order_target, voucher_body, voucher_target
from tests.returns_support import delivered_order_target, return_body, return_target
from tests.support import stock_target
from workers.notifications.templates import DEFAULTS

CALLERS = ("guest", "owner", "other", "seller", "admin")
Body = Callable[[dict[str, Any]], dict[str, Any] | None]
# (http, admin session) -> the owner's session, with "params" for the path.
Target = Callable[[aiohttp.ClientSession, dict[str, Any]], Awaitable[dict[str, Any]]]


async def member_target(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """A new member: the owner of their own account. {channel}/{key} name a notification
    template, which no member owns."""
    user = await register(http)
    session = await login(http, user["email"], user["password"])
    params = {"userId": user["user_id"], "provider": "none", "channel": "email", "key": "welcome"}
    return {**user, **session, "params": params}


async def dead_letter_target(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """A member (who owns no queue) and {queue}: a dead-letter queue every stack has."""
    member = await member_target(http, admin)
    return {**member, "params": {**member["params"], "queue": "users.get_user_v1.dlq"}}


async def seller_target(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """A new seller: the owner of their own sales report."""
    seller = await make_seller(http, admin)
    return {**seller, "params": {"sellerId": seller["user"]["user_id"]}}


def _statuses(*codes: int) -> dict[str, int]:
    return dict(zip(CALLERS, codes, strict=True))


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    expect: dict[str, int]
    body: Body = field(default=lambda owner: None)
    case: str = ""
    form: bool = False  # the body as application/x-www-form-urlencoded (OAuth endpoints)
    # Makes the object the row acts on and its owner. {provider} is "none": the test
    # stack configures no identity provider.
    target: Target = member_target
    # The row ends every session of the caller's account (logout-all): it gets an account
    # of its own with the same role, so the shared callers' tokens stay valid.
    ends_sessions: bool = False
    # The query string (a GET's parameters).
    query: dict[str, str] = field(default_factory=dict)
    # The request carries a fresh Idempotency-Key (an endpoint that requires one).
    keyed: bool = False

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}" + (f" [{self.case}]" if self.case else "")


ALL = _statuses(*(200,) * 5)
SIGNED_IN = _statuses(401, 200, 200, 200, 200)
OWNER_OR_ADMIN = _statuses(401, 200, 404, 404, 200)
ADMIN_ONLY = _statuses(401, 403, 403, 403, 200)

MATRIX = (
    Row("POST", "/api/users/register", _statuses(*(201,) * 5), body=lambda owner: new_user()),
    Row(
        "POST",
        "/api/users/login",
        ALL,
        body=lambda owner: {"email": owner["email"], "password": owner["password"]},
    ),
    Row("GET", "/api/users/me", SIGNED_IN),
    Row("GET", "/api/users/{userId}", OWNER_OR_ADMIN),
    Row("PUT", "/api/users/{userId}", OWNER_OR_ADMIN, body=lambda owner: {"phone": "+14155550199"}, case="profile"),
    Row("PATCH", "/api/users/{userId}", OWNER_OR_ADMIN, body=lambda owner: {"phone": "+14155550198"}, case="profile"),
    Row(
        "PATCH",
        "/api/users/{userId}",
        _statuses(401, 403, 403, 403, 200),
        body=lambda o: {"role": "seller"},
        case="role",
    ),
    Row(
        "PUT", "/api/users/{userId}", _statuses(401, 403, 403, 403, 200), body=lambda o: {"role": "seller"}, case="role"
    ),
    Row(
        "PUT",
        "/api/users/{userId}",
        _statuses(401, 403, 403, 403, 200),
        body=lambda o: {"disabled": True},
        case="disable",
    ),
    Row(
        "POST",
        "/api/users/{userId}/password",
        _statuses(401, 204, 404, 404, 404),  # only for oneself: it needs the current password
        body=lambda owner: {"current_password": owner["password"], "new_password": "a fresh passphrase 2"},
    ),
    Row("DELETE", "/api/users/{userId}", _statuses(401, 204, 404, 404, 204)),
    Row("GET", "/api/users/{userId}/export", OWNER_OR_ADMIN),
    Row("GET", "/api/admin/users", _statuses(401, 403, 403, 403, 200)),
    # The dead-letter tools: admins only, 403 to everyone else (no object is hidden).
    Row("GET", "/api/admin/dead-letters", ADMIN_ONLY),
    Row("GET", "/api/admin/dead-letters/{queue}", ADMIN_ONLY, target=dead_letter_target),
    Row("POST", "/api/admin/dead-letters/{queue}/replay", ADMIN_ONLY, target=dead_letter_target),
    Row("POST", "/api/admin/dead-letters/{queue}/discard", ADMIN_ONLY, target=dead_letter_target),
    # Reports: a seller's sales are the seller's (others 404); the dashboard's views are admins'.
    Row("GET", "/api/sellers/{sellerId}/reports/sales", OWNER_OR_ADMIN, target=seller_target),
    Row("GET", "/api/orders", SIGNED_IN),
    Row("GET", "/api/sellers/{sellerId}/orders", OWNER_OR_ADMIN, target=seller_target),
    Row("GET", "/api/shipping-methods", ALL),
    Row("POST", "/api/shipping-methods", _statuses(401, 403, 403, 403, 201), body=lambda o: shipping_method_body()),
    Row(
        "PUT",
        "/api/shipping-methods/{methodId}",
        ADMIN_ONLY,
        body=lambda owner: {"max_days": 5},
        target=shipping_method_target,
    ),
    Row(
        "PATCH",
        "/api/shipping-methods/{methodId}",
        ADMIN_ONLY,
        body=lambda owner: {"max_days": 6},
        target=shipping_method_target,
    ),
    Row(
        "DELETE", "/api/shipping-methods/{methodId}", _statuses(401, 403, 403, 403, 204), target=shipping_method_target
    ),
    Row("GET", "/api/tax-rates", ALL),
    Row("POST", "/api/tax-rates", _statuses(401, 403, 403, 403, 201), body=lambda o: tax_rate_body()),
    Row("PUT", "/api/tax-rates/{rateId}", ADMIN_ONLY, body=lambda o: {"rate": "23"}, target=tax_rate_target),
    Row("PATCH", "/api/tax-rates/{rateId}", ADMIN_ONLY, body=lambda o: {"rate": "21"}, target=tax_rate_target),
    Row("DELETE", "/api/tax-rates/{rateId}", _statuses(401, 403, 403, 403, 204), target=tax_rate_target),
    Row("GET", "/api/tax-settings", ALL),
    Row("GET", "/api/vouchers", ADMIN_ONLY),
    Row("POST", "/api/vouchers", _statuses(401, 403, 403, 403, 201), body=lambda o: voucher_body()),
    Row("GET", "/api/vouchers/{voucherId}", ADMIN_ONLY, target=voucher_target),
    Row("PUT", "/api/vouchers/{voucherId}", ADMIN_ONLY, body=lambda o: {"usage_limit": 10}, target=voucher_target),
    Row("PATCH", "/api/vouchers/{voucherId}", ADMIN_ONLY, body=lambda o: {"usage_limit": 9}, target=voucher_target),
    # NOK is no order's currency in the suite: the setting changes nothing another test sees.
    Row(
        "PUT",
        "/api/tax-settings/{currency}",
        ADMIN_ONLY,
        body=lambda o: {"prices_include_tax": False},
        target=tax_rate_target,
    ),
    Row("GET", "/api/admin/orders", ADMIN_ONLY),
    Row("GET", "/api/admin/overview", ADMIN_ONLY),
    # Low stock: a seller's own list (members own no products: 403), everyone's for admins.
    Row("GET", "/api/inventory/low-stock", _statuses(401, 403, 403, 200, 200)),
    Row("GET", "/api/admin/inventory/low-stock", ADMIN_ONLY),
    # The refresh token is the credential here, whoever presents it.
    Row("POST", "/api/auth/refresh", ALL, body=lambda owner: {"refresh_token": owner["refresh_token"]}),
    Row(
        "POST", "/api/auth/logout", _statuses(*(204,) * 5), body=lambda owner: {"refresh_token": owner["refresh_token"]}
    ),
    Row("POST", "/api/auth/logout-all", _statuses(401, 204, 204, 204, 204), ends_sessions=True),
    Row("GET", "/api/auth/jwks.json", ALL),
    # Client credentials, not user tokens, get a partner token: a user's bearer token is no client authentication.
    Row(
        "POST",
        "/api/oauth/token",
        _statuses(*(401,) * 5),
        body=lambda owner: {"grant_type": "client_credentials"},
        form=True,
    ),
    # Third-party sign-in (tests/integration/test_oidc.py has the flows): an unknown
    # provider is 404 to everyone, a callback without its flow is refused to everyone.
    Row("GET", "/api/auth/oauth/{provider}/start", _statuses(*(404,) * 5)),
    Row("GET", "/api/auth/oauth/{provider}/callback", _statuses(*(404,) * 5)),
    # --- inventory: "owner" is the product's seller, "seller" another seller. Stock is
    # public, so a write by anyone else is 403 (nothing hidden to protect with a 404).
    Row("GET", "/api/inventory/{productId}", ALL, target=stock_target),
    Row(
        "PUT",
        "/api/inventory/{productId}",
        _statuses(401, 200, 403, 403, 200),
        body=lambda owner: {"delta": -1, "reason": "matrix"},
        target=stock_target,
    ),
    # --- catalog: for products "owner" is the product's seller and "seller" another
    # seller, to whom it does not exist (404); members may not sell at all (403).
    # Reads are public. Categories belong to nobody: only admins manage them.
    Row(
        "POST",
        "/api/products",
        _statuses(401, 201, 403, 201, 201),
        body=lambda owner: {"name": "Matrix lamp", "price": "1.00", "currency": "USD", "category": owner["category"]},
        target=product_target,
    ),
    Row("GET", "/api/products", ALL),
    Row("GET", "/api/products/suggest", ALL, query={"q": "matrix la"}),
    Row("GET", "/api/products/{productId}", ALL, target=product_target),
    Row(
        "PUT",
        "/api/products/{productId}",
        _statuses(401, 200, 403, 404, 200),
        body=lambda owner: {"price": "2.50"},
        target=product_target,
    ),
    Row(
        "PATCH",
        "/api/products/{productId}",
        _statuses(401, 200, 403, 404, 200),
        body=lambda owner: {"price": "2.75"},
        target=product_target,
    ),
    Row("DELETE", "/api/products/{productId}", _statuses(401, 204, 403, 404, 204), target=product_target),
    # A product's variants: as the product itself (its seller and admins; another seller 404).
    Row(
        "POST",
        "/api/products/{productId}/variants",
        _statuses(401, 201, 403, 404, 201),
        body=lambda owner: {"options": {"Size": "L"}, "price": "3.00"},
        target=variant_target,
    ),
    Row(
        "PUT",
        "/api/products/{productId}/variants/{variantId}",
        _statuses(401, 200, 403, 404, 200),
        body=lambda owner: {"price": "2.50"},
        target=variant_target,
    ),
    Row(
        "PATCH",
        "/api/products/{productId}/variants/{variantId}",
        _statuses(401, 200, 403, 404, 200),
        body=lambda owner: {"price": "2.75"},
        target=variant_target,
    ),
    Row(
        "DELETE",
        "/api/products/{productId}/variants/{variantId}",
        _statuses(401, 200, 403, 404, 200),
        target=variant_target,
    ),
    Row("GET", "/api/categories", ALL),
    Row(
        "POST",
        "/api/categories",
        _statuses(401, 403, 403, 403, 201),
        body=lambda owner: {"slug": f"matrix-{new_tag()}", "name": "Matrix"},
    ),
    Row(
        "PUT",
        "/api/categories/{slug}",
        _statuses(401, 403, 403, 403, 200),
        body=lambda owner: {"name": "Renamed"},
        target=category_target,
    ),
    Row(
        "PATCH",
        "/api/categories/{slug}",
        _statuses(401, 403, 403, 403, 200),
        body=lambda owner: {"name": "Renamed again"},
        target=category_target,
    ),
    Row("DELETE", "/api/categories/{slug}", _statuses(401, 403, 403, 403, 204), target=category_target),
    # --- cart: "owner" is a member with the product in their cart. Everyone has a cart
    # of their own (a guest's is made by the first add), so no one reaches another's:
    # the owner's line is 404 to every other caller.
    Row("GET", "/api/cart", ALL, target=cart_target),
    Row(
        "POST",
        "/api/cart/items",
        ALL,
        body=lambda owner: {"product_id": owner["params"]["productId"], "quantity": 1},
        target=cart_target,
    ),
    Row(
        "PUT",
        "/api/cart/items/{productId}",
        _statuses(404, 200, 404, 404, 404),
        body=lambda owner: {"quantity": 2},
        target=cart_target,
    ),
    Row("DELETE", "/api/cart/items/{productId}", _statuses(404, 200, 404, 404, 404), target=cart_target),
    # --- orders: "owner" is the member who placed the order; "seller" is a seller with
    # no line in it, to whom (as to other members) it does not exist. The event stream
    # is the owner's alone.
    Row(
        "POST",
        "/api/orders",
        _statuses(401, 202, 202, 202, 202),
        body=lambda owner: order_body(owner["product_id"]),
        target=order_target,
    ),
    Row("GET", "/api/orders/{orderId}", OWNER_OR_ADMIN, target=order_target),
    Row(
        "PUT",
        "/api/orders/{orderId}",
        OWNER_OR_ADMIN,
        body=lambda owner: {"status": "cancelled"},
        case="cancel",
        target=order_target,
    ),
    Row(
        "PUT",
        "/api/orders/{orderId}",
        _statuses(401, 403, 404, 404, 409),  # not confirmed yet (or cancelled): nothing to ship
        body=lambda owner: {"status": "shipped"},
        case="ship",
        target=finished_order_target,
    ),
    Row(
        "POST",
        "/api/orders/{orderId}/payment",
        _statuses(401, 409, 404, 404, 409),  # its payment has not failed (in progress, or paid): nothing to pay
        body=lambda owner: {"payment_token": "tok_mastercard"},
        target=order_target,
    ),
    Row("GET", "/api/orders/user/{userId}", OWNER_OR_ADMIN, target=order_target),
    Row("GET", "/api/orders/{orderId}/events", _statuses(401, 200, 404, 404, 404), target=finished_order_target),
    # --- returns and refunds: "owner" is the customer of a delivered order (and of its
    # return); "seller" has no line in it, so neither exists for them. The customer, or an
    # admin for them, asks for a return; the seller of its lines or an admin handles it; only
    # admins refund an order directly (403 to anyone else, before the order is looked up).
    Row(
        "POST",
        "/api/orders/{orderId}/returns",
        _statuses(401, 201, 404, 404, 201),
        body=return_body,
        target=delivered_order_target,
    ),
    Row("GET", "/api/orders/{orderId}/returns", OWNER_OR_ADMIN, target=return_target),
    Row("GET", "/api/returns", SIGNED_IN),
    Row("GET", "/api/returns/{returnId}", OWNER_OR_ADMIN, target=return_target),
    Row(
        "PUT",
        "/api/returns/{returnId}",
        _statuses(401, 403, 404, 404, 200),
        body=lambda owner: {"status": "approved"},
        target=return_target,
    ),
    Row(
        "POST",
        "/api/returns/{returnId}/refund",
        _statuses(401, 403, 404, 404, 409),  # requested, not received: nothing to refund yet
        body=lambda owner: {},
        target=return_target,
    ),
    Row(
        "POST",
        "/api/orders/{orderId}/refunds",
        _statuses(401, 403, 403, 403, 202),
        body=lambda owner: {"amount": "1.00", "reason": "Goodwill"},
        target=delivered_order_target,
        keyed=True,
    ),
    # --- payments: the provider's webhook needs no login, its signature is the
    # authentication: unsigned, it is refused (400) whoever sends it, signed in or not.
    Row(
        "POST",
        "/api/payments/webhook",
        _statuses(*(400,) * 5),
        body=lambda owner: {"id": "evt_matrix", "object": "event", "type": "payment_intent.succeeded"},
    ),
    # --- notifications: preferences are the user's own; templates belong to no member,
    # only admins manage them (403 to everyone else: nothing hidden to protect with a 404).
    Row("GET", "/api/users/{userId}/notification-preferences", OWNER_OR_ADMIN),
    Row("PUT", "/api/users/{userId}/notification-preferences", OWNER_OR_ADMIN, body=lambda owner: {"sms_orders": True}),
    Row("GET", "/api/admin/notification-templates", ADMIN_ONLY),
    Row("GET", "/api/admin/notification-templates/{channel}/{key}", ADMIN_ONLY),
    Row(
        "PUT",
        "/api/admin/notification-templates/{channel}/{key}",
        ADMIN_ONLY,
        body=lambda owner: DEFAULTS[("welcome", "email")].body.model_dump(),  # edits it to what it is
    ),
    Row("POST", "/api/admin/notification-templates/{channel}/{key}/preview", ADMIN_ONLY),
)


@pytest.fixture(scope="module")
async def callers(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """Everyone but the owner: the seller is a seller who does not own the target."""
    other = await register(http)
    return {
        "guest": None,
        "other": await login(http, other["email"], other["password"]),
        "seller": await make_seller(http, admin),
        "admin": admin,
    }


def test_every_endpoint_has_a_row() -> None:
    covered = {(row.method, row.path) for row in MATRIX}
    routes = [(e.method, e.path) for e in ENDPOINTS] + [(r.method, r.path) for r in REDIRECTS]
    missing = sorted(f"{method} {path}" for method, path in routes if (method, path) not in covered)
    assert not missing, f"add rows to the authorization matrix for: {missing}"


async def _throwaway(http: aiohttp.ClientSession, stack: Stack, admin: dict[str, Any], caller: str) -> dict[str, Any]:
    """A new account in the caller's role."""
    if caller == "seller":
        return await make_seller(http, admin)
    account = create_admin(stack.env) if caller == "admin" else await register(http)
    return await login(http, account["email"], account["password"])


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("row", MATRIX, ids=lambda row: row.name)
async def test_matrix(
    stack: Stack,
    http: aiohttp.ClientSession,
    admin: dict[str, Any],
    callers: dict[str, dict[str, Any] | None],
    row: Row,
    caller: str,
) -> None:
    # A fresh target per cell: some cells change or erase what they act on.
    owner = await row.target(http, admin)
    principal = owner if caller == "owner" else callers[caller]
    if row.ends_sessions and principal is not None and caller != "owner":
        principal = await _throwaway(http, stack, admin, caller)
    headers = bearer(principal["access_token"]) if principal else {}
    if row.keyed:
        headers = {**headers, "Idempotency-Key": str(uuid.uuid4())}
    body = row.body(owner)
    payload = {"data": body} if row.form else {"json": body}
    async with http.request(
        row.method,
        row.path.format(**owner["params"]),
        headers=headers,
        params=row.query,
        allow_redirects=False,
        **payload,
    ) as resp:
        text = await resp.text()
    assert resp.status == row.expect[caller], f"{row.name} as {caller}: {resp.status} {text[:300]}"
