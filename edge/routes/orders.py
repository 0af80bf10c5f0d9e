"""The order endpoints: place an order (202: the saga decides), read it, move it along, list, follow.

`POST /api/orders` turns the `Idempotency-Key` header into the order's id (an HMAC of
the caller and the key under a secret of the edge's, so nobody who knows both can take
the id first) and the body into a hash, so the same key and body find the
same order and the same key with another body is refused by the orders service.
Without `items`, the caller's cart is ordered: the orders service reads, prices and
empties it with the order, in one transaction. The event stream polls the order
through the orders service, which keeps checking who may see it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from typing import Any

from aiohttp import web

from contracts.errors import FieldError
from contracts.orders import (
    GET_ORDER,
    LIST_USER_ORDERS,
    PLACE_ORDER,
    UPDATE_ORDER_STATUS,
    GetOrder,
    ListUserOrders,
    ListUserOrdersQuery,
    PlaceOrder,
    PlaceOrderBody,
    UpdateOrderStatus,
)
from edge import SETTINGS_KEY
from edge.auth import require_actor
from edge.commands import call_service, parse, parse_query, path_uuid, send
from edge.middleware import json_body
from edge.openapi import Endpoint
from edge.problems import HttpProblem
from kernel.tokens import Actor

IDEMPOTENCY_KEY = "Idempotency-Key"
# Order ids derived from idempotency keys live in their own UUIDv5 namespace.
# What the order ids are keyed with: derived from the CSRF secret every edge replica
# shares (a new secret would only change the ids of requests still to be retried).
_ORDER_ID_LABEL = b"agora order ids from Idempotency-Key"


def order_id_for(secret: str, user_id: uuid.UUID, key: str) -> uuid.UUID:
    """The same for the same caller and key on every edge; unguessable without the secret."""
    keyed = hmac.new(hashlib.sha256(_ORDER_ID_LABEL + secret.encode()).digest(), digestmod="sha256")
    keyed.update(f"{user_id}:{key}".encode())
    return uuid.UUID(bytes=keyed.digest()[:16], version=4)
_MAX_KEY = 200
# The event stream: how often it looks for news, how long one connection lasts (the
# client reconnects with Last-Event-ID, and with a fresh token), and a keep-alive.
SSE_POLL_SECONDS = 1.0
SSE_MAX_SECONDS = 300.0
SSE_KEEPALIVE_SECONDS = 15.0
_FINAL = ("delivered", "cancelled")


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is None:
        return None
    if not key or len(key) > _MAX_KEY or not key.isprintable():
        raise HttpProblem(
            "validation_failed",
            "the Idempotency-Key header must be 1 to 200 printable characters",
            errors=(FieldError(field=IDEMPOTENCY_KEY, message="must be 1 to 200 printable characters"),),
        )
    return key


async def place_order(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    key = _idempotency_key(request)
    body = parse(PlaceOrderBody, json_body(request))
    digest = hashlib.sha256(
        json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    secret = request.app[SETTINGS_KEY].csrf_secret  # empty only in development (a warning at start)
    order_id = order_id_for(secret, actor.user_id, key) if key is not None else uuid.uuid4()
    command = PlaceOrder(
        order_id=order_id,
        items=body.items,
        shipping_address=body.shipping_address,
        payment_token=body.payment_token,
        request_hash=digest,
    )
    return await call_service(request, PLACE_ORDER, command, actor=actor, status=202, location="/api/orders/{order_id}")


async def get_order(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return await call_service(request, GET_ORDER, GetOrder(order_id=path_uuid(request, "orderId")), actor=actor)


async def update_order(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    order_id = path_uuid(request, "orderId")
    command = parse(UpdateOrderStatus, json_body(request), server_fields={"order_id": order_id})
    return await call_service(request, UPDATE_ORDER_STATUS, command, actor=actor)


async def list_user_orders(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    user_id = path_uuid(request, "userId")
    query = parse_query(ListUserOrdersQuery, request)
    command = ListUserOrders(user_id=user_id, limit=query.limit, cursor=query.cursor)
    return await call_service(request, LIST_USER_ORDERS, command, actor=actor)


async def order_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: one `status` event per entry of the order's history.

    The first poll happens before the response starts, so a caller who may not see
    the order gets a 404 problem, not an empty stream. Event ids are history
    positions: a client that reconnects with `Last-Event-ID` gets only what is new.
    """
    actor = await require_actor(request)
    query = GetOrder(order_id=path_uuid(request, "orderId"))
    order = await send(request, GET_ORDER, query, actor=actor)
    if order["user_id"] != str(actor.user_id):
        raise HttpProblem("not_found", "order not found")  # the stream is the owner's
    try:
        sent = int(request.headers.get("Last-Event-ID", "0"))
    except ValueError:
        sent = 0
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    try:
        await _stream(request, response, order, query, actor, sent)
    except ConnectionResetError:
        return response  # the client went away (it reconnects with Last-Event-ID): nothing failed
    await response.write_eof()
    return response


