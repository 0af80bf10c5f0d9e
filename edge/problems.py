"""Errors as RFC 9457 `application/problem+json`, and the middleware that guarantees it.

Every error leaves the edge in this one shape, whether a worker refused the command,
the edge refused the request, aiohttp refused the route, or a bug raised: clients
parse one format, and no stack trace ever leaves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, Field

from contracts.errors import ERROR_CODES, ErrorReply, FieldError
from edge import REQUEST_ID_KEY
from edge.bus import RpcTimeout, ServiceUnavailable
from kernel.revocations import RevocationsUnavailable

log = logging.getLogger("agora.edge")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://agora.dev/problems/"
WWW_AUTHENTICATE = 'Bearer realm="agora"'

# Failures only the edge can see, next to the ones workers report (ERROR_CODES).
EDGE_ERROR_CODES: dict[str, tuple[int, str]] = {
    "bad_request": (400, "Bad request"),
    "method_not_allowed": (405, "Method not allowed"),
    "payload_too_large": (413, "Payload too large"),
    "unsupported_media_type": (415, "Unsupported media type"),
    "too_many_requests": (429, "Too many requests"),
    "timeout": (504, "Gateway timeout"),
}
CODES: dict[str, tuple[int, str]] = {**ERROR_CODES, **EDGE_ERROR_CODES}
_CODE_OF_STATUS = {status: code for code, (status, _title) in CODES.items()}


class Problem(BaseModel):
    """An RFC 9457 problem: the body of every error response."""

    type: str = Field(description="URI naming the kind of problem; `code` is the same, short")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable error code")
    request_id: str | None = Field(default=None, description="Echo of the X-Request-ID response header")
    errors: list[FieldError] | None = Field(default=None, description="Per-field messages (validation errors only)")


class HttpProblem(Exception):
    """Raise anywhere in a request to answer with a problem response."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int | None = None,
        title: str | None = None,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        default_status, default_title = CODES.get(code, (500, "Internal error"))
        self.code = code
        self.detail = detail
        self.status = status or default_status
        self.title = title or default_title
        self.errors = tuple(errors)
        self.headers = dict(headers or {})

    @classmethod
    def from_error(cls, error: ErrorReply) -> HttpProblem:
        return cls(error.code, error.detail, status=error.status, title=error.title, errors=error.errors)

    def response(self, request: web.Request) -> web.Response:
        body = Problem(
            type=PROBLEM_TYPE_BASE + self.code,
            title=self.title,
            status=self.status,
            detail=self.detail,
            code=self.code,
            request_id=request.get(REQUEST_ID_KEY),
            errors=list(self.errors) if self.errors else None,
        )
        headers = dict(self.headers)
        if self.status == 401:
            # RFC 9110: a 401 must say how to authenticate.
            headers.setdefault("WWW-Authenticate", WWW_AUTHENTICATE)
        return web.Response(
            status=self.status,
            text=body.model_dump_json(exclude_none=True),
            content_type=PROBLEM_CONTENT_TYPE,
            headers=headers,
        )


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HttpProblem as problem:
        return problem.response(request)
    except RpcTimeout as exc:
        log.warning("rpc timed out", extra={"reason": str(exc)})
        return HttpProblem("timeout", "the service did not answer in time; the outcome is unknown").response(request)
    except (ServiceUnavailable, RevocationsUnavailable) as exc:
        log.warning("service unavailable", extra={"reason": str(exc)})
        unavailable = HttpProblem(
            "unavailable", "the service is unavailable; retry later", headers={"Retry-After": "1"}
        )
        return unavailable.response(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(request, exc).response(request)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error", extra={"method": request.method, "path": request.path})
        return HttpProblem("internal", "an internal error occurred").response(request)


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> HttpProblem:
    status = exc.status
    code = _CODE_OF_STATUS.get(status)
    if status == 404:
        detail = "no resource at this URL"
    elif status == 405:
        detail = f"{request.method} is not allowed on this resource"
    elif status == 413:
        detail = f"the request body is larger than {request.client_max_size} bytes"
    else:
        try:
            detail = HTTPStatus(status).description
        except ValueError:
            detail = exc.reason
    # Keep what the exception says about the resource (Allow on a 405), not its body.
    headers = {k: v for k, v in exc.headers.items() if k.lower() not in {"content-type", "content-length"}}
    if code is None:
        code = "bad_request" if status < 500 else "internal"
        return HttpProblem(code, detail, status=status, title=exc.reason, headers=headers)
    return HttpProblem(code, detail, headers=headers)
