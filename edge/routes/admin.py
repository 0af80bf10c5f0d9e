"""Admin endpoints: account search. The users service checks the caller is an admin."""

from __future__ import annotations

from aiohttp import web

from contracts.users import LIST_USERS, ListUsers
from edge.auth import require_actor
from edge.commands import call_service, parse
from edge.openapi import Endpoint


async def list_users(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return await call_service(request, LIST_USERS, parse(ListUsers, dict(request.query)), actor=actor)


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/admin/users",
        list_users,
        LIST_USERS,
        query=ListUsers,
        auth=True,
        errors=(403, 422),
        summary="Search accounts by email or username, filter by role or standing; newest first, by cursor.",
    ),
)
