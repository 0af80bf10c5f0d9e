"""Every HTTP route of the API, one table per resource.

A new route is one `Endpoint` in its resource's table: the router and the OpenAPI
document are both built from `ENDPOINTS`. Browser redirects that are not commands
(third-party sign-in) are `Redirect`s in `REDIRECTS`, documented by hand.
"""

from __future__ import annotations

from aiohttp import web

from edge.middleware import FORM_ROUTES_KEY
from edge.openapi import Endpoint, Redirect, with_patch
from edge.routes import (
    admin,
    auth,
    cart,
    catalog,
    inventory,
    notifications,
    oauth,
    orders,
    partners,
    payments,
    reports,
    returns,
    shipping,
    taxes,
    users,
    vouchers,
)

ENDPOINTS: tuple[Endpoint, ...] = (
    *users.ENDPOINTS,
    *auth.ENDPOINTS,
    *admin.ENDPOINTS,
    *partners.ENDPOINTS,
    *catalog.ENDPOINTS,
    *inventory.ENDPOINTS,
    *cart.ENDPOINTS,
    *orders.ENDPOINTS,
    *payments.ENDPOINTS,
    *shipping.ENDPOINTS,
    *returns.ENDPOINTS,
    *taxes.ENDPOINTS,
    *vouchers.ENDPOINTS,
    *reports.ENDPOINTS,
    *notifications.ENDPOINTS,
)
# A partial PUT (`partial=True`) is served as PATCH too.
ENDPOINTS = with_patch(ENDPOINTS)
REDIRECTS: tuple[Redirect, ...] = oauth.REDIRECTS


def setup_routes(app: web.Application) -> None:
    for endpoint in ENDPOINTS:
        endpoint.add_to(app.router)
    for redirect in REDIRECTS:
        redirect.add_to(app.router)
    app[FORM_ROUTES_KEY] = frozenset(e.operation_id for e in ENDPOINTS if e.form)
