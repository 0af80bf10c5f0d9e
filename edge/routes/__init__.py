"""Every HTTP route of the API, one table per resource.

A new route is one `Endpoint` in its resource's table: the router and the OpenAPI
document are both built from `ENDPOINTS`.
"""

from __future__ import annotations

from aiohttp import web

from edge.middleware import FORM_ROUTES_KEY
from edge.openapi import Endpoint
from edge.routes import admin, auth, partners, users

ENDPOINTS: tuple[Endpoint, ...] = (*users.ENDPOINTS, *auth.ENDPOINTS, *admin.ENDPOINTS, *partners.ENDPOINTS)


def setup_routes(app: web.Application) -> None:
    for endpoint in ENDPOINTS:
        endpoint.add_to(app.router)
    app[FORM_ROUTES_KEY] = frozenset(e.operation_id for e in ENDPOINTS if e.form)
