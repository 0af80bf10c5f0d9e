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
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.partners import ClientToken, IssueClientToken, ScopeError, parse_scope
from contracts.users import TOKENS_REVOKED, TokensRevoked
from db.tables.users import audit_log, clients
from kernel.settings import Settings
from workers.runtime.context import HandlerContext
from workers.runtime.errors import DomainError, invalid
from workers.runtime.identity import (
    service_client_id,
    service_client_name,
    service_client_secret,
    service_scope,
)
from workers.users.keys import KeyRing
from workers.users.repository import remember_revocation

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


    async def add_partner(
        self, client_id: uuid.UUID, name: str, secret_hash: str, scopes: Iterable[str], now: datetime
    ) -> bool:
        """A partner's client; False if a client of that name exists."""
        if await self._session.scalar(select(clients.c.client_id).where(clients.c.name == name)):
            return False
        await self._session.execute(
            clients.insert().values(
                client_id=client_id,
                name=name,
                kind="partner",
                secret_hash=secret_hash,
                scopes=list(scopes),
                created_at=now,
            )
        )
        return True

    async def disable_partner(self, name: str) -> uuid.UUID | None:
        """Disable the partner client `name` (a repeat keeps the first time); its id, or None."""
        found: uuid.UUID | None = await self._session.scalar(
            clients.update()
            .where(clients.c.name == name, clients.c.kind == "partner")
            .values(disabled_at=func.coalesce(clients.c.disabled_at, func.now()))
            .returning(clients.c.client_id)
        )
        return found

    async def all(self) -> list[dict[str, Any]]:
        rows = await self._session.execute(
            select(
                clients.c.name,
                clients.c.kind,
                clients.c.client_id,
                clients.c.scopes,
                clients.c.created_at,
                clients.c.disabled_at,
            ).order_by(clients.c.kind, clients.c.name)
        )
        return [
            {
                "name": r.name,
                "kind": r.kind,
                "client_id": str(r.client_id),
                "scopes": list(r.scopes),
                "created_at": r.created_at.isoformat(),
                "disabled_at": r.disabled_at.isoformat() if r.disabled_at else None,
            }
            for r in rows
        ]

    async def operator_act(self, action: str, client_id: uuid.UUID, details: dict[str, Any]) -> None:
        """An operator's act at the command line, in the audit log beside the admins' acts."""
        await self._session.execute(
            audit_log.insert().values(actor_role="operator", action=action, target_id=client_id, details=details)
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


# --- an operator's steps (`agora partners`, in a unit of work of the users schema) --------


async def register_partner(
    ctx: HandlerContext, client_id: uuid.UUID, name: str, secret_hash: str, scopes: tuple[str, ...]
) -> bool:
    """A partner's client, recorded in the audit log; False if the name is taken."""
    repo = ClientRepository(ctx.session)
    if not await repo.add_partner(client_id, name, secret_hash, scopes, datetime.now(UTC)):
        return False
    await repo.operator_act("partner.create", client_id, {"name": name, "scopes": list(scopes)})
    return True


async def disable_partner(ctx: HandlerContext, name: str, *, keep_revocations_for: timedelta) -> uuid.UUID | None:
    """No new tokens for the partner `name`, and the tokens it holds void at once (the
    revocation is kept and announced); its client id, or None if there is no such partner."""
    repo = ClientRepository(ctx.session)
    found = await repo.disable_partner(name)
    if found is None:
        return None
    await repo.operator_act("partner.disable", found, {"name": name})
    revoked = TokensRevoked(user_id=found, not_before=datetime.now(UTC), reason="disabled")
    await remember_revocation(ctx.session, revoked, keep_for=keep_revocations_for)
    await ctx.emit(TOKENS_REVOKED, revoked)
    return found
