"""The OpenAPI 3.1 document, generated from the route table and the contracts, and its docs page.

Each route is declared once, as an `Endpoint`: the router is built from the same
table as the document, and every schema comes from the pydantic contract the route
sends or receives, so the document cannot drift from what the edge does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, create_model
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from swagger_ui_bundle import swagger_ui_path

from contracts.asyncapi import asyncapi_document
from contracts.base import Contract
from contracts.topology import CommandSpec
from edge.problems import PROBLEM_CONTENT_TYPE, Problem

log = logging.getLogger("agora.edge")

OPENAPI_PATH = "/api/openapi.json"
# The message API (AsyncAPI 3.0), for partners that talk to the broker directly.
ASYNCAPI_PATH = "/api/asyncapi"
DOCS_PATH = "/api/docs"
DOCS_STATIC = "/api/docs/static"
API_TITLE = "Agora API"
API_VERSION = "1.0.0"

_REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)}")
# Request headers some routes read, documented once (`Endpoint.header_params` names them).
HEADER_PARAMETERS: dict[str, dict[str, Any]] = {
    "IdempotencyKey": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "A key the client chooses per order (1 to 200 printable characters, a UUID is good): the "
        "same key with the same body answers the same order instead of placing another; with another body it is "
        "422. Without it every request places a new order.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    },
    "RefundIdempotencyKey": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": True,
        "description": "A key the client chooses per refund (1 to 200 printable characters, a UUID is good): the "
        "same key answers the same refund instead of making another. Required: a retried request without one "
        "would refund twice.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    },
    "StripeSignature": {
        "name": "Stripe-Signature",
        "in": "header",
        "required": True,
        "description": 'The provider\'s signature of the body: `t=<Unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" '
        "with the endpoint's signing secret>`, as Stripe signs webhooks. A body that does not verify (or is older "
        "than five minutes) is refused with 400.",
        "schema": {"type": "string", "minLength": 1},
    },
    "CartId": {
        "name": "X-Cart-Id",
        "in": "header",
        "required": False,
        "description": "A guest's cart, for clients without cookies: the `cart_id` of the first answer that "
        "made it (a browser gets the `agora_cart` cookie instead); a value that is not a cart id Agora issued is "
        "ignored, as if none were sent. A signed-in caller's cart is their own; a guest cart they still carry is "
        "merged into it first.",
        "schema": {"type": "string"},
    },
}
_ID_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*Id)}")
# Every call may fail these ways, whatever the route.
# 422: a malformed header (X-Request-ID) or query string, on any operation.
_ALWAYS = (422, 500, 503, 504)
_WITH_BODY = (413, 415, 422)
# A form body is checked by its handler, which answers in its own error format.
_WITH_FORM = (413,)
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_ERROR_DESCRIPTIONS = {
    401: "Missing, invalid or expired credentials.",
    403: "Authenticated, but not allowed to do this.",
    404: "No such resource, or not one the caller may see.",
    405: "Method not allowed on this resource.",
    409: "Conflicts with existing state; the problem says which fields.",
    413: "Request body larger than the limit.",
    415: "Request body is not `application/json`.",
    429: "Too many attempts from this address or for this account; wait `Retry-After` seconds.",
    422: "Request failed validation; `errors` lists every bad field.",
    500: "Internal error. No detail is disclosed; quote the request id.",
    503: "The service is unavailable; retry later.",
    504: "The service did not answer in time; the outcome is unknown.",
}
_ERROR_HEADERS = {401: ("WWW-Authenticate",), 405: ("Allow",), 429: ("Retry-After",), 503: ("Retry-After",)}
_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request id: the client's `X-Request-ID` if it was a sane token, else a new UUID. "
        "Every log line of every service the request touched carries it.",
        "schema": {"type": "string"},
    },
    "Location": {"description": "URL of the created resource.", "schema": {"type": "string"}},
    "Cache-Control": {"description": "`no-store`: the body carries credentials.", "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": "The authentication scheme to use (`Bearer`).", "schema": {"type": "string"}},
    "Allow": {"description": "Methods this resource allows.", "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}},
    "Set-Cookie": {
        "description": "Browser session cookies: `__Host-agora_access` and `__Secure-agora_refresh` (HttpOnly, "
        "Secure, SameSite=Lax, host-only) and `__Host-agora_csrf`, which pages echo in `X-CSRF-Token`.",
        "schema": {"type": "string"},
    },
}
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EVENT_STREAM = "text/event-stream"


@dataclass(frozen=True)
class Endpoint:
    """One HTTP route: what it is bound to, and what the document says about it."""

    method: str
    path: str
    handler: Handler
    # The command the route sends; None for a route the edge answers itself from the
    # broker's own interfaces (the dead-letter tools), documented under `tag`.
    spec: CommandSpec | None
    status: int = 200
    body: type[Contract] | None = None
    # Fields of `body` the server fills in from the path: hidden from the documented body.
    body_omits: tuple[str, ...] = ()
    # The request body may be left out (the command then has a default for it).
    body_optional: bool = False
    # A GET's query string, validated against this contract.
    query: type[Contract] | None = None
    # Path parameters that are not UUIDs, described by this contract's fields of the same names.
    path_params: type[Contract] | None = None
    # The response body when the route answers with something other than the command's reply.
    response: type[Contract] | None = None
    auth: bool = False
    errors: tuple[int, ...] = ()
    headers: tuple[str, ...] = ()
    summary: str = ""
    # The body is a form (`application/x-www-form-urlencoded`), as RFC 6749 fixes for
    # the token endpoint; the JSON middleware leaves it to the handler.
    form: bool = False
    # The statuses in `errors` answer with this JSON model rather than a problem (the
    # RFC 6749 §5.2 error response); the others (413, 5xx) stay problems.
    error_body: type[BaseModel] | None = None
    # The caller may authenticate with HTTP Basic (OAuth `client_secret_basic`).
    basic_auth: bool = False
    # Counted by edge/ratelimit.py: may answer 429 with Retry-After.
    rate_limited: bool = False
    # The route answers with Server-Sent Events (`text/event-stream`), not with the
    # command's reply (the command is how it reads); this describes the stream.
    event_stream: str = ""
    event_example: str = ""
    # Another representation of the reply (a CSV download): its media type and what it holds.
    also_as: tuple[str, str] | None = None
    tag: str = ""
    # Request headers the route reads, by their name in `HEADER_PARAMETERS`.
    header_params: tuple[str, ...] = ()
    # A PUT that changes only the fields sent: served as PATCH too, by the same handler
    # (`with_patch`), for clients that expect the method to say so.
    partial: bool = False
    # The operation id, where the handler's name is taken (by the PUT of a PATCH twin).
    name: str = ""

    def add_to(self, router: web.UrlDispatcher) -> None:
        # Ids are UUIDs: `PUT /api/users/login` must not reach `PUT /api/users/{userId}` (a
        # 404), but find that `/api/users/login` has no PUT (a 405 that names what it has).
        path = _ID_PARAM.sub(r"{\1:[0-9a-fA-F-]+}", self.path)
        router.add_route(self.method, path, self.handler, name=self.operation_id)

    @property
    def reply(self) -> type[Contract] | None:
        if self.event_stream:
            return None
        return self.response or (self.spec.reply if self.spec is not None else None)

    @property
    def tag_name(self) -> str:
        return self.spec.service if self.spec is not None else self.tag or "operations"

    @property
    def operation_id(self) -> str:
        return self.name or self.handler.__name__

    def patch_twin(self) -> Endpoint:
        """The same route as PATCH: `update_product` → `patch_product`."""
        verb, _, noun = self.handler.__name__.partition("_")
        name = f"patch_{noun if verb in ('update', 'set') and noun else self.handler.__name__}"
        summary = f"{self.summary} The same as PUT here: both change only the fields sent."
        return replace(self, method="PATCH", name=name, partial=False, summary=summary.strip())

    def error_statuses(self) -> list[int]:
        statuses = set(self.errors) | set(_ALWAYS)
        if self.body is not None:
            statuses |= set(_WITH_FORM if self.form else _WITH_BODY)
        if self.rate_limited:
            statuses.add(429)
        if self.auth:
            statuses.add(401)
            if self.method in _UNSAFE:
                statuses.add(403)  # a cookie-authenticated call without a valid CSRF token
        return sorted(statuses)

    def problem_statuses(self) -> list[int]:
        """The error statuses answered with a problem document."""
        return [s for s in self.error_statuses() if self.error_body is None or s not in self.errors]


def with_patch(endpoints: Sequence[Endpoint]) -> tuple[Endpoint, ...]:
    """The endpoints, each partial PUT followed by its PATCH twin."""
    return tuple(twin for e in endpoints for twin in ((e, e.patch_twin()) if e.partial else (e,)))


def build_document(endpoints: Sequence[Endpoint], redirects: Sequence[Redirect] = ()) -> dict[str, Any]:
    bodies = {e.operation_id: _documented_body(e) for e in endpoints if e.body is not None}
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, "validation") for m in bodies.values()]
    wanted += [(e.reply, "serialization") for e in endpoints if e.reply is not None]
    wanted += [(e.error_body, "serialization") for e in endpoints if e.error_body is not None]
    wanted.append((Problem, "serialization"))
    refs, schema = models_json_schema(list(dict.fromkeys(wanted)), ref_template=_REF)
    for model in schema.get("$defs", {}).values():
        _drop_null_defaults(model)

    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        body = bodies.get(endpoint.operation_id)
        body_ref = refs[(body, "validation")] if body is not None else None
        reply_ref = refs[(endpoint.reply, "serialization")] if endpoint.reply is not None else None
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, body_ref, reply_ref)
        if endpoint.form or endpoint.error_body is not None or endpoint.basic_auth:
            error_ref = refs[(endpoint.error_body, "serialization")] if endpoint.error_body is not None else None
            _describe_oauth_style(paths[endpoint.path][endpoint.method.lower()], endpoint, error_ref)
    for redirect in redirects:
        paths.setdefault(redirect.path, {})[redirect.method.lower()] = redirect.operation()

    used_errors = sorted({status for e in endpoints for status in e.problem_statuses()})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": API_TITLE,
            "version": API_VERSION,
            "description": "Agora's HTTP API. Errors are RFC 9457 `application/problem+json`; "
            "every response carries `X-Request-ID`.",
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": name} for name in sorted({e.tag_name for e in endpoints})],
        "paths": paths,
        "components": {
            "schemas": schema.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "clientBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "OAuth client authentication (`client_secret_basic`): the client id and "
                    "secret, each form-urlencoded, as the Basic user name and password.",
                },
                "cookieAuth": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "__Host-agora_access",
                    "description": "The browser session cookie set at login.",
                },
                "csrfToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRF-Token",
                    "description": "With cookie authentication, unsafe methods must echo the `__Host-agora_csrf` "
                    "cookie here.",
                },
            },
            "parameters": {
                "RequestId": {
                    "name": "X-Request-ID",
                    "in": "header",
                    "required": False,
                    "description": "Optional client-chosen request id (up to 128 of `A-Z a-z 0-9 . _ : -`).",
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
                },
                **HEADER_PARAMETERS,
            },
            "headers": _HEADERS,
            "responses": {_response_name(status): _error_response(status) for status in used_errors},
        },
    }


def _operation(endpoint: Endpoint, body_ref: dict[str, Any] | None, reply_ref: dict[str, Any] | None) -> dict[str, Any]:
    spec = endpoint.spec
    success: dict[str, Any] = {
        "description": HTTPStatus(endpoint.status).phrase,
        "headers": {name: {"$ref": f"#/components/headers/{name}"} for name in ("X-Request-ID", *endpoint.headers)},
    }
    if reply_ref is not None:
        success["content"] = {"application/json": {"schema": reply_ref}}
    if endpoint.also_as is not None:
        media_type, description = endpoint.also_as
        success.setdefault("content", {})[media_type] = {"schema": {"type": "string", "description": description}}
    if endpoint.event_stream:
        stream: dict[str, Any] = {"schema": {"type": "string", "description": endpoint.event_stream}}
        if endpoint.event_example:
            stream["example"] = endpoint.event_example
        success["content"] = {EVENT_STREAM: stream}
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary or (spec.summary if spec is not None else ""),
        "description": f"Sends the `{spec.routing_key}` {spec.kind} to the {spec.service} service."
        if spec is not None
        else "Answered by the edge itself, from RabbitMQ's management API and AMQP (no service command).",
        "tags": [endpoint.tag_name],
        "parameters": [
            *_path_parameters(endpoint),
            *_query_parameters(endpoint.query),
            *({"$ref": f"#/components/parameters/{name}"} for name in endpoint.header_params),
            {"$ref": "#/components/parameters/RequestId"},
        ],
        "responses": {
            str(endpoint.status): success,
            **{str(s): {"$ref": f"#/components/responses/{_response_name(s)}"} for s in endpoint.error_statuses()},
        },
    }
    if body_ref is not None:
        operation["requestBody"] = {
            "required": not endpoint.body_optional,
            "content": {"application/json": {"schema": body_ref}},
        }
    if endpoint.auth:
        cookie: dict[str, list[str]] = {"cookieAuth": []}
        if endpoint.method in _UNSAFE:
            cookie["csrfToken"] = []
        operation["security"] = [{"bearerAuth": []}, cookie]
    return operation


def _path_parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    described = _parameters(endpoint.path_params, "path") if endpoint.path_params is not None else {}
    uuid = {"type": "string", "format": "uuid"}
    return [
        described.get(name)
        or {"name": name, "in": "path", "required": True, "description": _id_of(name), "schema": uuid}
        for name in _PATH_PARAM.findall(endpoint.path)
    ]


def _id_of(name: str) -> str:
    """`shippingMethodId` → "The shipping method's id"."""
    words = re.sub(r"(?<!^)([A-Z])", r" \1", name.removesuffix("Id")).lower()
    return f"The {words}'s id"


def _query_parameters(model: type[Contract] | None) -> list[dict[str, Any]]:
    return list(_parameters(model, "query").values()) if model is not None else []


# What a parameter means when its field says nothing: the same everywhere it appears.
_COMMON_PARAMETERS = {
    "limit": "At most this many items in the page",
    "cursor": "The previous page's `next_cursor`, for the page after it (the other parameters unchanged)",
    "status": "Only orders with this status",
    "sort": "The order of the items: `relevance` (with `q`, else as `newest`), `newest`, `price_asc`, `price_desc`",
    "seller_id": "Only this seller's",
    "country": "An ISO 3166-1 alpha-2 country code: only what applies there",
    "currency": "An ISO 4217 currency code: only what applies to orders in it",
    "role": "Only accounts with this role",
    "disabled": "Only disabled (`true`) or enabled (`false`) accounts",
    "granularity": "One row per `day`, `week` (from Monday) or `month`",
    "days": "How many days, up to today",
    "channel": "`email` or `sms`",
}


def _parameters(model: type[Contract], where: str) -> dict[str, dict[str, Any]]:
    schema = model.model_json_schema()
    properties, required = schema["properties"], set(schema.get("required", ()))
    return {
        name: {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "description": info.pop("description", "") or _COMMON_PARAMETERS.get(name, ""),
            "schema": {k: v for k, v in info.items() if k != "title"},
        }
        for name, info in properties.items()
    }


def _describe_oauth_style(operation: dict[str, Any], endpoint: Endpoint, error_ref: dict[str, Any] | None) -> None:
    """A form body, errors in the endpoint's own JSON model, HTTP Basic client authentication."""
    if endpoint.form and "requestBody" in operation:
        operation["requestBody"]["content"] = {FORM_CONTENT_TYPE: operation["requestBody"]["content"].popitem()[1]}
    responses = operation["responses"]
    for status in endpoint.errors if error_ref is not None else ():
        headers = ("X-Request-ID", *_ERROR_HEADERS.get(status, ()), "Cache-Control")
        responses[str(status)] = {
            "description": f"{HTTPStatus(status).phrase}: an OAuth 2.0 error response (RFC 6749 §5.2).",
            "headers": {name: {"$ref": f"#/components/headers/{name}"} for name in headers},
            "content": {"application/json": {"schema": error_ref}},
        }
    operation["responses"] = dict(sorted(responses.items()))
    if endpoint.basic_auth:
        # Basic, or the credentials in the form (`client_secret_post`): no scheme at all.
        operation["security"] = [{"clientBasic": []}, {}]


