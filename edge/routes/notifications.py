"""The notifications endpoints: a user's preferences, and the message templates (admins).

The notifications service decides who may do what: preferences are the user's own (or
an admin's), templates are for admins only.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from contracts.notifications import (
    GET_NOTIFICATION_PREFERENCES,
    GET_TEMPLATE,
    LIST_TEMPLATES,
    PREVIEW_TEMPLATE,
    SET_NOTIFICATION_PREFERENCES,
    SET_TEMPLATE,
    GetNotificationPreferences,
    GetTemplate,
    ListTemplates,
    NotificationPreferences,
    PreviewTemplate,
    SetNotificationPreferences,
    SetTemplate,
    TemplateBody,
)
from edge.auth import require_actor
from edge.commands import call_service, parse, path_uuid
from edge.middleware import json_body
from edge.openapi import Endpoint
from edge.problems import HttpProblem

_TEMPLATE = "/api/admin/notification-templates/{channel}/{key}"


def path_template(request: web.Request) -> GetTemplate:
    # A channel or key that cannot exist names nothing: 404, like one that does not exist.
    try:
        return GetTemplate.model_validate({"channel": request.match_info["channel"], "key": request.match_info["key"]})
    except ValidationError:
        raise HttpProblem("not_found", "no resource at this URL") from None


async def get_notification_preferences(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    query = GetNotificationPreferences(user_id=path_uuid(request, "userId"))
    return await call_service(request, GET_NOTIFICATION_PREFERENCES, query, actor=actor)


async def set_notification_preferences(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    user_id = path_uuid(request, "userId")
    command = SetNotificationPreferences(
        user_id=user_id, preferences=parse(NotificationPreferences, json_body(request))
    )
    return await call_service(request, SET_NOTIFICATION_PREFERENCES, command, actor=actor)


async def list_notification_templates(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return await call_service(request, LIST_TEMPLATES, ListTemplates(), actor=actor)


async def get_notification_template(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return await call_service(request, GET_TEMPLATE, path_template(request), actor=actor)


async def set_notification_template(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    where = path_template(request)
    command = SetTemplate(key=where.key, channel=where.channel, body=parse(TemplateBody, json_body(request)))
    return await call_service(request, SET_TEMPLATE, command, actor=actor)


async def preview_notification_template(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    where = path_template(request)
    # No body previews the template as it is; a body (`null` included) must be a template.
    body = parse(TemplateBody, json_body(request)) if request.body_exists else None
    return await call_service(
        request, PREVIEW_TEMPLATE, PreviewTemplate(key=where.key, channel=where.channel, body=body), actor=actor
    )


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/users/{userId}/notification-preferences",
        get_notification_preferences,
        GET_NOTIFICATION_PREFERENCES,
        auth=True,
        errors=(404,),
        summary="A user's notification preferences (the user or an admin). Email about orders, the account "
        "and security is always sent; SMS and marketing only with consent.",
    ),
    Endpoint(
        "PUT",
        "/api/users/{userId}/notification-preferences",
        set_notification_preferences,
        SET_NOTIFICATION_PREFERENCES,
        body=NotificationPreferences,
        auth=True,
        errors=(404,),
        summary="Replace a user's notification preferences (the user or an admin); a choice left out is off.",
    ),
    Endpoint(
        "GET",
        "/api/admin/notification-templates",
        list_notification_templates,
        LIST_TEMPLATES,
        auth=True,
        errors=(403,),
        summary="Every notification template (admins), with its variables and its current body.",
    ),
    Endpoint(
        "GET",
        _TEMPLATE,
        get_notification_template,
        GET_TEMPLATE,
        path_params=GetTemplate,
        auth=True,
        errors=(403, 404),
    ),
    Endpoint(
        "PUT",
        _TEMPLATE,
        set_notification_template,
        SET_TEMPLATE,
        body=TemplateBody,
        path_params=GetTemplate,
        auth=True,
        errors=(403, 404),
        summary="Edit a notification template (admins). Jinja2, sandboxed; it must render with the template's "
        "sample values, or the answer is 422 naming the part (`subject`, `text`, `html`) that failed.",
    ),
    Endpoint(
        "POST",
        f"{_TEMPLATE}/preview",
        preview_notification_template,
        PREVIEW_TEMPLATE,
        body=TemplateBody,
        body_optional=True,
        path_params=GetTemplate,
        auth=True,
        errors=(403, 404),
        summary="Render a template with sample values, without saving (admins): the body sent, or the "
        "current one when there is no body. A body that does not render is 422, as when saving.",
    ),
)
