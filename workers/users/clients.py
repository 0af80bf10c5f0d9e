"""OAuth clients of the users service: partner systems and Agora's own workers.

The client-credentials grant (RFC 6749 §4.4): load the client, check its secret,
decide which scopes to grant, sign a token. A client is a row of `users.clients`
(`agora partners create` adds partners; `provision_service_clients` keeps one
`service` client per worker). Its id is the token's `sub` and its kind the token's
role, so workers can tell a partner (held to its scopes) from a service.

Client secrets are 256-bit random strings, so a SHA-256 of the secret is as good a
verifier as a slow password hash and costs nothing per token request.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.partners import ClientToken, IssueClientToken, ScopeError, parse_scope
from db.tables.users import clients
from kernel.settings import Settings
from workers.runtime.errors import DomainError, invalid
from workers.runtime.identity import (
    service_client_id,
    service_client_name,
    service_client_secret,
    service_scope,
)
from workers.runtime.service import HandlerContext
from workers.users.keys import KeyRing

log = logging.getLogger("agora.users.clients")

# One answer for an unknown client, a wrong secret and a disabled client (RFC 6749
# §5.2 `invalid_client`): the caller learns nothing about which client ids exist.
_BAD_CLIENT = "client authentication failed"
# Compared against when the client is unknown, so that case takes the same path.
_DUMMY_HASH = hashlib.sha256(b"no such client").hexdigest()


# --- the decision (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    client_id: uuid.UUID
    name: str
    kind: str  # "partner" or "service": the role of its tokens
    secret_hash: str
    scopes: tuple[str, ...]
    disabled: bool


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_client_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(client: Client | None, secret: str) -> bool:
    expected = client.secret_hash if client is not None else _DUMMY_HASH
    # Constant time: the comparison must not reveal how much of a guess was right.
    matches = hmac.compare_digest(hash_client_secret(secret), expected)
    return matches and client is not None and not client.disabled


def grant_scopes(allowed: Iterable[str], requested: str | None) -> tuple[str, ...]:
    """The scopes to grant: all the client has when none are asked for, else exactly those asked.

    Asking for a scope the client does not have is refused (`invalid_scope`) rather
    than silently narrowed, so a misconfigured partner finds out at once.
    """
    have = tuple(allowed)
    asked = parse_scope(requested)
    if not asked:
        return have
    if beyond := [s for s in asked if s not in have]:
        raise ScopeError(f"{beyond[0]!r} is not granted to this client")
    return asked


# --- loading and saving -------------------------------------------------------------------


class ClientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, client_id: uuid.UUID) -> Client | None:
        row = (await self._session.execute(select(clients).where(clients.c.client_id == client_id))).first()
        return _to_client(row) if row else None

    async def put_service_client(self, name: str, secret_hash: str) -> None:
        """Create or update a worker's service client (its secret follows AGORA_SERVICE_SECRET)."""
        stmt = insert(clients).values(
            client_id=service_client_id(name),
            name=service_client_name(name),
            kind="service",
            secret_hash=secret_hash,
            scopes=[service_scope(name)],
            created_at=datetime.now(UTC),
        )
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[clients.c.client_id],
                set_={"secret_hash": stmt.excluded.secret_hash, "scopes": stmt.excluded.scopes},
            )
        )


def _to_client(row: Any) -> Client:
    return Client(
        client_id=row.client_id,
        name=row.name,
        kind=row.kind,
        secret_hash=row.secret_hash,
        scopes=tuple(row.scopes),
        disabled=row.disabled_at is not None,
    )


# --- the use case -------------------------------------------------------------------------


class ClientHandlers:
    def __init__(self, keys: KeyRing, settings: Settings) -> None:
        self._keys = keys
        self._settings = settings

    async def issue_client_token(self, cmd: IssueClientToken, ctx: HandlerContext) -> ClientToken:
        client_id = _uuid(cmd.client_id)
        client = await ClientRepository(ctx.session).get(client_id) if client_id else None
        authenticated = secret_matches(client, cmd.client_secret)  # hashed and compared even for no client
        if client is None or not authenticated or (cmd.public and client.kind == "service"):
            log.info("security: client authentication failed", extra={"client_id": cmd.client_id[:64]})
            raise DomainError("unauthorized", _BAD_CLIENT)
        try:
            granted = grant_scopes(client.scopes, cmd.scope)
        except ScopeError as exc:
            raise invalid("scope", str(exc)) from None
        token = await self._keys.access_token(ctx.session, user_id=client.client_id, role=client.kind, scopes=granted)
        ttl = self._settings.access_token_ttl_seconds
        return ClientToken(access_token=token, expires_in=ttl, scope=" ".join(granted))


async def provision_service_clients(session: AsyncSession, settings: Settings, names: Iterable[str]) -> None:
    """Keep a `service` client for every worker, with the secret derived from AGORA_SERVICE_SECRET."""
    if not settings.service_secret:
        log.warning("AGORA_SERVICE_SECRET is not set: workers cannot obtain service tokens")
        return
    repo = ClientRepository(session)
    for name in names:
        await repo.put_service_client(name, hash_client_secret(service_client_secret(settings.service_secret, name)))


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
