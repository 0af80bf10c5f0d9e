"""Bearer tokens at the edge: who is asking, proven against the users service's keys.

The edge checks the token only to refuse anonymous or forged requests early; it
forwards the raw token with the command, and the worker verifies it again and
enforces ownership itself, because the broker is not trusted (architecture §6).
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import uuid4

from aiohttp import web

from contracts.base import Contract
from contracts.topology import CommandSpec
from contracts.users import GET_JWKS, GET_REVOCATIONS, GetJwks, GetRevocations, Revocations, TokensRevoked
from edge.bus import RpcClient, ServiceUnavailable
from edge.problems import WWW_AUTHENTICATE, HttpProblem
from edge.sessions import ACCESS_COOKIE, CSRF_COOKIE, CSRF_KEY, check_csrf
from kernel.logging import correlation_id_var
from kernel.revocations import RevocationFeed
from kernel.tokens import Actor, InvalidToken, TokenVerifier

log = logging.getLogger("agora.edge.auth")


class JwksSource:
    """The users service's public key set (and the token revocations in force), fetched over the bus.

    It remembers whether the users service ever answered, which is what readiness
    means for an edge that cannot verify a token without those keys.
    """

    def __init__(self, bus: RpcClient, *, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout
        self.answered = False

    async def fetch(self) -> dict[str, Any]:
        data = await self._ask(GET_JWKS, GetJwks(), "its keys")
        self.answered = True
        return data

    async def revocations(self) -> list[TokensRevoked]:
        return list(
            Revocations.model_validate(await self._ask(GET_REVOCATIONS, GetRevocations(), "the revocations")).items
        )

    async def _ask(self, spec: CommandSpec, query: Contract, what: str) -> dict[str, Any]:
        reply = await self._bus.call(
            spec,
            query,
            correlation_id=correlation_id_var.get() or str(uuid4()),
            authorization=None,
            timeout=self._timeout,
        )
        if not reply.ok or reply.data is None:
            raise ServiceUnavailable(f"users service refused to give {what}: {reply.error}")
        return reply.data


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def require_actor(request: web.Request) -> Actor:
    """The verified caller; `Actor.token` keeps the raw token for `forwarded_authorization`.

    A bearer token wins over the session cookie. A cookie-authenticated unsafe
    request must also pass the CSRF check (edge/sessions.py).
    """
    token = bearer_token(request)
    via_cookie = token is None
    if token is None:
        token = request.cookies.get(ACCESS_COOKIE) or None
    if token is None:
        raise HttpProblem("unauthorized", "a bearer token or a session cookie is required")
    try:
        actor = await request.app[VERIFIER_KEY].verify(token)
    except InvalidToken as exc:
        log.info("security: rejected bearer token", extra={"reason": str(exc)})
        raise HttpProblem(
            "unauthorized",
            "the bearer token is invalid or expired",
            headers={"WWW-Authenticate": f'{WWW_AUTHENTICATE}, error="invalid_token"'},
        ) from None
    if via_cookie:
        check_csrf(request, request.app[CSRF_KEY], actor.user_id)
    return actor


async def optional_actor(request: web.Request) -> Actor | None:
    """The verified caller, or None for a guest (public reads that show owners more).

    A credential that is sent must be valid: a bad or expired token is a 401, not a
    silent downgrade to guest, so a client learns to refresh it.
    """
    if bearer_token(request) is None and not request.cookies.get(ACCESS_COOKIE):
        return None
    return await require_actor(request)


async def member_or_guest(request: web.Request) -> Actor | None:
    """`optional_actor` for answers that differ by who asks (the cart): a browser that holds a
    session (its CSRF cookie lives as long as the session) but no longer sends the access cookie
    (the browser dropped it when the token expired) is a 401, so the page renews the session
    and asks again, instead of a guest who would quietly get another cart."""
    actor = await optional_actor(request)
    if actor is None and request.cookies.get(CSRF_COOKIE):
        raise HttpProblem(
            "unauthorized",
            "the session's access token has expired: renew it with POST /api/auth/refresh",
            headers={"WWW-Authenticate": f'{WWW_AUTHENTICATE}, error="invalid_token"'},
        )
    return actor


def forwarded_authorization(actor: Actor | None) -> str | None:
    """The command's `authorization` header: the worker re-verifies the same token."""
    return f"Bearer {actor.token}" if actor is not None else None


VERIFIER_KEY = web.AppKey("token_verifier", TokenVerifier)
REVOCATION_FEED_KEY = web.AppKey("revocation_feed", RevocationFeed)
JWKS_KEY = web.AppKey("jwks", JwksSource)
