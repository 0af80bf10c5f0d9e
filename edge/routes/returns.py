"""Returns and refunds: a member asks to return lines of a delivered order; the seller of
its lines or an admin approves or refuses it, marks it received and refunds it; an admin
refunds an amount of an order directly.

With an `Idempotency-Key` header, asking for a return or a direct refund again finds the
same one: its id is derived from the caller, the order and the key, as an order's is.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from contracts.errors import FieldError
from contracts.returns import (
    GET_RETURN,
    LIST_RETURNS,
    REFUND_ORDER,
    REFUND_RETURN,
    REQUEST_RETURN,
    UPDATE_RETURN,
    GetReturn,
    ListReturns,
    ListReturnsQuery,
    RefundOrder,
    RefundOrderBody,
    RefundReturn,
    RefundReturnBody,
    RequestReturn,
    RequestReturnBody,
    UpdateReturn,
)
from edge import SETTINGS_KEY
from edge.auth import require_actor
from edge.commands import call_service, parse, parse_query, path_uuid
from edge.middleware import json_body
from edge.openapi import Endpoint
from edge.problems import HttpProblem
from edge.routes.orders import IDEMPOTENCY_KEY, _idempotency_key, order_id_for


def _keyed_id(request: web.Request, user_id: uuid.UUID, what: str, order_id: uuid.UUID) -> uuid.UUID:
    """The id of what this request makes: derived from its Idempotency-Key, else new."""
    key = _idempotency_key(request)
    if key is None:
        return uuid.uuid4()
    return order_id_for(request.app[SETTINGS_KEY].csrf_secret, user_id, f"{what}:{order_id}:{key}")


async def request_return(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    order_id = path_uuid(request, "orderId")
    body = parse(RequestReturnBody, json_body(request))
    command = RequestReturn(
        return_id=_keyed_id(request, actor.user_id, "return", order_id),
        order_id=order_id,
        items=body.items,
        reason=body.reason,
    )
    return await call_service(
        request, REQUEST_RETURN, command, actor=actor, status=201, location="/api/returns/{return_id}"
    )


async def list_order_returns(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    query = parse_query(ListReturnsQuery, request)
    command = ListReturns(order_id=path_uuid(request, "orderId"), **query.model_dump())
    return await call_service(request, LIST_RETURNS, command, actor=actor)


async def list_returns(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    command = ListReturns(**parse_query(ListReturnsQuery, request).model_dump())
    return await call_service(request, LIST_RETURNS, command, actor=actor)


async def get_return(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return await call_service(request, GET_RETURN, GetReturn(return_id=path_uuid(request, "returnId")), actor=actor)


async def update_return(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return_id = path_uuid(request, "returnId")
    command = parse(UpdateReturn, json_body(request), server_fields={"return_id": return_id})
    return await call_service(request, UPDATE_RETURN, command, actor=actor)


async def refund_return(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return_id = path_uuid(request, "returnId")
    given = json_body(request)
    body = parse(RefundReturnBody, {} if given is None else given)
    command = RefundReturn(return_id=return_id, **body.model_dump(exclude_unset=True))
    return await call_service(request, REFUND_RETURN, command, actor=actor, status=202)


async def refund_order(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    order_id = path_uuid(request, "orderId")
    body = parse(RefundOrderBody, json_body(request))
    if _idempotency_key(request) is None:  # a retried refund without one would be a second refund
        missing = FieldError(field=IDEMPOTENCY_KEY, message="is required: a retry must not refund twice")
        raise HttpProblem("validation_failed", "a refund needs an Idempotency-Key header", errors=(missing,))
    command = RefundOrder(
        refund_id=_keyed_id(request, actor.user_id, "refund", order_id),
        order_id=order_id,
        amount=body.amount,
        reason=body.reason,
    )
    return await call_service(request, REFUND_ORDER, command, actor=actor, status=202)


_WHO_HANDLES = "the seller of every line in the return, or an admin"

ENDPOINTS = (
    Endpoint(
        "POST",
        "/api/orders/{orderId}/returns",
        request_return,
        REQUEST_RETURN,
        status=201,
        body=RequestReturnBody,
        auth=True,
        errors=(403, 404, 409, 422),
        headers=("Location",),
        header_params=("IdempotencyKey",),
        summary="Ask to return lines (and quantities) of a delivered order, with a reason, within the return window "
        "after delivery (`AGORA_RETURN_WINDOW_DAYS`, 30 by default): the order's customer, or an admin for them (a "
        "seller of its lines 403, anyone else 404). Not delivered, past the window, a line not in the order or more "
        "than is left to return of it: 422. With an `Idempotency-Key` header a repeat answers the same return. The "
        "return is `requested`; each line shows what refunding it gives back.",
    ),
    Endpoint(
        "GET",
        "/api/orders/{orderId}/returns",
        list_order_returns,
        LIST_RETURNS,
        query=ListReturnsQuery,
        auth=True,
        errors=(404, 422),
        summary="An order's returns, newest first (whoever may see the order; a seller only those with a line of "
        "theirs).",
    ),
    Endpoint(
        "GET",
        "/api/returns",
        list_returns,
        LIST_RETURNS,
        query=ListReturnsQuery,
        auth=True,
        errors=(422,),
        summary="Returns, newest first, by `status`, in keyset pages via `next_cursor`: an admin's all, a seller's "
        "those with a line of theirs (the portal's returns to handle), a member's their own.",
    ),
    Endpoint(
        "GET",
        "/api/returns/{returnId}",
        get_return,
        GET_RETURN,
        auth=True,
        errors=(404,),
        summary="A return: the order's customer, a seller with a line in it, admins; to anyone else 404.",
    ),
    Endpoint(
        "PUT",
        "/api/returns/{returnId}",
        update_return,
        UPDATE_RETURN,
        body=UpdateReturn,
        body_omits=("return_id",),
        auth=True,
        errors=(403, 404, 409, 422),
        summary=f"Move a return ({_WHO_HANDLES}; its customer 403): `approved` or `refused` (with a `note`, "
        "required to refuse) while `requested`; `received` once approved, each line back on sale or not "
        "(`resaleable`, or per line `lines`): resaleable goods' stock goes back up. Asking for the status it has "
        "answers it as it is; any other move is 409.",
    ),
    Endpoint(
        "POST",
        "/api/returns/{returnId}/refund",
        refund_return,
        REFUND_RETURN,
        status=202,
        body=RefundReturnBody,
        body_optional=True,
        auth=True,
        errors=(403, 404, 409, 422),
        summary=f"Refund a received return ({_WHO_HANDLES}): each line's share of what was paid for it (price "
        "times quantity, less its discount, plus its tax when added on top), by default every line whole, and "
        "with `shipping` what is left of the order's shipping. Through the payments service: answered at once "
        "with the refund `pending`; it becomes `refunded` (the return too) once the provider has refunded it. A "
        "repeat while it is pending or done answers that refund, never a second one. More than is left of the "
        "order's captured payment, or a return not received: 409.",
    ),
    Endpoint(
        "POST",
        "/api/orders/{orderId}/refunds",
        refund_order,
        REFUND_ORDER,
        status=202,
        body=RefundOrderBody,
        auth=True,
        errors=(403, 404, 409, 422),
        header_params=("RefundIdempotencyKey",),
        summary="Admin: refund an amount of a captured order directly (goodwill, or a partial refund without a "
        "return), never more than is left of what was captured (409). The `Idempotency-Key` header is required "
        "(422 without it): a repeat answers the same refund. Answered at once with the refund `pending`, as for a "
        "return's.",
    ),
)
