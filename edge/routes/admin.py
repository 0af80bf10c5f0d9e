"""Admin endpoints: account search, and the dead-letter tools.

Account search goes to the users service, which checks the caller is an admin. The
dead-letter tools are broker operations that belong to no service: the edge answers
them itself, through edge/dead_letters.py (the same code as `agora dlq`), after
checking the caller is an admin.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from contracts.operations import (
    DeadLetterList,
    DeadLetterQuery,
    DeadLetterQueuePath,
    DeadLetterQueues,
    DeadLetterSelection,
    Discarded,
    Replayed,
)
from contracts.users import LIST_USERS, ListUsers
from edge import SETTINGS_KEY
from edge.auth import require_actor
from edge.commands import call_service, parse, parse_query
from edge.dead_letters import DeadLetterError, DeadLetters, NoSuchDeadLetterQueue
from edge.middleware import json_body
from edge.openapi import Endpoint
from edge.problems import HttpProblem
from kernel.tokens import Actor

log = logging.getLogger("agora.edge.admin")
T = TypeVar("T")


async def list_users(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return await call_service(request, LIST_USERS, parse_query(ListUsers, request), actor=actor)


async def require_admin(request: web.Request) -> Actor:
    actor = await require_actor(request)
    if actor.role != "admin":
        raise HttpProblem("forbidden", "only admins may do this")
    return actor


async def _broker(request: web.Request, action: Callable[[DeadLetters], Awaitable[T]]) -> T:
    try:
        return await action(DeadLetters.from_settings(request.app[SETTINGS_KEY]))
    except NoSuchDeadLetterQueue:
        raise HttpProblem("not_found", "no such dead-letter queue") from None
    except DeadLetterError as exc:
        log.warning("dead-letter operation failed", extra={"error": str(exc)})
        raise HttpProblem("unavailable", "the message broker is unavailable") from None


async def list_dead_letter_queues(request: web.Request) -> web.Response:
    await require_admin(request)
    queues = await _broker(request, lambda dl: dl.queues())
    return web.json_response(DeadLetterQueues.model_validate({"queues": [q.as_dict() for q in queues]}).model_dump())


async def show_dead_letters(request: web.Request) -> web.Response:
    await require_admin(request)
    queue = request.match_info["queue"]
    query = parse_query(DeadLetterQuery, request)
    shown = await _broker(request, lambda dl: dl.show(queue, query.limit))
    reply = DeadLetterList.model_validate({"queue": queue, "messages": [m.as_dict() for m in shown]})
    return web.json_response(reply.model_dump(mode="json"))


def _selection(request: web.Request) -> set[str] | None:
    body = json_body(request)
    selection = parse(DeadLetterSelection, {} if body is None else body)
    return set(selection.ids) if selection.ids is not None else None


async def replay_dead_letters(request: web.Request) -> web.Response:
    actor = await require_admin(request)
    queue = request.match_info["queue"]
    ids = _selection(request)
    count = await _broker(request, lambda dl: dl.replay(queue, ids))
    # Broker operations have no service to audit them in users.audit_log: the log line is the record.
    log.info("admin: dead letters replayed", extra={"admin_id": str(actor.user_id), "queue": queue, "count": count})
    return web.json_response(Replayed(replayed=count).model_dump())


async def discard_dead_letters(request: web.Request) -> web.Response:
    actor = await require_admin(request)
    queue = request.match_info["queue"]
    ids = _selection(request)
    count = await _broker(request, lambda dl: dl.discard(queue, ids))
    log.info("admin: dead letters discarded", extra={"admin_id": str(actor.user_id), "queue": queue, "count": count})
    return web.json_response(Discarded(discarded=count).model_dump())


_DLQ_PATH = "/api/admin/dead-letters/{queue}"

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
    Endpoint(
        "GET",
        "/api/admin/dead-letters",
        list_dead_letter_queues,
        None,
        response=DeadLetterQueues,
        auth=True,
        errors=(403,),
        tag="operations",
        summary="Agora's dead-letter queues (`<work queue>.dlq`) with their message counts (admins). Counts "
        "come from RabbitMQ's management API and lag a few seconds.",
    ),
    Endpoint(
        "GET",
        _DLQ_PATH,
        show_dead_letters,
        None,
        query=DeadLetterQuery,
        path_params=DeadLetterQueuePath,
        response=DeadLetterList,
        auth=True,
        errors=(403, 404, 422),
        tag="operations",
        summary="The first `limit` messages of a dead-letter queue, oldest first, with why and where from "
        "(admins). Looking loses and reorders nothing. Only `.dlq` queues of Agora's vhost: else 404.",
    ),
    Endpoint(
        "POST",
        f"{_DLQ_PATH}/replay",
        replay_dead_letters,
        None,
        body=DeadLetterSelection,
        body_optional=True,
        path_params=DeadLetterQueuePath,
        response=Replayed,
        auth=True,
        errors=(403, 404),
        tag="operations",
        summary="Send the messages with these `ids` (all when left out) back to the work queue they were "
        "dead-lettered from, properties kept, then remove them from the dead-letter queue (admins).",
    ),
    Endpoint(
        "POST",
        f"{_DLQ_PATH}/discard",
        discard_dead_letters,
        None,
        body=DeadLetterSelection,
        body_optional=True,
        path_params=DeadLetterQueuePath,
        response=Discarded,
        auth=True,
        errors=(403, 404),
        tag="operations",
        summary="Delete the messages with these `ids` (all when left out) from a dead-letter queue (admins).",
    ),
)
