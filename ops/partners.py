"""`agora partners`: partner systems, their OAuth clients and their RabbitMQ users.

`create NAME --scopes a,b` makes two things that belong together:

- a `partner` row in `users.clients` (client id, SHA-256 of the secret, scopes), for
  `POST /api/oauth/token`;
- a RabbitMQ user `partner-NAME` in Agora's vhost that may publish only to
  `agora.commands`, only with the routing keys its scopes allow (a topic permission),
  may declare nothing, and reads its RPC replies through direct reply-to
  (`amq.rabbitmq.reply-to` needs no read permission; verified on RabbitMQ 3.10).

The secrets are printed once and stored nowhere in clear. docs/partners.md is the
partner's side of this.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aiohttp
from sqlalchemy import Insert, func, select
from sqlalchemy.exc import IntegrityError

from contracts.partners import partner_scopes, topic_write_pattern
from contracts.topology import COMMANDS_EXCHANGE
from contracts.users import TOKENS_REVOKED, TokensRevoked
from db.engine import make_engine, make_sessionmaker
from db.tables.users import audit_log, clients
from kernel.settings import Settings
from workers.users.clients import hash_client_secret, new_client_secret
from workers.users.model import revocation_window
from workers.users.repository import emit_outside_a_delivery, remember_revocation

# Lower-case letters, digits and dashes: it becomes part of a RabbitMQ user name.
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")
_TIMEOUT = aiohttp.ClientTimeout(total=30)


class PartnerError(Exception):
    """The operator asked for something that cannot be done (a clash, an unknown scope, ...)."""


@dataclass(frozen=True)
class PartnerCredentials:
    name: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    amqp_username: str
    amqp_password: str
    amqp_url: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def amqp_username(name: str) -> str:
    return f"partner-{name}"


def broker_permissions(scopes: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The vhost permissions and the topic permissions of a partner's RabbitMQ user."""
    vhost = {"configure": "^$", "write": f"^{re.escape(COMMANDS_EXCHANGE)}$", "read": "^$"}
    topic = {"exchange": COMMANDS_EXCHANGE, "write": topic_write_pattern(scopes), "read": "^$"}
    return vhost, topic


def vhost_of(amqp_url: str) -> str:
    """The vhost an AMQP URL names: its path, percent-decoded; none is `/`."""
    return unquote(urlsplit(amqp_url).path[1:]) or "/"


def amqp_url_for(amqp_url: str, username: str, password: str) -> str:
    parts = urlsplit(amqp_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class RabbitAdmin:
    """The few calls of RabbitMQ's management HTTP API that partners need."""

    def __init__(self, management_url: str, vhost: str) -> None:
        parts = urlsplit(management_url)
        self._auth = aiohttp.BasicAuth(unquote(parts.username or "guest"), unquote(parts.password or "guest"))
        host = parts.hostname or "127.0.0.1"
        self._base = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "") + parts.path.rstrip("/")
        self._vhost = quote(vhost, safe="")

    async def __aenter__(self) -> RabbitAdmin:
        self._http = aiohttp.ClientSession(auth=self._auth, timeout=_TIMEOUT)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.close()

    async def user_exists(self, user: str) -> bool:
        return await self._call("GET", f"/api/users/{quote(user, safe='')}", ok=(200, 404)) == 200

    async def create_user(self, user: str, password: str, *, scopes: Sequence[str]) -> None:
        vhost, topic = broker_permissions(scopes)
        name = quote(user, safe="")
        # No tags: the user cannot log in to the management UI or API.
        await self._call("PUT", f"/api/users/{name}", {"password": password, "tags": ""})
        await self._call("PUT", f"/api/permissions/{self._vhost}/{name}", vhost)
        await self._call("PUT", f"/api/topic-permissions/{self._vhost}/{name}", topic)

    async def delete_user(self, user: str) -> None:
        """Delete the user (RabbitMQ closes its open connections); an absent user is fine."""
        await self._call("DELETE", f"/api/users/{quote(user, safe='')}", ok=(204, 404))

    async def _call(
        self, method: str, path: str, body: dict[str, str] | None = None, *, ok: tuple[int, ...] = (200, 201, 204)
    ) -> int:
        try:
            async with self._http.request(method, self._base + path, json=body) as resp:
                if resp.status not in ok:
                    raise PartnerError(f"RabbitMQ management API: {method} {path} → {resp.status} {await resp.text()}")
                return resp.status
        except aiohttp.ClientError as exc:
            raise PartnerError(f"RabbitMQ management API unreachable at {self._base}: {exc}") from exc


