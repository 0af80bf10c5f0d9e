"""Session endpoints: refresh, logout, the public key set."""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from contracts.users import GET_JWKS, LOGOUT, LOGOUT_ALL, REFRESH_SESSION, GetJwks, Logout, LogoutAll, RefreshSession
from edge import SETTINGS_KEY
from edge.auth import require_actor
from edge.commands import call_service, parse, send
from edge.middleware import json_body
from edge.openapi import Endpoint
from edge.problems import HttpProblem
from edge.ratelimit import RATE_LIMITER_KEY
from edge.routes.users import NO_STORE
from edge.sessions import CSRF_KEY, REFRESH_COOKIE, check_csrf, clear_session_cookies, set_session_cookies

# Verifiers may cache the keys briefly; a rotation adds a key long before it signs.
JWKS_CACHE = {"Cache-Control": "public, max-age=300"}


def _session_body(request: web.Request) -> tuple[Any, bool]:
    """The body, with the refresh token from the cookie when the body has none.

    Returns whether the cookie was used: that is a browser session, which must pass
    the CSRF check and gets its cookies updated in the answer.
    """
    body = json_body(request)
    cookie = request.cookies.get(REFRESH_COOKIE)
    if cookie and (body is None or (isinstance(body, dict) and "refresh_token" not in body)):
        check_csrf(request, request.app[CSRF_KEY], None)
        return {**(body or {}), "refresh_token": cookie}, True
    return body, False


async def refresh_session(request: web.Request) -> web.Response:
    body, via_cookie = _session_body(request)
    if body is None or body == {}:
        # No refresh token in the body and no session cookie: nobody to refresh (not a
        # malformed request, which a body with a bad token is).
        raise HttpProblem("unauthorized", "no session: send a refresh token, or the session cookie")
    command = parse(RefreshSession, body)
    # A session is the "account" here: the edge cannot tell whose token it is.
    session_key = hashlib.sha256(command.refresh_token.encode()).hexdigest()
    await request.app[RATE_LIMITER_KEY].check(request, "refresh", account=session_key)
    try:
        result = await send(request, REFRESH_SESSION, command)
    except HttpProblem as problem:
        if not via_cookie or problem.status != 401:
            raise
        # The browser's session is over (expired, revoked): forget its cookies, or its CSRF
        # cookie would keep saying "signed in" and the cart would answer 401 until it expires.
        ended = problem.response(request)
        clear_session_cookies(ended)
        return ended
    response = web.json_response(result, headers=NO_STORE)
    if via_cookie:
        set_session_cookies(response, result, request.app[SETTINGS_KEY], request.app[CSRF_KEY])
    return response


async def logout(request: web.Request) -> web.Response:
    body, _ = _session_body(request)
    await send(request, LOGOUT, parse(Logout, body))
    response = web.Response(status=204)
    clear_session_cookies(response)
    return response


async def logout_all(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    await send(request, LOGOUT_ALL, LogoutAll(), actor=actor)
    response = web.Response(status=204)
    clear_session_cookies(response)
    return response


async def jwks(request: web.Request) -> web.Response:
    return await call_service(request, GET_JWKS, GetJwks(), headers=JWKS_CACHE)


ENDPOINTS = (
    Endpoint(
        "POST",
        "/api/auth/refresh",
        refresh_session,
        REFRESH_SESSION,
        body=RefreshSession,
        errors=(401, 403),
        rate_limited=True,
        headers=("Cache-Control", "Set-Cookie"),
        summary="Trade a refresh token for new tokens. Each refresh token works once; reusing one ends the session. "
        "A browser may send no body: the refresh cookie is used (with the X-CSRF-Token header) and renewed.",
    ),
    Endpoint(
        "POST",
        "/api/auth/logout",
        logout,
        LOGOUT,
        status=204,
        body=Logout,
        errors=(403,),
        headers=("Set-Cookie",),
        summary="End this session (the refresh token in the body, or the refresh cookie) and clear the cookies.",
    ),
    Endpoint(
        "POST",
        "/api/auth/logout-all",
        logout_all,
        LOGOUT_ALL,
        status=204,
        auth=True,
        errors=(403,),
        headers=("Set-Cookie",),
        summary="End every session of the caller and clear the cookies.",
    ),
    Endpoint("GET", "/api/auth/jwks.json", jwks, GET_JWKS, summary="Public keys that verify access tokens (JWKS)."),
)
