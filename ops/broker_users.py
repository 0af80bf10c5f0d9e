"""Least-privilege broker identities: one RabbitMQ user per process kind (issue 13).

Every worker connects as `agora-<service>` and the edge as `agora-edge`, never as the
administrator. Each may configure, write and read exactly the exchanges and queues it
declares, publishes to and consumes from; on `agora.events` a service may publish only
its own events' routing keys (`<service>.*`), and every event it publishes carries its
user name as `user_id`, which RabbitMQ refuses unless it is the connection's user, so a
consumer knows which service an event really came from (workers/runtime/service.py
dead-letters one from anyone else).

Passwords come from `AGORA_BROKER_PASSWORD_<PROCESS>` (scripts/up generates them into
`.run/agora.env`; a deployment keeps them in its secret store). `agora broker setup`
creates the users, their permissions and the dead-letter queues' length bound with the
administrator's management URL; `process_env` is the environment each process starts
with: its own broker URL, and none of the secrets it does not use.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aiohttp

from contracts.topology import (
    COMMANDS_EXCHANGE,
    DEAD_LETTER_EXCHANGE,
    DELAY_EXCHANGE,
    EVENTS_EXCHANGE,
    RETRY_EXCHANGE,
    UNROUTED_EXCHANGE,
    broker_user,
)
from kernel.settings import SERVICES

EDGE = "edge"
PROCESSES = (EDGE, *SERVICES)
# Everything a worker runtime declares besides its own queues (workers/runtime/broker.py).
_SHARED_EXCHANGES = (COMMANDS_EXCHANGE, EVENTS_EXCHANGE, DEAD_LETTER_EXCHANGE, UNROUTED_EXCHANGE, DELAY_EXCHANGE)
_SHARED = "|".join(re.escape(name) for name in (*_SHARED_EXCHANGES, RETRY_EXCHANGE))
# The exclusive queues that follow events, unnamed by their declarers: aio-pika's robust
# channels name them `amq_<hex>` (RabbitMQ itself would say `amq.gen-…`).
_PRIVATE = r"amq_[0-9a-f]+|amq\.gen-.*"
_DELAY_QUEUES = r"agora\.delay\.\d+s"
_EDGE_REPLIES = r"agora\.edge\.replies\..*"
# What a process must not see: the secrets of the others and of the operator.
_PASSWORD_PREFIX = "AGORA_BROKER_PASSWORD_"
_EDGE_NEVER = (
    "AGORA_DATA_KEYS",
    "AGORA_DATA_KEY_ID",
    "AGORA_DATABASE_URL",
    "AGORA_SERVICE_SECRET",
    # The payment provider's keys: the edge forwards webhooks, the payments worker verifies them.
    "AGORA_STRIPE_SECRET_KEY",
    "AGORA_STRIPE_WEBHOOK_SECRET",
)


class BrokerSetupError(Exception):
    """The management API refused or could not be reached; the message says which call."""


def username(process: str) -> str:
    return broker_user(process)


def password_variable(process: str) -> str:
    return _PASSWORD_PREFIX + process.upper()


@dataclass(frozen=True)
class Permissions:
    configure: str
    write: str
    read: str
    # (exchange, write, read) topic permissions: routing keys this user may use there.
    topics: tuple[tuple[str, str, str], ...] = ()
    # "management": may list this vhost's queues over the management API (the dashboard).
    tags: str = ""


def _only(*patterns: str) -> str:
    return "^(" + "|".join(patterns) + ")$"


def permissions(process: str) -> Permissions:
    if process == EDGE:
        return Permissions(
            # Its reply queue and the exclusive queues of its cache and revocation feeds.
            configure=_only(_EDGE_REPLIES, _PRIVATE),
            # Commands; binding its own queues; dead letters replayed from the dashboard
            # go back through agora.retry; replies to nobody (amq.default is not writable).
            write=_only(re.escape(COMMANDS_EXCHANGE), re.escape(RETRY_EXCHANGE), _EDGE_REPLIES, _PRIVATE),
            read=_only(re.escape(EVENTS_EXCHANGE), _EDGE_REPLIES, _PRIVATE, r".*\.dlq"),
            topics=((EVENTS_EXCHANGE, "^$", ".*"), (COMMANDS_EXCHANGE, ".*", "^$")),
            tags="management",
        )
    own = rf"{re.escape(process)}\..*"
    shared_queues = (_DELAY_QUEUES, re.escape(UNROUTED_EXCHANGE))
    return Permissions(
        configure=_only(_SHARED, *shared_queues, own, _PRIVATE),
        # Publishing: commands and its own events, dead letters and delayed retries of
        # its own queues, replies (the default exchange). Binding: the queues it binds.
        write=_only(_SHARED, "amq\\.default", *shared_queues, own, _PRIVATE),
        read=_only(_SHARED, *shared_queues, own, _PRIVATE),
        topics=((EVENTS_EXCHANGE, rf"^{re.escape(process)}\.", ".*"), (COMMANDS_EXCHANGE, ".*", ".*")),
    )


def with_credentials(url: str, user: str, password: str) -> str:
    """`url` (AMQP or management HTTP) with these credentials instead of its own."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def process_env(process: str, env: Mapping[str, str]) -> dict[str, str]:
    """The environment to start `process` with (`edge` or a service name): its own broker
    identity, and nothing of the operator's or another process's secrets. No settings
    file is read (`AGORA_ENV_FILE` empty): what the process may know is in here."""
    password = env.get(password_variable(process))
    if not password:
        raise BrokerSetupError(f"{password_variable(process)} is not set (scripts/up writes it to .run/agora.env)")
    started = {k: v for k, v in env.items() if not k.startswith(_PASSWORD_PREFIX)}
    started["AGORA_ENV_FILE"] = ""
    started["AGORA_AMQP_URL"] = with_credentials(env.get("AGORA_AMQP_URL", _DEFAULT_AMQP), username(process), password)
    management = env.get("AGORA_RABBITMQ_MANAGEMENT_URL", _DEFAULT_MANAGEMENT)
    if process == EDGE:
        started["AGORA_RABBITMQ_MANAGEMENT_URL"] = with_credentials(management, username(process), password)
        for name in _EDGE_NEVER:
            started.pop(name, None)
    else:
        started.pop("AGORA_RABBITMQ_MANAGEMENT_URL", None)  # the administrator's
    return started