def _drop_null_defaults(model: dict[str, Any]) -> None:
    """`"default": null` on a property that may not be null: it only means "may be left
    out", and a client (or schemathesis) would read it as a value to send."""
    for prop in model.get("properties", {}).values():
        nullable = prop.get("type") == "null" or any(b.get("type") == "null" for b in prop.get("anyOf", ()))
        if "default" in prop and prop["default"] is None and not nullable:
            del prop["default"]


def _documented_body(endpoint: Endpoint) -> type[BaseModel]:
    model = endpoint.body
    assert model is not None
    if not endpoint.body_omits:
        return model
    fields: dict[str, Any] = {
        name: (info.annotation, info) for name, info in model.model_fields.items() if name not in endpoint.body_omits
    }
    documented = create_model(f"{model.__name__}Body", __base__=Contract, __doc__=model.__doc__, **fields)
    # Rules across fields (which combinations are allowed) belong to the body too.
    if (extra := model.model_config.get("json_schema_extra")) is not None:
        documented.model_config["json_schema_extra"] = extra
        documented.model_rebuild(force=True)
    return documented


def _response_name(status: int) -> str:
    return "".join(word.capitalize() for word in re.split(r"[^A-Za-z]+", HTTPStatus(status).phrase) if word)


def _error_response(status: int) -> dict[str, Any]:
    headers = ("X-Request-ID", *_ERROR_HEADERS.get(status, ()))
    return {
        "description": _ERROR_DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
        "headers": {name: {"$ref": f"#/components/headers/{name}"} for name in headers},
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": _REF.format(model="Problem")}}},
    }


