"""From request to command and from reply to response: the steps every route shares."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from uuid import UUID

from aiohttp import web
from pydantic import ValidationError

from contracts.base import Contract
from contracts.errors import ErrorReply, FieldError, field_errors
from contracts.topology import CommandSpec
from edge import SETTINGS_KEY
from edge.auth import forwarded_authorization
from edge.bus import BUS_KEY
from edge.middleware import request_id
from edge.problems import HttpProblem
from kernel.tokens import Actor

C = TypeVar("C", bound=Contract)

_EXTRA_FIELD = "Extra inputs are not permitted"  # pydantic's own words for any other unknown field
_NOT_AN_OBJECT = (FieldError(field="body", message="a JSON object is required"),)
_SILENT_FAILURE = ErrorReply(code="internal", detail="the service failed without saying why")


def parse_query(model: type[C], request: web.Request) -> C:
    """Validate a request's query string against a command (errors name the parameters)."""
    return parse(model, dict(request.query), where="query string")


def parse(
    model: type[C], body: Any, *, server_fields: Mapping[str, Any] | None = None, where: str = "request body"
) -> C:
    """Validate a client's body against a command, listing every bad field at once.

    `server_fields` come from the path (the id of the object acted on): a body that
    tries to set one is refused like any unknown field, never silently overridden.
    """
    if not isinstance(body, dict):
        raise HttpProblem("validation_failed", "the request body must be a JSON object", errors=_NOT_AN_OBJECT)
    errors: list[FieldError] = []
    if server_fields:
        errors += [FieldError(field=name, message=_EXTRA_FIELD) for name in server_fields if name in body]
        body = {**body, **server_fields}
    try:
        command = model.model_validate(body)
    except ValidationError as exc:
        errors += field_errors(exc)
    if errors:
        raise HttpProblem("validation_failed", f"the {where} failed validation", errors=errors)
    return command


def path_uuid(request: web.Request, name: str) -> UUID:
    # An id that cannot exist names nothing: 404, like an id that does not exist.
    try:
        return UUID(request.match_info[name])
    except ValueError:
        raise HttpProblem("not_found", "no resource at this URL") from None


async def send(request: web.Request, spec: CommandSpec, payload: Contract, *, actor: Actor | None = None) -> Any:
    """Send the command and return its reply data; an error reply raises its problem."""
    reply = await request.app[BUS_KEY].call(
        spec,
        payload,
        correlation_id=request_id(request),
        authorization=forwarded_authorization(actor),
        timeout=request.app[SETTINGS_KEY].rpc_timeout_seconds,
    )
    if not reply.ok:
        raise HttpProblem.from_error(reply.error or _SILENT_FAILURE)
    return reply.data


async def call_service(
    request: web.Request,
    spec: CommandSpec,
    payload: Contract,
    *,
    actor: Actor | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    location: str | None = None,
) -> web.Response:
    """Send the command, wait for its reply and answer with it.

    `location` is a template filled from the reply data (`"/api/users/{user_id}"`).
    An error reply becomes a problem response with the status of its code.
    """
    data = await send(request, spec, payload, actor=actor)
    response_headers = dict(headers or {})
    if data is None:
        return web.Response(status=204, headers=response_headers)
    if location is not None:
        response_headers["Location"] = location.format(**data)
    return web.json_response(data, status=status, headers=response_headers)
