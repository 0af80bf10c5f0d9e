"""Session endpoints: refresh, logout, the public key set."""

from __future__ import annotations

from aiohttp import web

from contracts.users import GET_JWKS, LOGOUT, LOGOUT_ALL, REFRESH_SESSION, GetJwks, Logout, LogoutAll, RefreshSession
from edge.auth import require_actor
from edge.commands import call_service, parse
from edge.middleware import json_body
from edge.openapi import Endpoint
from edge.routes.users import NO_STORE

# Verifiers may cache the keys briefly; a rotation adds a key long before it signs.
JWKS_CACHE = {"Cache-Control": "public, max-age=300"}


async def refresh_session(request: web.Request) -> web.Response:
    command = parse(RefreshSession, json_body(request))
    return await call_service(request, REFRESH_SESSION, command, headers=NO_STORE)


async def logout(request: web.Request) -> web.Response:
    return await call_service(request, LOGOUT, parse(Logout, json_body(request)))


async def logout_all(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return await call_service(request, LOGOUT_ALL, LogoutAll(), actor=actor)


async def jwks(request: web.Request) -> web.Response:
    return await call_service(request, GET_JWKS, GetJwks(), headers=JWKS_CACHE)


ENDPOINTS = (
    Endpoint(
        "POST",
        "/api/auth/refresh",
        refresh_session,
        REFRESH_SESSION,
        body=RefreshSession,
        errors=(401,),
        headers=("Cache-Control",),
        summary="Trade a refresh token for new tokens. Each refresh token works once; reusing one ends the session.",
    ),
    Endpoint("POST", "/api/auth/logout", logout, LOGOUT, status=204, body=Logout, summary="End this session."),
    Endpoint(
        "POST", "/api/auth/logout-all", logout_all, LOGOUT_ALL, status=204, auth=True, summary="End every session."
    ),
    Endpoint("GET", "/api/auth/jwks.json", jwks, GET_JWKS, summary="Public keys that verify access tokens (JWKS)."),
)
