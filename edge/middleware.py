"""Per-request plumbing: the request id, the access log and metrics, JSON-only bodies.

The request id becomes the `correlation_id` of every command the request sends, so
one id ties the client's response to every log line of every service it touched.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl
from uuid import uuid4

from aiohttp import web
from aiohttp.typedefs import Handler

from contracts.errors import FieldError
from edge import REQUEST_ID_KEY
from edge.metrics import observe_request
from edge.problems import HttpProblem
from kernel.cards import contains_card_number
from kernel.logging import correlation_id_var

REQUEST_ID_HEADER = "X-Request-ID"
JSON_BODY_KEY = web.RequestKey("json_body", object)
# Names of the routes whose body is a form, not JSON (the OAuth token endpoint, which
# RFC 6749 fixes to application/x-www-form-urlencoded): their handlers read it.
FORM_ROUTES_KEY: web.AppKey[frozenset[str]] = web.AppKey("form_routes")

access_log = logging.getLogger("agora.access")

# A client-chosen id ends up in logs and headers: accept only short, inert tokens.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Probes hit these every few seconds; logging each would bury real traffic.
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"


def request_id(request: web.Request) -> str:
    return request.get(REQUEST_ID_KEY) or ""


def json_body(request: web.Request) -> Any:
    """The parsed JSON body (None when the request had none)."""
    return request.get(JSON_BODY_KEY)


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    rid = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else str(uuid4())
    request[REQUEST_ID_KEY] = rid
    token = correlation_id_var.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response: web.StreamResponse
        if REQUEST_ID_HEADER in request.headers and rid != incoming:
            # A request id the client sent must be one it can find in the logs again.
            response = HttpProblem(
                "validation_failed",
                "the X-Request-ID header must be 1 to 128 of A-Z, a-z, 0-9 and . _ : -",
                errors=(FieldError(field="X-Request-ID", message="not a valid request id"),),
            ).response(request)
        else:
            response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # redirects pass through the problem middleware
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away before the answer
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = route_template(request)
        observe_request(request.method, route, status, elapsed)
        access_log.log(
            logging.DEBUG if request.path in _QUIET_PATHS else logging.INFO,
            "%s %s %s",
            request.method,
            request.path,
            status,
            extra={
                "method": request.method,
                "path": request.path,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
        correlation_id_var.reset(token)


async def echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: runs for every response, errors and static files included."""
    rid = request.get(REQUEST_ID_KEY)
    if rid:
        response.headers[REQUEST_ID_HEADER] = rid
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


@web.middleware
async def json_body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Agora never receives card data, in a query string (a search, a cursor) no more
    # than in a body: refused before a command, a cache key or a dead letter holds it.
    if request.query_string and contains_card_number([*request.query.keys(), *request.query.values()]):
        raise _card_number("query")
    # An unknown route is a 404 whatever its body: leave it to the router.
    if request.method not in _BODY_METHODS or not request.body_exists or request.match_info.http_exception is not None:
        return await handler(request)
    form_route = request.match_info.route.name in request.app.get(FORM_ROUTES_KEY, frozenset())
    if form_route or not _is_json(request.content_type):
        # Agora never receives card data, whatever the body's type: a form holding a
        # card number is refused like a JSON body, before its handler reads it and
        # before the 415 other routes give a form. (aiohttp keeps the body read here
        # for a form handler's `post()`.)
        fields = _form_fields(request.content_type, request.headers.get("Content-Type", ""), await request.read())
        if contains_card_number(fields):
            raise _card_number()
        if form_route:
            return await handler(request)
        raise HttpProblem("unsupported_media_type", "request bodies must be application/json")
    raw = await request.read()  # over client_max_size: aiohttp raises 413
    try:
        request[JSON_BODY_KEY] = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise HttpProblem(
            "validation_failed",
            "the request body is not valid JSON",
            errors=(FieldError(field="body", message=_json_error(exc)),),
        ) from None
    # Agora never receives card data (clients send a PSP token): refused before any
    # handler, log line or command can hold it. The number itself is not echoed.
    if contains_card_number(request[JSON_BODY_KEY]):
        raise _card_number()
    return await handler(request)


def route_template(request: web.Request) -> str:
    """The route pattern, not the path: ids in paths would explode metric cardinality."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _card_number(where: str = "body") -> HttpProblem:
    return HttpProblem(
        "validation_failed",
        f"the request {'query string' if where == 'query' else where} contains what looks like a card number; "
        "pay with a payment token",
        errors=(FieldError(field=where, message="card numbers are not accepted"),),
    )


def _form_fields(content_type: str, header: str, raw: bytes) -> list[str]:
    """The names and values of a form body (urlencoded or multipart, file parts included);
    of any other body, its text, for the card-number check."""
    if content_type == _FORM:
        return [text for pair in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True) for text in pair]
    if content_type == _MULTIPART:
        head = f"Content-Type: {header}\r\n\r\n".encode("latin-1", "replace")
        message = BytesParser(policy=policy.HTTP).parsebytes(head + raw)
        fields: list[str] = []
        for part in message.walk():
            if part.is_multipart():
                continue
            payload = part.get_payload(decode=True)
            name = part.get_param("name", header="content-disposition")
            fields += [str(name or ""), part.get_filename() or ""]
            fields.append(payload.decode("utf-8", "replace") if isinstance(payload, bytes) else "")
        return fields
    return [raw.decode("utf-8", "replace")]


def _is_json(content_type: str) -> bool:
    # application/json, or a structured suffix such as application/merge-patch+json.
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_error(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return "body is not UTF-8"
    return f"Invalid JSON: {exc}"