_DEFAULT_AMQP = "amqp://agora:agora@127.0.0.1:5672/"
_DEFAULT_MANAGEMENT = "http://agora:agora@127.0.0.1:15672"


def vhost_of(amqp_url: str) -> str:
    """The vhost an AMQP URL names: its path, percent-decoded; none is `/`."""
    return unquote(urlsplit(amqp_url).path[1:]) or "/"


async def set_up(
    management_url: str, vhost: str, passwords: Mapping[str, str], *, dead_letter_max_length: int
) -> None:
    """Create or update every process's user and permissions in `vhost`, and bound its
    dead-letter queues (a policy: it applies to queues that exist already too)."""
    async with _Management(management_url) as api:
        v = quote(vhost, safe="")
        for process in PROCESSES:
            user, rights = quote(username(process), safe=""), permissions(process)
            await api.put(f"/users/{user}", {"password": passwords[process], "tags": rights.tags})
            await api.put(
                f"/permissions/{v}/{user}",
                {"configure": rights.configure, "write": rights.write, "read": rights.read},
            )
            for exchange, write, read in rights.topics:
                await api.put(f"/topic-permissions/{v}/{user}", {"exchange": exchange, "write": write, "read": read})
        # At the bound the oldest dead letters are dropped, never the work queues'
        # messages (docs/operations.md); agora_dead_letter_queue_depth warns before.
        await api.put(
            f"/policies/{v}/agora-dead-letters",
            {
                "pattern": r"\.dlq$",
                "apply-to": "queues",
                "priority": 1,
                "definition": {"max-length": dead_letter_max_length, "overflow": "drop-head"},
            },
        )


class _Management:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        credentials = f"{unquote(parts.username or 'guest')}:{unquote(parts.password or 'guest')}"
        self._headers = {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
        port = f":{parts.port}" if parts.port else ""
        self._base = f"{parts.scheme}://{parts.hostname or '127.0.0.1'}{port}{parts.path.rstrip('/')}/api"

    async def __aenter__(self) -> _Management:
        self._http = aiohttp.ClientSession(headers=self._headers, timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.close()

    async def put(self, path: str, body: dict[str, Any]) -> None:
        try:
            async with self._http.put(self._base + path, json=body) as resp:
                if resp.status not in (200, 201, 204):
                    raise BrokerSetupError(f"PUT {path}: {resp.status} {await resp.text()}")
        except aiohttp.ClientError as exc:
            raise BrokerSetupError(f"the management API at {self._base} is unreachable: {exc}") from exc
