"""The payment gateway: what the payments worker needs of a payment service provider.

`PaymentGateway` is the interface the handlers use; `HttpGateway` speaks the sandbox's
Stripe-like REST API (sandboxes/payment_sandbox.py) at AGORA_PAYMENT_API_URL, over one pooled
aiohttp client session (keep-alive connections; about a third of the CPU httpx took per
call, measured in issue 14). Every write carries an idempotency key, so a retried call
never charges twice.

Failures come in three kinds, because the handlers treat them differently:
- a decline is an answer (`ProviderAuthorization.status == "declined"`), not an error;
- `ProviderRefused`: the provider answered definitely no (capture of a voided
  authorization, an unknown id): retrying cannot change it;
- `ProviderUnavailable`: no answer (connection refused, timeout, 5xx, a request with
  the same key still in progress) after a few quick retries: the outcome is unknown.
A timeout is not retried here: the provider may still be working on the first request,
and the saga's deadline, not this client, decides how long an order waits.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote
from uuid import UUID

import aiohttp

log = logging.getLogger("agora.payments.gateway")

# Quick retries of a call that failed without an answer (not of a timeout).
ATTEMPTS = 3
BACKOFF_SECONDS = (0.2, 0.5)


class ProviderUnavailable(Exception):
    """No definite answer from the provider: the call may or may not have taken effect."""


class ProviderRefused(Exception):
    """The provider said no to a capture, void or refund (or to the request itself)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ProviderAuthorization:
    """An authorization as the provider reports it."""

    id: str
    status: str  # authorized, declined, captured, voided, refunded
    amount: int
    currency: str
    amount_captured: int = 0
    amount_refunded: int = 0

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ProviderAuthorization:
        return cls(
            id=str(body["id"]),
            status=str(body["status"]),
            amount=int(body["amount"]),
            currency=str(body["currency"]),
            amount_captured=int(body.get("amount_captured", 0)),
            amount_refunded=int(body.get("amount_refunded", 0)),
        )


class PaymentGateway(Protocol):
    async def authorize(
        self, *, order_id: UUID, amount_minor: int, currency: str, token: str, idempotency_key: str
    ) -> ProviderAuthorization: ...

    async def capture(self, authorization_id: str, *, idempotency_key: str) -> ProviderAuthorization: ...

    async def void(self, authorization_id: str, *, idempotency_key: str) -> ProviderAuthorization: ...

    async def refund(self, authorization_id: str, *, idempotency_key: str) -> ProviderAuthorization: ...

    async def authorizations_for(self, order_id: UUID) -> list[ProviderAuthorization]:
        """Every authorization the provider holds for an order (found by its metadata),
        including one whose answer never reached us."""
        ...

    async def token_known(self, token: str) -> bool:
        """Whether the provider knows a payment token (`ProviderUnavailable`: it did not say)."""
        ...

    async def close(self) -> None: ...


class HttpGateway:
    """The sandbox provider's REST API over aiohttp, with a timeout on every call."""

    def __init__(self, base_url: str, *, timeout: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=2.0)
        self._client: aiohttp.ClientSession | None = None  # made in the event loop, on first use

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def authorize(
        self, *, order_id: UUID, amount_minor: int, currency: str, token: str, idempotency_key: str
    ) -> ProviderAuthorization:
        body = {"amount": amount_minor, "currency": currency, "token": token, "metadata": {"order_id": str(order_id)}}
        status, answer = await self._call("POST", "/v1/authorizations", body, idempotency_key)
        if status == 402 and isinstance(answer.get("authorization"), dict):
            return ProviderAuthorization.from_json(answer["authorization"])  # declined
        return self._authorization(status, answer)

    async def capture(self, authorization_id: str, *, idempotency_key: str) -> ProviderAuthorization:
        return self._authorization(
            *await self._call("POST", f"/v1/authorizations/{authorization_id}/capture", {}, idempotency_key)
        )

    async def void(self, authorization_id: str, *, idempotency_key: str) -> ProviderAuthorization:
        return self._authorization(
            *await self._call("POST", f"/v1/authorizations/{authorization_id}/void", {}, idempotency_key)
        )

    async def refund(self, authorization_id: str, *, idempotency_key: str) -> ProviderAuthorization:
        return self._authorization(
            *await self._call("POST", f"/v1/authorizations/{authorization_id}/refund", {}, idempotency_key)
        )

    async def authorizations_for(self, order_id: UUID) -> list[ProviderAuthorization]:
        status, answer = await self._call("GET", "/v1/authorizations", None, None, params={"order_id": str(order_id)})
        if status != 200:
            raise ProviderRefused(_code(answer), _message(answer))
        return [ProviderAuthorization.from_json(item) for item in answer.get("data", [])]

    async def token_known(self, token: str) -> bool:
        status, answer = await self._call("GET", f"/v1/tokens/{quote(token, safe='')}", None, None)
        if status == 404:
            return False
        if status != 200:
            raise ProviderRefused(_code(answer), _message(answer))
        return True

    @staticmethod
    def _authorization(status: int, answer: dict[str, Any]) -> ProviderAuthorization:
        if status in (200, 201):
            return ProviderAuthorization.from_json(answer)
        raise ProviderRefused(_code(answer), _message(answer))

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        idempotency_key: str | None,
        *,
        params: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if self._client is None:
            self._client = aiohttp.ClientSession(timeout=self._timeout)
        for attempt in range(ATTEMPTS):
            last = attempt == ATTEMPTS - 1
            try:
                async with self._client.request(
                    method, self._base_url + path, json=body, headers=headers, params=params
                ) as response:
                    status, answer = response.status, await _body(response)
            except TimeoutError as exc:  # aiohttp's own timeouts are TimeoutErrors too
                raise ProviderUnavailable(f"the provider did not answer {method} {path} in time") from exc
            except aiohttp.ClientError as exc:
                if last:
                    raise ProviderUnavailable(f"the provider is unreachable: {exc!r}") from exc
                log.warning("provider unreachable; retrying", extra={"path": path, "attempt": attempt + 1})
            else:
                retryable = status >= 500 or (status == 409 and _code(answer) == "idempotency_key_in_use")
                if not retryable:
                    return status, answer
                if last:
                    raise ProviderUnavailable(f"the provider answered {status} to {method} {path}")
                log.warning("provider answered %s; retrying", status, extra={"path": path, "attempt": attempt + 1})
            await asyncio.sleep(BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)])
        raise AssertionError("unreachable")


async def _body(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = await response.json(content_type=None)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _code(answer: dict[str, Any]) -> str:
    error = answer.get("error")
    return str(error.get("code", "provider_error")) if isinstance(error, dict) else "provider_error"


def _message(answer: dict[str, Any]) -> str:
    error = answer.get("error")
    return str(error.get("message", "the provider refused")) if isinstance(error, dict) else "the provider refused"
