"""Taxes: anyone reads the rates and which currencies' prices include tax; admins set them."""

from __future__ import annotations

from aiohttp import web

from contracts.money import CURRENCIES
from contracts.taxes import (
    CREATE_TAX_RATE,
    DELETE_TAX_RATE,
    LIST_CURRENCY_TAX,
    LIST_TAX_RATES,
    SET_CURRENCY_TAX,
    UPDATE_TAX_RATE,
    CreateTaxRate,
    DeleteTaxRate,
    ListCurrencyTax,
    ListTaxRates,
    SetCurrencyTax,
    UpdateTaxRate,
)
from edge.auth import require_actor
from edge.commands import call_service, parse, parse_query, path_uuid
from edge.middleware import json_body
from edge.openapi import Endpoint
from edge.problems import HttpProblem


async def list_tax_rates(request: web.Request) -> web.Response:
    return await call_service(request, LIST_TAX_RATES, parse_query(ListTaxRates, request))


async def create_tax_rate(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    command = parse(CreateTaxRate, json_body(request))
    return await call_service(
        request, CREATE_TAX_RATE, command, actor=actor, status=201, location="/api/tax-rates/{rate_id}"
    )


async def update_tax_rate(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    command = parse(UpdateTaxRate, json_body(request), server_fields={"rate_id": path_uuid(request, "rateId")})
    return await call_service(request, UPDATE_TAX_RATE, command, actor=actor)


async def delete_tax_rate(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    command = DeleteTaxRate(rate_id=path_uuid(request, "rateId"))
    return await call_service(request, DELETE_TAX_RATE, command, actor=actor)


async def list_currency_tax(request: web.Request) -> web.Response:
    return await call_service(request, LIST_CURRENCY_TAX, ListCurrencyTax())


async def set_currency_tax(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    currency = request.match_info["currency"]
    if currency not in CURRENCIES:  # a currency Agora does not take names nothing
        raise HttpProblem("not_found", "no resource at this URL")
    command = parse(SetCurrencyTax, json_body(request), server_fields={"currency": currency})
    return await call_service(request, SET_CURRENCY_TAX, command, actor=actor)


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/tax-rates",
        list_tax_rates,
        LIST_TAX_RATES,
        query=ListTaxRates,
        errors=(422,),
        summary="The tax rates (of one `country`, or all): a percentage per country, region and product tax class.",
    ),
    Endpoint(
        "POST",
        "/api/tax-rates",
        create_tax_rate,
        CREATE_TAX_RATE,
        status=201,
        body=CreateTaxRate,
        auth=True,
        errors=(403, 409),
        headers=("Location",),
        summary="Admin: add a tax rate for a country, or a region of it, and a product tax class (one per place "
        "and class: a second is 409). The region's rate wins over the country's; a destination without a rate "
        "for a class charges no tax on it.",
    ),
    Endpoint(
        "PUT",
        "/api/tax-rates/{rateId}",
        update_tax_rate,
        UPDATE_TAX_RATE,
        body=UpdateTaxRate,
        body_omits=("rate_id",),
        auth=True,
        errors=(403, 404),
        partial=True,
        summary="Admin: change a rate's percentage or name. Orders already placed keep the tax they were charged.",
    ),
    Endpoint(
        "DELETE",
        "/api/tax-rates/{rateId}",
        delete_tax_rate,
        DELETE_TAX_RATE,
        status=204,
        auth=True,
        errors=(403, 404),
        summary="Admin: remove a tax rate.",
    ),
    Endpoint(
        "GET",
        "/api/tax-settings",
        list_currency_tax,
        LIST_CURRENCY_TAX,
        summary="Which currencies' prices include tax (any currency not listed: prices exclude it, and tax is "
        "added at checkout).",
    ),
    Endpoint(
        "PUT",
        "/api/tax-settings/{currency}",
        set_currency_tax,
        SET_CURRENCY_TAX,
        body=SetCurrencyTax,
        body_omits=("currency",),
        path_params=SetCurrencyTax,
        auth=True,
        errors=(403, 404),
        summary="Admin: say whether prices in this currency include tax (entered and shown with it: the tax is "
        "carved out at checkout) or exclude it (added at checkout).",
    ),
)
