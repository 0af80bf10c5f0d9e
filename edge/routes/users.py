"""The users endpoints: registration, login, profiles. Each route is one command."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from contracts import registry
from contracts.privacy import EXPORT_NAME, ExportUserData, UserDataExport
from contracts.users import (
    CHANGE_PASSWORD,
    ERASE_USER,
    EXPORT_USER_DATA,
    GET_USER,
    LOGIN_USER,
    REGISTER_USER,
    UPDATE_USER,
    ChangePassword,
    EraseUser,
    GetUser,
    LoginUser,
    RegisterUser,
    UpdateUser,
)
from edge import SETTINGS_KEY
from edge.auth import require_actor
from edge.commands import call_service, parse, path_uuid, send
from edge.fingerprint import client_fingerprint
from edge.middleware import json_body
from edge.openapi import Endpoint
from edge.ratelimit import RATE_LIMITER_KEY
from edge.routes.cart import merge_guest_cart
from edge.sessions import CSRF_KEY, set_session_cookies

# Tokens must not linger in browser or proxy caches.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def register_user(request: web.Request) -> web.Response:
    command = parse(RegisterUser, json_body(request))
    await request.app[RATE_LIMITER_KEY].check(request, "register", account=command.email)
    return await call_service(request, REGISTER_USER, command, status=201, location="/api/users/{user_id}")


async def login_user(request: web.Request) -> web.Response:
    fingerprint = client_fingerprint(request, request.app[SETTINGS_KEY])
    command = parse(LoginUser, json_body(request), server_fields={"client_fingerprint": fingerprint})
    await request.app[RATE_LIMITER_KEY].check(request, "login", account=command.email)
    result = await send(request, LOGIN_USER, command)
    response = web.json_response(result, headers=NO_STORE)
    set_session_cookies(response, result, request.app[SETTINGS_KEY], request.app[CSRF_KEY])
    await merge_guest_cart(request, response, result["access_token"])
    return response


async def get_me(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return await call_service(request, GET_USER, GetUser(), actor=actor)


async def get_user(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return await call_service(request, GET_USER, GetUser(user_id=path_uuid(request, "userId")), actor=actor)


async def change_password(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    user_id = path_uuid(request, "userId")
    command = parse(ChangePassword, json_body(request), server_fields={"user_id": user_id})
    await request.app[RATE_LIMITER_KEY].check(request, "password", account=str(actor.user_id))
    return await call_service(request, CHANGE_PASSWORD, command, actor=actor)


async def update_user(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    user_id = path_uuid(request, "userId")
    command = parse(UpdateUser, json_body(request), server_fields={"user_id": user_id})
    return await call_service(request, UPDATE_USER, command, actor=actor)


async def erase_user(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return await call_service(request, ERASE_USER, EraseUser(user_id=path_uuid(request, "userId")), actor=actor)


async def export_user(request: web.Request) -> web.Response:
    """Every service's records about the user, asked in parallel with the caller's token.

    Each service decides on its own whether the caller may see them; the users
    service's refusal (404) is the answer for a user the caller may not see.
    """
    actor = await require_actor(request)
    query = ExportUserData(user_id=path_uuid(request, "userId"))
    exporters = [spec for spec in registry.COMMANDS if spec.name == EXPORT_NAME]
    answers = await asyncio.gather(*(send(request, spec, query, actor=actor) for spec in exporters))
    export = UserDataExport(
        user_id=query.user_id,
        exported_at=datetime.now(UTC),
        services={answer["service"]: answer["data"] for answer in answers},
    )
    return web.json_response(
        export.model_dump(mode="json"),
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="agora-{query.user_id}.json"'},
    )


# `/me` before `/{userId}`: the router tries routes in this order.
ENDPOINTS = (
    Endpoint(
        "POST",
        "/api/users/register",
        register_user,
        REGISTER_USER,
        status=201,
        body=RegisterUser,
        errors=(409,),
        rate_limited=True,
        headers=("Location",),
    ),
    Endpoint(
        "POST",
        "/api/users/login",
        login_user,
        LOGIN_USER,
        body=LoginUser,
        body_omits=("client_fingerprint",),
        errors=(401,),
        rate_limited=True,
        headers=("Cache-Control", "Set-Cookie"),
        summary="Exchange credentials for tokens. Also sets the browser session cookies and the CSRF cookie.",
    ),
    Endpoint(
        "GET", "/api/users/me", get_me, GET_USER, auth=True, errors=(404,), summary="Read the caller's own profile."
    ),
    Endpoint("GET", "/api/users/{userId}", get_user, GET_USER, auth=True, errors=(404,)),
    Endpoint(
        "PUT",
        "/api/users/{userId}",
        update_user,
        UPDATE_USER,
        body=UpdateUser,
        body_omits=("user_id",),
        auth=True,
        errors=(404, 409),
        partial=True,
        summary="Change username, phone or address: only the fields sent change; null clears phone or address.",
    ),
    Endpoint(
        "POST",
        "/api/users/{userId}/password",
        change_password,
        CHANGE_PASSWORD,
        status=204,
        body=ChangePassword,
        body_omits=("user_id",),
        auth=True,
        errors=(404,),
        rate_limited=True,
        summary="Change your own password (needs the current one). Ends every session.",
    ),
    Endpoint(
        "DELETE",
        "/api/users/{userId}",
        erase_user,
        ERASE_USER,
        status=204,
        auth=True,
        errors=(404, 409),
        summary="Erase an account (the owner or an admin): personal data anonymised in every service, "
        "sessions ended; orders are kept for accounting under the pseudonymous id.",
    ),
    Endpoint(
        "GET",
        "/api/users/{userId}/export",
        export_user,
        EXPORT_USER_DATA,
        response=UserDataExport,
        auth=True,
        errors=(404,),
        headers=("Cache-Control",),
        summary="Everything Agora holds about the user, gathered from every service (the owner or an admin).",
    ),
)