async def _stream(
    request: web.Request, response: web.StreamResponse, order: dict[str, Any], query: GetOrder, actor: Actor, sent: int
) -> None:
    loop = asyncio.get_running_loop()
    started = last_write = loop.time()
    while True:
        history = order["history"]
        for position in range(max(sent, 0), len(history)):
            data = json.dumps({"order_id": order["order_id"], **history[position]})
            await response.write(f"id: {position + 1}\nevent: status\ndata: {data}\n\n".encode())
            last_write = loop.time()
        sent = max(sent, len(history))
        if order["status"] in _FINAL or loop.time() - started > SSE_MAX_SECONDS:
            break
        if loop.time() - last_write > SSE_KEEPALIVE_SECONDS:
            await response.write(b": keep-alive\n\n")
            last_write = loop.time()
        await asyncio.sleep(SSE_POLL_SECONDS)
        try:
            order = await send(request, GET_ORDER, query, actor=actor)
        except HttpProblem:
            break  # the token expired or the service is away: the client reconnects


ENDPOINTS = (
    Endpoint(
        "POST",
        "/api/orders",
        place_order,
        PLACE_ORDER,
        status=202,
        body=PlaceOrderBody,
        auth=True,
        errors=(409, 422),
        headers=("Location",),
        summary="Place an order from `items`, or without them from the caller's cart (which the order empties; "
        "an empty cart is 409), with an `Idempotency-Key` header: the same key and body answer the same order, "
        "the same key with another body is 422. Answered at once with the pending order; stock is reserved and "
        "payment authorized in the background, and the order becomes `confirmed` or `cancelled` (see "
        "`cancel_reason`). Prices are today's, kept on each line.",
    ),
    Endpoint(
        "GET",
        "/api/orders/user/{userId}",
        list_user_orders,
        LIST_USER_ORDERS,
        query=ListUserOrdersQuery,
        auth=True,
        errors=(404,),
        summary="A member's orders, newest first, in keyset pages via `next_cursor` (the member or an admin).",
    ),
    Endpoint(
        "GET",
        "/api/orders/{orderId}",
        get_order,
        GET_ORDER,
        auth=True,
        errors=(404,),
        summary="An order with its lines, payment status and history: its owner, admins, and sellers with a "
        "line in it; to anyone else 404.",
    ),
    Endpoint(
        "PUT",
        "/api/orders/{orderId}",
        update_order,
        UPDATE_ORDER_STATUS,
        body=UpdateOrderStatus,
        body_omits=("order_id",),
        auth=True,
        errors=(403, 404, 409),
        summary="Move an order: the customer cancels before it ships; an admin cancels before it is delivered; "
        "the seller of every line or an admin marks it `shipped`, then `delivered`. A cancel after the payment "
        "was captured refunds it. Any other move is 409.",
    ),
    Endpoint(
        "GET",
        "/api/orders/{orderId}/events",
        order_events,
        GET_ORDER,
        auth=True,
        errors=(404,),
        summary="Follow an order's status as Server-Sent Events (the order's owner only).",
        event_stream="Server-Sent Events: one `status` event per status the order takes, from the first "
        "(`id`: its position in the history, so a reconnect with `Last-Event-ID` gets only what is new; "
        "`data`: JSON `{order_id, status, at}`), and a `: keep-alive` comment every 15 s. The stream ends "
        "when the order is delivered or cancelled, after 5 minutes, or when the token expires: reconnect.",
        event_example='id: 1\nevent: status\ndata: {"order_id": "4b6c2f0e-8d1a-4e7b-9c3d-2a5f6e7d8c9b", '
        '"status": "pending", "at": "2026-11-25T10:00:00Z"}\n\n',
    ),
)
