"""The OAuth 2.0 token endpoint for partner systems: the client-credentials grant (RFC 6749 §4.4).

Unlike the rest of the API, this endpoint speaks OAuth: a form body, client
authentication by HTTP Basic (`client_secret_basic`) or in the form
(`client_secret_post`), and errors in the RFC 6749 §5.2 JSON shape that OAuth client
libraries parse, not problem documents. Server-side failures (503, 504) stay problems.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Literal
from urllib.parse import unquote_plus

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from contracts.base import Contract
from contracts.errors import ErrorReply
from contracts.partners import ISSUE_CLIENT_TOKEN, IssueClientToken, ScopeError, parse_scope
from edge import SETTINGS_KEY
from edge.bus import BUS_KEY
from edge.middleware import request_id
from edge.openapi import FORM_CONTENT_TYPE, Endpoint
from edge.problems import HttpProblem
from edge.ratelimit import RATE_LIMITER_KEY
from edge.routes.users import NO_STORE  # RFC 6749 §5.1: neither tokens nor errors may be cached

TOKEN_PATH = "/api/oauth/token"
BASIC_CHALLENGE = 'Basic realm="agora"'

OAuthErrorCode = Literal[
    "invalid_request", "invalid_client", "invalid_grant", "unsupported_grant_type", "invalid_scope"
]
# The contract's limits: a longer value cannot be a real credential or scope.
_MAX = {"client_id": 100, "client_secret": 200, "scope": 1000}
_PARAMETERS = ("grant_type", "scope", "client_id", "client_secret")
_BAD_CLIENT = "client authentication failed"


class TokenRequest(Contract):
    """The form fields of a token request (RFC 6749 §4.4.2). Unknown fields are ignored, as §3.2 requires."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    # Form fields are absent or strings, never null: SkipJsonSchema keeps null out of the document.
    grant_type: Literal["client_credentials"]
    scope: str | SkipJsonSchema[None] = Field(
        default=None,
        max_length=_MAX["scope"],
        description="Space-delimited scopes to grant; none asks for every scope the client has.",
    )
    client_id: str | SkipJsonSchema[None] = Field(
        default=None, max_length=_MAX["client_id"], description="With `client_secret`, instead of HTTP Basic."
    )
    client_secret: str | SkipJsonSchema[None] = Field(default=None, max_length=_MAX["client_secret"])


class OAuthError(BaseModel):
    """RFC 6749 §5.2 error response."""

    error: OAuthErrorCode
    error_description: str | None = None


class OAuthProblem(Exception):
    def __init__(self, error: OAuthErrorCode, description: str) -> None:
        super().__init__(description)
        self.error: OAuthErrorCode = error
        self.description = description

    @property
    def status(self) -> int:
        # §5.2: invalid_client is 401 with a challenge; every other error is 400.
        return 401 if self.error == "invalid_client" else 400

    def response(self) -> web.Response:
        headers = dict(NO_STORE)
        if self.status == 401:
            headers["WWW-Authenticate"] = BASIC_CHALLENGE
        body = OAuthError(error=self.error, error_description=self.description)
        return web.json_response(body.model_dump(), status=self.status, headers=headers)


def oauth_error_of(reply: ErrorReply) -> OAuthProblem | None:
    """The OAuth error for a refusal of the users service; None for failures that stay problems."""
    if reply.code == "unauthorized":
        return OAuthProblem("invalid_client", _BAD_CLIENT)
    if reply.code == "validation_failed":
        scope = [e.message for e in reply.errors if e.field == "scope"]
        return OAuthProblem("invalid_scope", scope[0]) if scope else OAuthProblem("invalid_request", reply.detail)
    return None


