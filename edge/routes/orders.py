"""The order endpoints: place an order (202: the saga decides), read it, move it along, list, follow.

`POST /api/orders` turns the `Idempotency-Key` header into the order's id (an HMAC of
the caller and the key under a secret of the edge's, so nobody who knows both can take
the id first) and the body into a hash, so the same key and body find the
same order and the same key with another body is refused by the orders service.
Without `items`, the caller's cart is ordered: the orders service reads and prices it
with the order, and its lines leave the cart once the order is confirmed. Before an
order is placed or paid again, the payments service is asked whether the provider knows
the token: an unknown one is a 422 before anything is reserved. The event stream polls
the order through the orders service, which keeps checking who may see it.
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
    LIST_SELLER_ORDERS,
    LIST_USER_ORDERS,
    PAY_ORDER,
    PLACE_ORDER,
    UPDATE_ORDER_STATUS,
    GetOrder,
    ListSellerOrders,
    ListSellerOrdersQuery,
    ListUserOrders,
    ListUserOrdersQuery,
    PayOrder,
    PayOrderBody,
    PlaceOrder,
    PlaceOrderBody,
    UpdateOrderStatus,
)
from contracts.payments import CHECK_PAYMENT_TOKEN, CheckPaymentToken
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


async def _known_token(request: web.Request, token: str) -> None:
    """Refuse a payment token the provider does not know (422 on `payment_token`), before
    anything is reserved; one the provider could not be asked about goes ahead (its
    authorization then tells, and a failed one can be paid again)."""
    check = await send(request, CHECK_PAYMENT_TOKEN, CheckPaymentToken(payment_token=token))
    if check["known"] is False:
        raise HttpProblem(
            "validation_failed",
            "the payment provider does not know this payment token",
            errors=(FieldError(field="payment_token", message="unknown payment token"),),
        )


async def place_order(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    key = _idempotency_key(request)
    body = parse(PlaceOrderBody, json_body(request))
    await _known_token(request, body.payment_token)
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
        shipping_method_id=body.shipping_method_id,
        voucher_code=body.voucher_code,
        request_hash=digest,
    )
    return await call_service(request, PLACE_ORDER, command, actor=actor, status=202, location="/api/orders/{order_id}")


async def get_order(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return await call_service(request, GET_ORDER, GetOrder(order_id=path_uuid(request, "orderId")), actor=actor)


async def pay_order(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    order_id = path_uuid(request, "orderId")
    body = parse(PayOrderBody, json_body(request))
    await _known_token(request, body.payment_token)
    command = PayOrder(order_id=order_id, payment_token=body.payment_token)
    return await call_service(request, PAY_ORDER, command, actor=actor, status=202)


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


async def list_my_orders(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    query = parse_query(ListUserOrdersQuery, request)
    command = ListUserOrders(user_id=actor.user_id, limit=query.limit, cursor=query.cursor)
    return await call_service(request, LIST_USER_ORDERS, command, actor=actor)


async def list_seller_orders(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    query = parse_query(ListSellerOrdersQuery, request)
    command = ListSellerOrders(seller_id=path_uuid(request, "sellerId"), **query.model_dump())
    return await call_service(request, LIST_SELLER_ORDERS, command, actor=actor)


async def order_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: one `status` event per entry of the order's history (a status,
    or a payment that failed or was made again), with the payment's status, the cancel
    reason and the pay-again window's end as they were then.

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
        header_params=("IdempotencyKey",),
        summary="Place an order from `items`, or without them from the caller's cart (whose ordered lines leave "
        "it once the order is confirmed; an empty cart is 409), with an `Idempotency-Key` header: the same key "
        "and body answer the same order, the same key with another body is 422. A payment token the provider "
        "does not know is 422, before anything is reserved. Answered at once with the pending order; stock is "
        "reserved and payment authorized in the background, and the order becomes `confirmed`, or `cancelled` "
        "(see `cancel_reason`). A declined or unanswered payment leaves it pending with `payment_status` "
        "`failed`, its stock held, until `payment_due_by`: pay it again with `POST "
        "/api/orders/{orderId}/payment`, or it is cancelled then. Prices are today's, kept on each line.",
    ),
    Endpoint(
        "POST",
        "/api/orders/{orderId}/payment",
        pay_order,
        PAY_ORDER,
        status=202,
        body=PayOrderBody,
        auth=True,
        errors=(403, 404, 409, 422),
        summary="Pay again, with another token, an order whose payment failed (`payment_status` `failed`), before "
        "its `payment_due_by`: its owner, an admin, or the partner that placed it (a seller of its lines 403, "
        "anyone else 404). An unknown token is 422; an order not waiting for a payment (being authorized with "
        "another token, confirmed, cancelled, or its failed payment still being voided) 409. Answered at once "
        "with the pending order; the authorization follows as for a new order, and a repeat while it runs "
        "answers the order as it is.",
    ),
    Endpoint(
        "GET",
        "/api/orders",
        list_my_orders,
        LIST_USER_ORDERS,
        query=ListUserOrdersQuery,
        auth=True,
        errors=(422,),
        summary="The caller's own orders (a partner's: those it placed for itself), newest first, in keyset pages "
        "via `next_cursor`.",
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
        "/api/sellers/{sellerId}/orders",
        list_seller_orders,
        LIST_SELLER_ORDERS,
        query=ListSellerOrdersQuery,
        auth=True,
        errors=(404, 422),
        summary="The orders with a line of this seller's, by `status` (by default `confirmed`: those to ship), "
        "newest first, in keyset pages (the seller or an admin; anyone else 404).",
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
        event_stream="Server-Sent Events: one `status` event per entry of the order's history, from the first: "
        "each status it takes and, while it is pending, each payment that failed or was made again (`id`: its "
        "position in the history, so a reconnect with `Last-Event-ID` gets only what is new; `data`: JSON "
        "`{order_id, status, at, payment_status, cancel_reason, payment_due_by}` as they were then: "
        "`payment_status` `failed` with `payment_due_by` is a failed payment, to pay again before then; the "
        "payment fields are null in entries older than them), and a `: keep-alive` comment every 15 s. The "
        "stream ends when the order is delivered or cancelled, after 5 minutes, or when the token expires: "
        "reconnect.",
        event_example='id: 2\nevent: status\ndata: {"order_id": "4b6c2f0e-8d1a-4e7b-9c3d-2a5f6e7d8c9b", '
        '"status": "pending", "at": "2026-11-25T10:00:01Z", "payment_status": "failed", "cancel_reason": null, '
        '"payment_due_by": "2026-11-25T10:15:01Z"}\n\n',
    ),
)
