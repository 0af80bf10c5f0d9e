"""Pure pieces of partner access: scopes, the token request and its errors, service identity."""

from __future__ import annotations

import base64
import re
import uuid
from urllib.parse import quote_plus

import pytest

from contracts.errors import ErrorReply, FieldError
from contracts.partners import (
    SCOPES,
    ScopeError,
    allowed_routing_keys,
    parse_scope,
    partner_scopes,
    scope_allows,
    topic_write_pattern,
)
from edge.routes.partners import OAuthProblem, oauth_error_of, token_command
from ops.partners import amqp_url_for, broker_permissions, vhost_of
from workers.runtime.identity import (
    IdentityUnavailable,
    IssuedToken,
    ServiceIdentity,
    service_client_id,
    service_client_secret,
)
from workers.users.clients import Client, grant_scopes, hash_client_secret, secret_matches

GRANT = {"grant_type": ["client_credentials"]}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{quote_plus(user)}:{quote_plus(password)}".encode()).decode()


# --- scopes -------------------------------------------------------------------------------


def test_every_scope_names_command_routing_keys() -> None:
    for scope in SCOPES.values():
        assert re.fullmatch(r"[a-z]+:[a-z]+", scope.name) and scope.description
        for key in scope.routing_keys:
            assert re.fullmatch(r"[a-z]+\.[a-z_]+\.v[0-9]+", key), key


def test_scope_parsing_follows_rfc_6749() -> None:
    assert parse_scope(None) == parse_scope("") == ()
    assert parse_scope("orders:read  catalog:read orders:read") == ("orders:read", "catalog:read")
    for bad in ('orders"read', "orders\\read", "caf\u00e9"):
        with pytest.raises(ScopeError):
            parse_scope(bad)


def test_a_partner_needs_known_scopes() -> None:
    assert partner_scopes([" catalog:read", "orders:read", "catalog:read"]) == ("catalog:read", "orders:read")
    for bad in ([], [""], ["admin:all"]):
        with pytest.raises(ScopeError):
            partner_scopes(bad)


def test_scopes_allow_exactly_their_routing_keys() -> None:
    assert scope_allows({"catalog:read"}, "catalog.get_product.v1")
    assert not scope_allows({"catalog:read"}, "orders.place_order.v1")
    assert not scope_allows({"service:orders", "nonsense"}, "orders.place_order.v1")
    assert allowed_routing_keys(["orders:write", "orders:read"]) == (
        "orders.get_order.v1",
        "orders.pay_order.v1",
        "orders.place_order.v1",
    )


def test_the_topic_permission_matches_nothing_but_the_scopes_keys() -> None:
    pattern = re.compile(topic_write_pattern(["catalog:read"]))
    assert pattern.search("catalog.get_product.v1") and pattern.search("catalog.search_products.v1")
    for other in ("catalogXget_product.v1", "catalog.get_product.v10", "x.catalog.get_product.v1", "users.get_user.v1"):
        assert not pattern.search(other), other
    with pytest.raises(ScopeError):
        topic_write_pattern([])


def test_broker_permissions_allow_publishing_commands_only() -> None:
    vhost, topic = broker_permissions(["orders:read"])
    assert vhost == {"configure": "^$", "write": r"^agora\.commands$", "read": "^$"}
    assert topic["exchange"] == "agora.commands" and topic["read"] == "^$"
    assert vhost_of("amqp://a:b@h:5672/") == vhost_of("amqp://h") == "/"
    assert vhost_of("amqp://h/agora_test2") == "agora_test2" and vhost_of("amqp://h/%2Fprod") == "/prod"
    assert amqp_url_for("amqp://agora:agora@h:5672/v", "partner-x", "p/w") == "amqp://partner-x:p%2Fw@h:5672/v"


# --- granting -----------------------------------------------------------------------------


def _client(**overrides: object) -> Client:
    fields: dict[str, object] = {
        "client_id": uuid.uuid4(),
        "name": "acme",
        "kind": "partner",
        "secret_hash": hash_client_secret("s3cret"),
        "scopes": ("catalog:read", "orders:read"),
        "disabled": False,
    }
    return Client(**{**fields, **overrides})  # type: ignore[arg-type]


def test_no_scope_asked_grants_all_and_more_than_allowed_is_refused() -> None:
    allowed = ("catalog:read", "orders:read")
    assert grant_scopes(allowed, None) == allowed
    assert grant_scopes(allowed, "orders:read") == ("orders:read",)
    with pytest.raises(ScopeError):
        grant_scopes(allowed, "orders:read orders:write")


def test_a_secret_matches_only_its_enabled_client() -> None:
    assert secret_matches(_client(), "s3cret")
    assert not secret_matches(_client(), "s3cret ")
    assert not secret_matches(_client(disabled=True), "s3cret")
    assert not secret_matches(None, "s3cret")


# --- the token request and its errors -----------------------------------------------------


