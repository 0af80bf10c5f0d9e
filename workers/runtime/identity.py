"""Service identity: the token a worker puts on the commands it sends to other workers.

Every command carries an actor token (architecture §6). When the actor is one of
Agora's own workers (the order saga asking inventory to reserve stock), the token is a
*service token*: role `service`, `sub` = the worker's client id, scope `service:<name>`.

Each worker is an OAuth client of the users service. Its credentials come from one
per-deployment secret, `AGORA_SERVICE_SECRET`: the client id is a fixed UUID derived
from the worker's name and the client secret is an HMAC of the name under that secret,
so nothing per worker has to be distributed. The users worker keeps a `service` client
row for every worker (`provision_service_clients` in workers/users/clients.py) and
answers `users.issue_client_token.v1` for them like for any partner; the users worker
itself holds the signing key and mints its own token.

`ServiceIdentity` caches the token and renews it well before it expires. The outbox
relay asks it for the token *when it publishes* a command row, never when the row is
written: a row can wait in the outbox (broker down, backoff) longer than a token lives.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from faststream.rabbit import RabbitBroker

from contracts.partners import ISSUE_CLIENT_TOKEN, SERVICE_SCOPE_PREFIX, ClientToken, IssueClientToken
from kernel.settings import Settings
from workers.runtime.broker import request

log = logging.getLogger("agora.identity")

# Fixed forever: service client ids are derived from it, and tokens carry them as `sub`.
_SERVICE_NAMESPACE = uuid.UUID("6f1d0c3e-8a57-4f44-9d51-3c1b2a7e9f10")
# Renew when this share of the lifetime is used up: a 15-minute token is renewed after
# 10, so an outage of the users service shorter than 5 minutes goes unnoticed.
_RENEW_AT = 2 / 3
# While a renewal keeps failing, try again this often (not on every publish).
_RETRY_SECONDS = 5.0
# A token this close to its expiry is not stamped on anything: it might be verified late.
_MIN_REMAINING_SECONDS = 30.0


class IdentityUnavailable(Exception):
    """No valid service token: none configured, or the users service did not issue one."""


def service_client_id(name: str) -> uuid.UUID:
    return uuid.uuid5(_SERVICE_NAMESPACE, f"agora-service:{name}")


def service_client_name(name: str) -> str:
    # A dot cannot appear in a partner name, so the two never clash.
    return f"service.{name}"


def service_scope(name: str) -> str:
    return f"{SERVICE_SCOPE_PREFIX}{name}"


def service_client_secret(deployment_secret: str, name: str) -> str:
    """The client secret of worker `name`: an HMAC, so only holders of the deployment secret know it."""
    if not deployment_secret:
        raise IdentityUnavailable("AGORA_SERVICE_SECRET is not set: workers have no service identity")
    mac = hmac.new(deployment_secret.encode(), f"agora service client:{name}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: float


TokenSource = Callable[[], Awaitable[IssuedToken]]


class ServiceIdentity:
    """The current service token of one worker process: cached, renewed before expiry."""

    def __init__(self, name: str, source: TokenSource, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._source = source
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def authorization(self) -> str:
        """The `authorization` header value for a command sent now."""
        return f"Bearer {await self.token()}"

    async def token(self) -> str:
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        async with self._lock:  # one renewal at a time; the others wait for its result
            now = self._clock()
            if self._token is not None and now < self._renew_at:
                return self._token
            try:
                issued = await self._source()
            except Exception as exc:
                if self._token is not None and now < self._expires_at - _MIN_REMAINING_SECONDS:
                    log.warning("service token renewal failed; using the current one", extra={"error": repr(exc)})
                    self._renew_at = now + _RETRY_SECONDS
                    return self._token
                raise IdentityUnavailable(f"no service token for {self.name}: {exc!r}") from exc
            self._token = issued.token
            self._expires_at = now + issued.expires_in
            self._renew_at = now + issued.expires_in * _RENEW_AT
            return self._token


def bus_token_source(broker: RabbitBroker, settings: Settings, name: str) -> TokenSource:
    """Get the token from the users service over the bus, with the worker's client credentials."""
    command = IssueClientToken(
        client_id=str(service_client_id(name)),
        client_secret=service_client_secret(settings.service_secret, name),
        scope=service_scope(name),
    )

    async def fetch() -> IssuedToken:
        reply = await request(broker, ISSUE_CLIENT_TOKEN, command, within=settings.rpc_timeout_seconds)
        if not reply.ok or reply.data is None:
            raise IdentityUnavailable(f"the users service refused a token: {reply.error}")
        issued = ClientToken.model_validate(reply.data)
        return IssuedToken(issued.access_token, float(issued.expires_in))

    return fetch
