"""The browser pages: the storefront (`/`), the admin dashboard (`/admin`) and the seller
portal (`/seller`).

They are static HTML shells and ES modules with no data of their own: every figure on
them comes from the API, which authenticates and authorizes each call, so the pages
themselves are public and are not part of the API document or its authorization matrix.
Nothing is fetched from another origin, and the policy below forbids it.

The storefront routes inside its page by the URL's fragment (`/#/product/<id>`), except
an order's page: `/orders/{orderId}` is the address every order email links to, so it is
a real path that serves the same shell, which reads the order id from it.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
STATIC_PREFIX = "/static"
PAGES = ("admin", "seller")
SHOP = "shop"
# Only an id can follow `/orders/`: any other path stays the API's JSON 404.
_ORDER_ID = "{orderId:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}}"

PAGES_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": PAGES_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # A new deployment's pages and scripts are picked up at once; they are small.
    "Cache-Control": "no-cache",
}


def _page(name: str) -> Handler:
    index = STATIC_DIR / name / "index.html"

    async def page(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(index, headers=_HEADERS)

    page.__name__ = f"{name}_page"
    return page


async def _secure_static(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(STATIC_PREFIX + "/"):
        response.headers.update(_HEADERS)


def setup_pages(app: web.Application) -> None:
    for name in PAGES:
        handler = _page(name)
        app.router.add_get(f"/{name}", handler, name=f"{name}_page")
        app.router.add_get(f"/{name}/", handler, name=f"{name}_page_slash")
    shop = _page(SHOP)
    app.router.add_get("/", shop, name="shop_page")
    app.router.add_get(f"/orders/{_ORDER_ID}", shop, name="shop_order_page")
    app.router.add_static(STATIC_PREFIX, STATIC_DIR, name="static", append_version=False)
    app.on_response_prepare.append(_secure_static)
