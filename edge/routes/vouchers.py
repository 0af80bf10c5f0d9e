"""Vouchers: admins add, list, read, change and deactivate them (a checkout applies one
with `voucher_code` on `POST /api/orders`)."""

from __future__ import annotations

from aiohttp import web

from contracts.vouchers import (
    CREATE_VOUCHER,
    GET_VOUCHER,
    LIST_VOUCHERS,
    UPDATE_VOUCHER,
    CreateVoucher,
    GetVoucher,
    ListVouchers,
    UpdateVoucher,
)
from edge.auth import require_actor
from edge.commands import call_service, parse, parse_query, path_uuid
from edge.middleware import json_body
from edge.openapi import Endpoint


async def list_vouchers(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return await call_service(request, LIST_VOUCHERS, parse_query(ListVouchers, request), actor=actor)


async def get_voucher(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    return await call_service(request, GET_VOUCHER, GetVoucher(voucher_id=path_uuid(request, "voucherId")), actor=actor)


async def create_voucher(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    command = parse(CreateVoucher, json_body(request))
    return await call_service(
        request, CREATE_VOUCHER, command, actor=actor, status=201, location="/api/vouchers/{voucher_id}"
    )


async def update_voucher(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    voucher_id = path_uuid(request, "voucherId")
    command = parse(UpdateVoucher, json_body(request), server_fields={"voucher_id": voucher_id})
    return await call_service(request, UPDATE_VOUCHER, command, actor=actor)


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/vouchers",
        list_vouchers,
        LIST_VOUCHERS,
        query=ListVouchers,
        auth=True,
        errors=(403, 422),
        summary="Admin: the vouchers by code, each with its uses so far (pending orders' and confirmed ones').",
    ),
    Endpoint(
        "POST",
        "/api/vouchers",
        create_voucher,
        CREATE_VOUCHER,
        status=201,
        body=CreateVoucher,
        auth=True,
        errors=(403, 409),
        headers=("Location",),
        summary="Admin: add a voucher: a `percent` or fixed `amounts` per currency, an optional minimum spend, "
        "validity window, total and per-customer limits, categories and sellers. A code already taken (in any "
        "case) is 409.",
    ),
    Endpoint(
        "GET",
        "/api/vouchers/{voucherId}",
        get_voucher,
        GET_VOUCHER,
        auth=True,
        errors=(403, 404),
        summary="Admin: a voucher, with its uses so far.",
    ),
    Endpoint(
        "PUT",
        "/api/vouchers/{voucherId}",
        update_voucher,
        UPDATE_VOUCHER,
        body=UpdateVoucher,
        body_omits=("voucher_id",),
        auth=True,
        partial=True,
        errors=(403, 404),
        summary="Admin: change a voucher (only the fields sent), or deactivate it with `active: false`. Orders "
        "already placed keep their discount; a lower limit stops new uses, never takes back those held.",
    ),
)
