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
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aiohttp
from sqlalchemy.exc import IntegrityError

from contracts.partners import partner_scopes, topic_write_pattern
from contracts.topology import COMMANDS_EXCHANGE
from kernel.settings import Settings
from workers.runtime.context import operator_unit_of_work
from workers.users.clients import ClientRepository, hash_client_secret, new_client_secret, register_partner
from workers.users.clients import disable_partner as disable_partner_client
from workers.users.model import revocation_window

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
        vhost, _ = broker_permissions(scopes)
        name = quote(user, safe="")
        # No tags: the user cannot log in to the management UI or API.
        await self._call("PUT", f"/api/users/{name}", {"password": password, "tags": ""})
        await self._call("PUT", f"/api/permissions/{self._vhost}/{name}", vhost)
        await self.set_topic_permission(user, scopes=scopes)

    async def set_topic_permission(self, user: str, *, scopes: Sequence[str]) -> None:
        _, topic = broker_permissions(scopes)
        await self._call("PUT", f"/api/topic-permissions/{self._vhost}/{quote(user, safe='')}", topic)

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
    broker_user_created = False
    async with RabbitAdmin(settings.rabbitmq_management_url, vhost_of(settings.amqp_url)) as rabbit:
        try:
            # The row and the broker user are made in one database transaction: if the
            # broker refuses, the row is rolled back; if the commit fails, the broker
            # user is deleted again.
            async with operator_unit_of_work(settings, "users") as ctx:
                client_id = uuid.UUID(credentials.client_id)
                if not await register_partner(ctx, client_id, name, hash_client_secret(secret), scopes):
                    raise PartnerError(f"a client named {name!r} already exists")
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
    return credentials


async def list_clients(settings: Settings) -> list[dict[str, Any]]:
    async with operator_unit_of_work(settings, "users") as ctx:
        return await ClientRepository(ctx.session).all()


async def disable_partner(settings: Settings, name: str) -> None:
    """No new tokens and no broker access from now on; the tokens it holds are void at once."""
    async with operator_unit_of_work(settings, "users") as ctx:
        window = revocation_window(settings.access_token_ttl_seconds)
        if await disable_partner_client(ctx, name, keep_revocations_for=window) is None:
            raise PartnerError(f"no partner named {name!r}")
        async with RabbitAdmin(settings.rabbitmq_management_url, vhost_of(settings.amqp_url)) as rabbit:
            await rabbit.delete_user(amqp_username(name))


async def sync_partners(settings: Settings) -> list[str]:
    """Rewrite each active partner's topic permission from its scopes as they are defined
    now (after a release added a routing key to a scope, or a new contract version): the
    names of the partners whose broker user was updated."""
    synced = []
    async with RabbitAdmin(settings.rabbitmq_management_url, vhost_of(settings.amqp_url)) as rabbit:
        for row in await list_clients(settings):
            if row["kind"] == "partner" and row["disabled_at"] is None:
                user = amqp_username(row["name"])
                if await rabbit.user_exists(user):
                    await rabbit.set_topic_permission(user, scopes=row["scopes"])
                    synced.append(row["name"])
    return synced