@dataclass(frozen=True)
class Redirect:
    """A route a browser navigates to: it answers with a redirect, not JSON.

    It may send no command at all (starting a third-party sign-in), so it is not an
    `Endpoint`; its parameters and outcomes are written down here by hand.
    """

    method: str
    path: str
    handler: Handler
    status: int
    summary: str
    description: str
    tag: str
    # OpenAPI parameter objects (path and query).
    parameters: tuple[dict[str, Any], ...] = ()
    errors: tuple[int, ...] = ()
    # What the Set-Cookie headers of the redirect carry, if any.
    cookies: str = ""

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_route(self.method, self.path, self.handler, name=self.operation_id)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    def operation(self) -> dict[str, Any]:
        headers: dict[str, Any] = {
            "X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"},
            "Location": {"description": "Where the browser goes next.", "schema": {"type": "string"}},
            "Cache-Control": {"$ref": "#/components/headers/Cache-Control"},
        }
        if self.cookies:
            headers["Set-Cookie"] = {"description": self.cookies, "schema": {"type": "string"}}
        return {
            "operationId": self.operation_id,
            "summary": self.summary,
            "description": self.description,
            "tags": [self.tag],
            "parameters": [*self.parameters, {"$ref": "#/components/parameters/RequestId"}],
            "responses": {
                str(self.status): {"description": HTTPStatus(self.status).phrase, "headers": headers},
                **{str(s): _error_response(s) for s in sorted(set(self.errors) | set(_ALWAYS))},
            },
        }


