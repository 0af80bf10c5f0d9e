"""The cart endpoints: the caller's cart, a guest's or a member's. Each route is one command.

Which cart: a signed-in caller's own (the token decides; no cart id is sent), else
the guest cart named by the `X-Cart-Id` header or the `agora_cart` cookie. A guest
who adds without one gets a new random id: in the `agora_cart` cookie (HttpOnly,
Secure, SameSite=Lax, host-only) and in the body's `cart_id`, which a non-browser
client sends back as `X-Cart-Id`. A signed-in caller who still carries a guest cart
has it merged into their own first (normally that happened at login already).

CSRF: a member's cookie-authenticated write needs `X-CSRF-Token` (edge/auth.py). A
guest's cart cookie authenticates nobody and needs none: SameSite=Lax keeps it off
cross-site writes, and a cross-site page cannot send a JSON body (or PUT/DELETE)
without a CORS preflight (docs/decisions.md).
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID, uuid4

from aiohttp import web

from contracts.carts import (
    ADD_CART_ITEM,
    GET_CART,
    MERGE_CART,
    REMOVE_CART_ITEM,
    SET_CART_ITEM,
    AddCartItem,
    CartItemQuery,
    GetCart,
    MergeCart,
    RemoveCartItem,
    SetCartItem,
)
from edge import SETTINGS_KEY
from edge.auth import member_or_guest
from edge.bus import BUS_KEY, RpcError
from edge.commands import parse, parse_query, path_uuid, send
from edge.middleware import json_body, request_id
from edge.openapi import Endpoint
from kernel.tokens import Actor

log = logging.getLogger("agora.edge.cart")

CART_COOKIE = "agora_cart"
CART_HEADER = "X-Cart-Id"
# As long as the worker keeps an untouched guest cart (workers/orders/carts/handlers.py).
CART_COOKIE_MAX_AGE = 30 * 24 * 3600


def guest_cart_id(request: web.Request) -> UUID | None:
    """The guest cart the request names, if any (the header wins over the cookie)."""
    raw = request.headers.get(CART_HEADER) or request.cookies.get(CART_COOKIE)
    if not raw:
        return None
    try:
        return UUID(raw)
    except ValueError:
        return None  # not an id we issued: as if there were none


async def merge_guest_cart(request: web.Request, response: web.StreamResponse, access_token: str) -> None:
    """At login: fold the request's guest cart into the member's, and forget its cookie.

    Best effort: if the orders service does not answer, the login still succeeds and
    the cookie stays, so the first cart request of the signed-in member merges it.
    """
    guest = guest_cart_id(request)
    if guest is None:
        return
    try:
        reply = await request.app[BUS_KEY].call(
            MERGE_CART,
            MergeCart(guest_cart_id=guest),
            correlation_id=request_id(request),
            authorization=f"Bearer {access_token}",
            timeout=request.app[SETTINGS_KEY].rpc_timeout_seconds,
        )
    except RpcError:
        log.warning("guest cart not merged at login; it will be at the next cart request", exc_info=True)
        return
    if reply.ok:
        _forget_guest_cart(response)
    else:
        log.warning("guest cart not merged at login", extra={"code": reply.error.code if reply.error else None})


def _forget_guest_cart(response: web.StreamResponse) -> None:
    response.del_cookie(CART_COOKIE, path="/", secure=True, samesite="Lax")


class _Caller:
    """Whose cart: the member (after merging a guest cart they still carry), or the guest's id."""

    def __init__(
        self, actor: Actor | None, cart_id: UUID | None, *, issued: bool, merged: dict[str, Any] | None
    ) -> None:
        self.actor = actor
        self.cart_id = cart_id
        self.issued = issued
        self.merged = merged

    def respond(self, data: Any) -> web.Response:
        response = web.json_response(data, headers={"Cache-Control": "no-store"})
        if self.issued and self.cart_id is not None:
            response.set_cookie(
                CART_COOKIE,
                str(self.cart_id),
                max_age=CART_COOKIE_MAX_AGE,
                path="/",
                httponly=True,
                secure=True,
                samesite="Lax",
            )
        if self.merged is not None:
            _forget_guest_cart(response)
        return response


