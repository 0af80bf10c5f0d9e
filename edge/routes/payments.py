"""The payment provider's webhook: Stripe (or the sandbox speaking its protocol) tells
Agora what happened to a payment. No login: the `Stripe-Signature` header is the
authentication, and only the payments worker holds the secret that checks it, so the
edge forwards the body byte for byte with the header and answers what the worker says."""

from __future__ import annotations

from aiohttp import web

from contracts.errors import FieldError
from contracts.payments import RECEIVE_PROVIDER_EVENT, ProviderWebhookEvent, ReceiveProviderEvent
from edge.commands import send
from edge.openapi import Endpoint
from edge.problems import HttpProblem

SIGNATURE_HEADER = "Stripe-Signature"


async def receive_payment_webhook(request: web.Request) -> web.Response:
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        missing = FieldError(field=SIGNATURE_HEADER, message="a webhook must be signed")
        raise HttpProblem("bad_request", f"the {SIGNATURE_HEADER} header is missing", errors=(missing,))
    try:
        payload = (await request.read()).decode("utf-8")
        command = ReceiveProviderEvent(payload=payload, signature=signature)
    except ValueError:  # not UTF-8, or not a body the command can carry: no event of the provider
        raise HttpProblem("bad_request", "the body is not a provider's event") from None
    try:
        receipt = await send(request, RECEIVE_PROVIDER_EVENT, command)
    except HttpProblem as problem:
        if problem.code != "validation_failed":
            raise
        # The signature does not verify: the provider (which retries on any non-2xx)
        # is told 400, as Stripe's own libraries answer a bad signature.
        raise HttpProblem("bad_request", problem.detail, errors=problem.errors) from None
    return web.json_response(receipt)


ENDPOINTS = (
    Endpoint(
        "POST",
        "/api/payments/webhook",
        receive_payment_webhook,
        RECEIVE_PROVIDER_EVENT,
        body=ProviderWebhookEvent,
        errors=(400,),
        header_params=("StripeSignature",),
        summary="The payment provider's webhook endpoint (register it at the provider): a signed event about a "
        "payment, recorded once.",
    ),
)