def _refusal(form: dict[str, list[str]], authorization: str | None = None) -> tuple[int, str]:
    with pytest.raises(OAuthProblem) as info:
        token_command(form, authorization)
    return info.value.status, info.value.error


def test_basic_and_form_authentication() -> None:
    basic = token_command({**GRANT, "scope": ["orders:read"]}, _basic("id:1 +", "s&=cret"))
    assert (basic.client_id, basic.client_secret, basic.scope) == ("id:1 +", "s&=cret", "orders:read")
    post = token_command({**GRANT, "client_id": ["abc"], "client_secret": ["xyz"], "scope": [""]}, None)
    assert (post.client_id, post.client_secret, post.scope) == ("abc", "xyz", None)  # empty = omitted


def test_malformed_requests_get_the_rfc_error() -> None:
    creds = {"client_id": ["abc"], "client_secret": ["xyz"]}
    assert _refusal({**creds}) == (400, "invalid_request")
    assert _refusal({"grant_type": ["client_credentials", "client_credentials"], **creds}) == (400, "invalid_request")
    assert _refusal({"grant_type": ["authorization_code"], **creds}) == (400, "unsupported_grant_type")
    assert _refusal({**GRANT, **creds, "scope": ['a"b']}) == (400, "invalid_scope")
    assert _refusal({**GRANT, **creds, "scope": ["a" * 1001]}) == (400, "invalid_scope")
    assert _refusal({**GRANT, "client_secret": ["xyz"]}, _basic("abc", "xyz")) == (400, "invalid_request")
    assert _refusal({**GRANT, "client_id": ["other"]}, _basic("abc", "xyz")) == (400, "invalid_request")


def test_failed_client_authentication_is_invalid_client() -> None:
    assert _refusal(GRANT) == (401, "invalid_client")
    assert _refusal({**GRANT, "client_id": ["abc"]}) == (401, "invalid_client")
    assert _refusal(GRANT, "Basic !!notbase64") == (401, "invalid_client")
    assert _refusal(GRANT, "Basic " + base64.b64encode(b"no-colon").decode()) == (401, "invalid_client")
    assert _refusal(GRANT, "Bearer abc") == (401, "invalid_client")
    assert _refusal({**GRANT, "client_id": ["a" * 101], "client_secret": ["x"]}) == (401, "invalid_client")


def test_worker_refusals_map_to_oauth_errors() -> None:
    unknown = oauth_error_of(ErrorReply(code="unauthorized", detail="anything"))
    assert unknown is not None and (unknown.status, unknown.error) == (401, "invalid_client")
    assert unknown.description == "client authentication failed"  # never the worker's own words
    scope = oauth_error_of(
        ErrorReply(code="validation_failed", detail="scope: x", errors=(FieldError(field="scope", message="x"),))
    )
    assert scope is not None and (scope.status, scope.error) == (400, "invalid_scope")
    other = oauth_error_of(ErrorReply(code="validation_failed", detail="client_id: too long"))
    assert other is not None and other.error == "invalid_request"
    assert oauth_error_of(ErrorReply(code="unavailable", detail="down")) is None  # stays a problem (503)
    response = unknown.response()
    assert response.headers["WWW-Authenticate"].startswith("Basic") and response.headers["Cache-Control"] == "no-store"


# --- service identity ---------------------------------------------------------------------


def test_service_credentials_are_derived_per_worker() -> None:
    assert service_client_id("orders") == service_client_id("orders") != service_client_id("payments")
    assert service_client_secret("k", "orders") == service_client_secret("k", "orders")
    assert service_client_secret("k", "orders") != service_client_secret("k", "payments")
    assert service_client_secret("k", "orders") != service_client_secret("k2", "orders")
    with pytest.raises(IdentityUnavailable):
        service_client_secret("", "orders")


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_service_token_is_cached_renewed_early_and_kept_through_a_short_outage() -> None:
    clock, issued, failing = _Clock(), [], [False]

    async def source() -> IssuedToken:
        if failing[0]:
            raise ConnectionError("users service down")
        issued.append(f"token-{len(issued)}")
        return IssuedToken(issued[-1], 900)

    identity = ServiceIdentity("orders", source, clock=clock)
    assert await identity.authorization() == "Bearer token-0"
    clock.now = 599
    assert await identity.token() == "token-0"  # cached
    clock.now = 601
    assert await identity.token() == "token-1"  # renewed after two thirds of its life
    failing[0] = True
    clock.now = 1300
    assert await identity.token() == "token-1"  # renewal failed; still valid for a while
    clock.now = 1480
    with pytest.raises(IdentityUnavailable):
        await identity.token()  # too close to expiry to stamp on anything
    failing[0] = False
    assert await identity.token() == "token-2"


async def test_no_token_at_all_is_an_error() -> None:
    async def down() -> IssuedToken:
        raise TimeoutError

    with pytest.raises(IdentityUnavailable):
        await ServiceIdentity("orders", down).token()
