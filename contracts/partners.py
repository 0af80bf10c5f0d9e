"""Clients of the client-credentials grant (partner systems, Agora's own services) and their scopes.

A partner system gets a client id and secret (`agora partners create`), trades them
for a short-lived access token (`POST /api/oauth/token`, which sends
`users.issue_client_token.v1`), and sends commands with that token in the
`authorization` header. What a partner may send is decided by its **scopes**: each
scope names the command routing keys it allows. The same table sets the partner's
RabbitMQ topic permissions and is checked again by every worker (workers/runtime),
because the broker is not trusted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import StringConstraints

from contracts.base import SECRET, Contract
from contracts.topology import CommandSpec


@dataclass(frozen=True)
class Scope:
    name: str
    description: str
    # Routing keys (`service.name.vN`) of the commands this scope allows.
    routing_keys: tuple[str, ...]


# The partner scopes. Several name commands of services that arrive in later issues;
# the routing keys are part of the contract already, so partners can be set up now.
SCOPES: dict[str, Scope] = {
    s.name: s
    for s in (
        Scope(
            "catalog:read",
            "Read products, search the catalog and its autocomplete.",
            ("catalog.get_product.v1", "catalog.search_products.v1", "catalog.suggest_products.v1"),
        ),
        Scope("orders:read", "Read orders the partner placed.", ("orders.get_order.v1",)),
        Scope(
            "orders:write",
            "Place orders on behalf of the partner, and pay again one whose payment failed.",
            ("orders.place_order.v1", "orders.pay_order.v1"),
        ),
        Scope(
            "orders:members",
            "Place orders for a member named in `on_behalf_of` (with orders:write).",
            ("orders.place_order.v1",),
        ),
    )
}

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), space-delimited.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
SERVICE_SCOPE_PREFIX = "service:"


class ScopeError(ValueError):
    """A scope string that is malformed or names scopes that do not exist."""


def parse_scope(value: str | None) -> tuple[str, ...]:
    """The scope tokens of a space-delimited `scope` parameter, in order, without repeats."""
    tokens = (value or "").split(" ")
    names = [t for t in tokens if t]
    if bad := [t for t in names if not _SCOPE_TOKEN.fullmatch(t)]:
        raise ScopeError(f"malformed scope {bad[0]!r}")
    return tuple(dict.fromkeys(names))


def partner_scopes(names: Iterable[str]) -> tuple[str, ...]:
    """Validate scope names for a new partner; refuse an empty or unknown one."""
    chosen = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not chosen:
        raise ScopeError("at least one scope is required")
    if unknown := [n for n in chosen if n not in SCOPES]:
        raise ScopeError(f"unknown scope {unknown[0]!r}; known: {', '.join(sorted(SCOPES))}")
    return chosen


def allowed_routing_keys(scopes: Iterable[str]) -> tuple[str, ...]:
    """Every command routing key the scopes allow, sorted (unknown scopes allow nothing)."""
    return tuple(sorted({key for s in scopes if s in SCOPES for key in SCOPES[s].routing_keys}))


def scope_allows(scopes: Iterable[str], routing_key: str) -> bool:
    return routing_key in allowed_routing_keys(scopes)


def topic_write_pattern(scopes: Iterable[str]) -> str:
    """A RabbitMQ topic-permission regex that matches exactly the scopes' routing keys."""
    keys = allowed_routing_keys(scopes)
    if not keys:
        raise ScopeError("the scopes allow no routing key")
    return "^(" + "|".join(re.escape(k) for k in keys) + ")$"


ClientId = Annotated[str, StringConstraints(min_length=1, max_length=100)]
ClientSecret = Annotated[str, StringConstraints(min_length=1, max_length=200), SECRET]


class IssueClientToken(Contract):
    """Client credentials for an access token (RFC 6749 §4.4). No scope asks for all the client has."""

    client_id: ClientId
    client_secret: ClientSecret
    scope: Annotated[str, StringConstraints(max_length=1000)] | None = None
    # Set by the edge: a request from the internet, where Agora's own services'
    # clients get no token (they ask over the bus).
    public: bool = False


class ClientToken(Contract):
    """RFC 6749 §5.1: the token, its type, its lifetime in seconds, and the scopes granted."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str


ISSUE_CLIENT_TOKEN = CommandSpec(
    "users",
    "issue_client_token",
    1,
    IssueClientToken,
    ClientToken,
    # Nothing is stored, so no inbox: a redelivery just signs another token.
    kind="query",
    summary="Exchange a client's id and secret for an access token with scopes (client-credentials grant).",
)

COMMANDS = (ISSUE_CLIENT_TOKEN,)