# --- the human-readable page: Swagger UI, served from the installed package (no CDN) ----

_DOCS_HTML = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{API_TITLE}</title>
  <link rel="stylesheet" href="{DOCS_STATIC}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{DOCS_STATIC}/favicon-32x32.png" sizes="32x32">
  <style>body {{ margin: 0; background: #fafafa; }}</style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{DOCS_STATIC}/swagger-ui-bundle.js"></script>
  <script src="{DOCS_PATH}/init.js"></script>
</body>
</html>
"""
# Its own file, not inline, so the page can forbid inline scripts.
_DOCS_INIT_JS = f"""window.addEventListener("load", function () {{
  window.ui = SwaggerUIBundle({{
    url: "{OPENAPI_PATH}",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    validatorUrl: null
  }});
}});
"""
_SWAGGER_UI_VERSION = re.search(r"swagger-ui-(\d+)", str(swagger_ui_path))
_SWAGGER_UI_MAJOR = int(_SWAGGER_UI_VERSION.group(1)) if _SWAGGER_UI_VERSION else 5
_DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


def setup_docs(app: web.Application, endpoints: Sequence[Endpoint], redirects: Sequence[Redirect] = ()) -> None:
    document = build_document(endpoints, redirects)
    if _SWAGGER_UI_MAJOR < 5:
        # Swagger UI learned OpenAPI 3.1 in 5.0; older bundles show "Unable to render".
        log.warning("Swagger UI in %s cannot render OpenAPI 3.1; install swagger-ui-bundle-v2", swagger_ui_path)

    async def openapi_json(request: web.Request) -> web.Response:
        return web.json_response(document)

    async def docs_page(request: web.Request) -> web.Response:
        return web.Response(text=_DOCS_HTML, content_type="text/html", headers={"Content-Security-Policy": _DOCS_CSP})

    async def docs_init(request: web.Request) -> web.Response:
        return web.Response(text=_DOCS_INIT_JS, content_type="text/javascript")

    app.router.add_get(OPENAPI_PATH, openapi_json, name="openapi")
    messages = asyncapi_document()

    async def asyncapi_json(request: web.Request) -> web.Response:
        return web.json_response(messages)

    app.router.add_get(ASYNCAPI_PATH, asyncapi_json, name="asyncapi")
    app.router.add_get(DOCS_PATH, docs_page, name="docs")
    app.router.add_get(f"{DOCS_PATH}/init.js", docs_init, name="docs_init")
    app.router.add_static(DOCS_STATIC, swagger_ui_path, name="docs_static")