def token_command(form: Mapping[str, list[str]], authorization: str | None) -> IssueClientToken:
    """Check a token request (form fields and Authorization header); raise the OAuth error it deserves."""
    if repeated := [name for name in _PARAMETERS if len(form.get(name, ())) > 1]:
        raise OAuthProblem("invalid_request", f"{repeated[0]} is given more than once")
    # §3.2: a parameter without a value counts as omitted.
    fields = {name: values[0] for name in _PARAMETERS if (values := form.get(name)) and values[0]}
    grant_type = fields.get("grant_type")
    if grant_type is None:
        raise OAuthProblem("invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        raise OAuthProblem("unsupported_grant_type", "only the client_credentials grant is supported")
    client_id, client_secret = _client_credentials(fields, authorization)
    scope = fields.get("scope")
    try:
        if scope is not None and len(scope) > _MAX["scope"]:
            raise ScopeError("scope is too long")
        parse_scope(scope)
    except ScopeError as exc:
        raise OAuthProblem("invalid_scope", str(exc)) from None
    if len(client_id) > _MAX["client_id"] or len(client_secret) > _MAX["client_secret"]:
        raise OAuthProblem("invalid_client", _BAD_CLIENT)
    return IssueClientToken(client_id=client_id, client_secret=client_secret, scope=scope, public=True)


def _client_credentials(fields: Mapping[str, str], authorization: str | None) -> tuple[str, str]:
    scheme, _, encoded = (authorization or "").strip().partition(" ")
    in_form = "client_id" in fields or "client_secret" in fields
    if scheme.lower() == "basic":
        if in_form and "client_secret" in fields:
            # §2.3: a client must not use more than one authentication method per request.
            raise OAuthProblem("invalid_request", "use either HTTP Basic or client_secret in the form, not both")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthProblem("invalid_client", _BAD_CLIENT) from None
        user, colon, password = decoded.partition(":")
        if not colon:
            raise OAuthProblem("invalid_client", _BAD_CLIENT)
        # §2.3.1: both parts are form-urlencoded before they are joined.
        client_id, client_secret = unquote_plus(user), unquote_plus(password)
        if "client_id" in fields and fields["client_id"] != client_id:
            raise OAuthProblem("invalid_request", "client_id in the form differs from the one in HTTP Basic")
    else:
        client_id, client_secret = fields.get("client_id", ""), fields.get("client_secret", "")
    if not client_id or not client_secret:
        raise OAuthProblem("invalid_client", "client authentication is required (HTTP Basic or client_secret)")
    return client_id, client_secret


async def issue_token(request: web.Request) -> web.Response:
    try:
        if request.content_type != FORM_CONTENT_TYPE:
            raise OAuthProblem("invalid_request", f"the body must be {FORM_CONTENT_TYPE}")
        posted = await request.post()
        form = {name: [str(v) for v in posted.getall(name)] for name in set(posted.keys())}
        command = token_command(form, request.headers.get("Authorization"))
        await request.app[RATE_LIMITER_KEY].check(request, "token", account=command.client_id)
        reply = await request.app[BUS_KEY].call(
            ISSUE_CLIENT_TOKEN,
            command,
            correlation_id=request_id(request),
            authorization=None,
            timeout=request.app[SETTINGS_KEY].rpc_timeout_seconds,
        )
        if not reply.ok:
            error = reply.error or ErrorReply(code="internal", detail="the service failed without saying why")
            problem = oauth_error_of(error)
            if problem is None:
                raise HttpProblem.from_error(error)
            raise problem
    except OAuthProblem as problem:
        return problem.response()
    return web.json_response(reply.data, headers=NO_STORE)


ENDPOINTS = (
    Endpoint(
        "POST",
        TOKEN_PATH,
        issue_token,
        ISSUE_CLIENT_TOKEN,
        body=TokenRequest,
        form=True,
        basic_auth=True,
        errors=(400, 401),
        error_body=OAuthError,
        rate_limited=True,
        headers=("Cache-Control",),
        summary="Get an access token for a partner system (OAuth 2.0 client-credentials grant, RFC 6749 §4.4). "
        "Authenticate with HTTP Basic or `client_id`/`client_secret` in the form.",
    ),
)