async def create_partner(settings: Settings, name: str, scope_names: Sequence[str]) -> PartnerCredentials:
    if not _NAME.fullmatch(name):
        raise PartnerError("a partner name is 2-40 of a-z, 0-9 and '-', starting with a letter or digit")
    try:
        scopes = partner_scopes(scope_names)
    except ValueError as exc:
        raise PartnerError(str(exc)) from None
    secret, password = new_client_secret(), secrets.token_urlsafe(24)
    credentials = PartnerCredentials(
        name=name,
        client_id=str(uuid.uuid4()),
        client_secret=secret,
        scopes=scopes,
        amqp_username=amqp_username(name),
        amqp_password=password,
        amqp_url=amqp_url_for(settings.amqp_url, amqp_username(name), password),
    )
    engine = make_engine(settings.database_url, pool_size=1, application_name="agora-partners")
    broker_user_created = False
    try:
        async with RabbitAdmin(settings.rabbitmq_management_url, vhost_of(settings.amqp_url)) as rabbit:
            try:
                # The row and the broker user are made in one database transaction: if
                # the broker refuses, the row is rolled back; if the commit fails, the
                # broker user is deleted again.
                async with make_sessionmaker(engine).begin() as session:
                    if await session.scalar(select(clients.c.client_id).where(clients.c.name == name)):
                        raise PartnerError(f"a client named {name!r} already exists")
                    await session.execute(
                        clients.insert().values(
                            client_id=uuid.UUID(credentials.client_id),
                            name=name,
                            kind="partner",
                            secret_hash=hash_client_secret(secret),
                            scopes=list(scopes),
                            created_at=datetime.now(UTC),
                        )
                    )
                    await session.execute(
                        _operator_audit("partner.create", credentials.client_id, {"name": name, "scopes": list(scopes)})
                    )
                    if await rabbit.user_exists(credentials.amqp_username):
                        raise PartnerError(f"RabbitMQ user {credentials.amqp_username!r} already exists")
                    broker_user_created = True
                    await rabbit.create_user(credentials.amqp_username, password, scopes=scopes)
            except IntegrityError:  # a concurrent create with the same name won
                raise PartnerError(f"a client named {name!r} already exists") from None
            except BaseException:
                if broker_user_created:
                    await rabbit.delete_user(credentials.amqp_username)
                raise
    finally:
        await engine.dispose()
    return credentials


async def list_clients(settings: Settings) -> list[dict[str, Any]]:
    engine = make_engine(settings.database_url, pool_size=1, application_name="agora-partners")
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
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
    finally:
        await engine.dispose()


async def disable_partner(settings: Settings, name: str) -> None:
    """No new tokens and no broker access from now on; the tokens it holds are void at once."""
    engine = make_engine(settings.database_url, pool_size=1, application_name="agora-partners")
    try:
        async with make_sessionmaker(engine).begin() as session:
            found = await session.scalar(
                clients.update()
                .where(clients.c.name == name, clients.c.kind == "partner")
                .values(disabled_at=func.coalesce(clients.c.disabled_at, func.now()))
                .returning(clients.c.client_id)
            )
            if found is None:
                raise PartnerError(f"no partner named {name!r}")
            await session.execute(_operator_audit("partner.disable", str(found), {"name": name}))
            revoked = TokensRevoked(user_id=found, not_before=datetime.now(UTC), reason="disabled")
            await remember_revocation(session, revoked, keep_for=revocation_window(settings.access_token_ttl_seconds))
            await emit_outside_a_delivery(session, TOKENS_REVOKED, revoked)
            async with RabbitAdmin(settings.rabbitmq_management_url, vhost_of(settings.amqp_url)) as rabbit:
                await rabbit.delete_user(amqp_username(name))
    finally:
        await engine.dispose()


def _operator_audit(action: str, client_id: str, details: dict[str, Any]) -> Insert:
    """An operator's act at the command line, in the audit log beside the admins' acts."""
    return audit_log.insert().values(
        actor_role="operator", action=action, target_id=uuid.UUID(client_id), details=details
    )