async def _caller(request: web.Request, *, issue: bool) -> _Caller:
    actor = await member_or_guest(request)
    guest = guest_cart_id(request)
    if actor is not None:
        merged = await send(request, MERGE_CART, MergeCart(guest_cart_id=guest), actor=actor) if guest else None
        return _Caller(actor, None, issued=False, merged=merged)
    if guest is None and issue:
        return _Caller(None, uuid4(), issued=True, merged=None)
    return _Caller(None, guest, issued=False, merged=None)


async def get_cart(request: web.Request) -> web.Response:
    caller = await _caller(request, issue=False)
    if caller.merged is not None:  # the merge answered with the cart as it now is
        return caller.respond(caller.merged)
    return caller.respond(await send(request, GET_CART, GetCart(cart_id=caller.cart_id), actor=caller.actor))


async def add_cart_item(request: web.Request) -> web.Response:
    caller = await _caller(request, issue=True)
    command = parse(AddCartItem, json_body(request), server_fields={"cart_id": caller.cart_id})
    return caller.respond(await send(request, ADD_CART_ITEM, command, actor=caller.actor))


async def set_cart_item(request: web.Request) -> web.Response:
    product_id = path_uuid(request, "productId")
    variant_id = parse_query(CartItemQuery, request).variant_id
    caller = await _caller(request, issue=False)
    fields = {"cart_id": caller.cart_id, "product_id": product_id, "variant_id": variant_id}
    command = parse(SetCartItem, json_body(request), server_fields=fields)
    return caller.respond(await send(request, SET_CART_ITEM, command, actor=caller.actor))


async def remove_cart_item(request: web.Request) -> web.Response:
    product_id = path_uuid(request, "productId")
    variant_id = parse_query(CartItemQuery, request).variant_id
    caller = await _caller(request, issue=False)
    command = RemoveCartItem(cart_id=caller.cart_id, product_id=product_id, variant_id=variant_id)
    return caller.respond(await send(request, REMOVE_CART_ITEM, command, actor=caller.actor))


_WHICH_CART = (
    " The cart is the signed-in caller's, else the guest cart named by `X-Cart-Id` or the `agora_cart` cookie."
)

ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/cart",
        get_cart,
        GET_CART,
        header_params=("CartId",),
        errors=(401,),
        summary="The caller's cart at current prices (an empty one if there is none yet)." + _WHICH_CART,
    ),
    Endpoint(
        "POST",
        "/api/cart/items",
        add_cart_item,
        ADD_CART_ITEM,
        header_params=("CartId",),
        body=AddCartItem,
        body_omits=("cart_id",),
        errors=(401, 403, 404, 409),
        summary="Add a product's variant (its quantity adds to a line already there; 1 to 99 per variant). "
        "Without `variant_id`, the product's default variant: a product with options needs one (else 422). "
        "A guest without a cart gets one: its id is in `cart_id` and in the `agora_cart` cookie. "
        "A product in another currency than the cart's is 409; a withdrawn or unknown one 404." + _WHICH_CART,
    ),
    Endpoint(
        "PUT",
        "/api/cart/items/{productId}",
        set_cart_item,
        SET_CART_ITEM,
        header_params=("CartId",),
        body=SetCartItem,
        body_omits=("cart_id", "product_id", "variant_id"),
        query=CartItemQuery,
        errors=(401, 403, 404),
        summary="Set the quantity (1 to 99) of a product's variant in the cart (`variant_id` in the query; "
        "without it, the default variant); not in the cart is 404." + _WHICH_CART,
    ),
    Endpoint(
        "DELETE",
        "/api/cart/items/{productId}",
        remove_cart_item,
        REMOVE_CART_ITEM,
        header_params=("CartId",),
        query=CartItemQuery,
        errors=(401, 403, 404),
        summary="Take a product's variant out of the cart (`variant_id` in the query; without it, the default "
        "variant); not in the cart is 404. Answers with the cart." + _WHICH_CART,
    ),
)
