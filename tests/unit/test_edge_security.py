"""CSRF tokens, rate-limit configuration and client addresses: the pure parts."""

from __future__ import annotations

import uuid
from uuid import uuid4

import pytest
from aiohttp.test_utils import make_mocked_request

from edge.ratelimit import RateLimiter, client_ip
from edge.routes.orders import order_id_for
from edge.sessions import CsrfSigner
from kernel.settings import Settings


def _settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


def test_a_csrf_token_names_its_user_and_survives_nothing_else() -> None:
    signer = CsrfSigner(_settings(csrf_secret="s" * 32))
    user = uuid4()
    token = signer.issue(user)
    assert signer.user_of(token) == str(user)
    # Changed in the signed part (the last base64 character may only carry padding bits).
    assert signer.user_of(("x" if token[0] != "x" else "y") + token[1:]) is None
    assert CsrfSigner(_settings(csrf_secret="t" * 32)).user_of(token) is None
    assert signer.user_of("") is None


def test_production_refuses_missing_or_development_secrets() -> None:
    strong = {"csrf_secret": "c" * 43, "service_secret": "s" * 43, "data_keys": "k1:" + "A" * 43 + "="}
    _settings(env="production", **strong)  # accepted
    # A process holds only the secrets it uses (the edge has no data keys or service
    # secret): a missing one is refused by what uses it, below and in the worker runtime.
    _settings(env="production", **{**strong, "service_secret": "", "data_keys": ""})
    for name, weak in (
        ("csrf_secret", "compose-csrf-secret-change-me"),
        ("service_secret", "short"),
        ("data_keys", "compose1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
    ):
        with pytest.raises(ValueError, match=f"AGORA_{name.upper()}"):
            _settings(env="production", **{**strong, name: weak})
    with pytest.raises(RuntimeError, match="AGORA_CSRF_SECRET"):  # and the signer would not start anyway
        CsrfSigner(_settings(csrf_secret="").model_copy(update={"env": "production"}))


def test_rate_limit_rules_must_exist() -> None:
    with pytest.raises(ValueError, match="unknown rules"):
        RateLimiter(_settings(rate_limits={"logn:ip": "1/minute"}))


def test_the_client_address_is_the_peer_unless_proxies_are_trusted() -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.9, 10.0.0.2"}
    request = make_mocked_request("GET", "/", headers=forwarded)
    peer = request.remote or "unknown"
    assert client_ip(request, 0) == peer  # a client cannot pick its own bucket
    assert client_ip(request, 1) == "10.0.0.2"
    assert client_ip(request, 2) == "203.0.113.9"
    assert client_ip(make_mocked_request("GET", "/"), 1) == peer  # header missing: the peer


def test_order_ids_from_an_idempotency_key_cannot_be_guessed_without_the_edges_secret() -> None:
    # The review found ids derived from the user id and the key alone (a UUIDv5): a
    # partner who knew both could place an order under that id first.
    user, key = uuid.uuid4(), "checkout-1"
    mine = order_id_for("the edge's secret", user, key)
    assert mine == order_id_for("the edge's secret", user, key)  # the same request, the same order
    assert mine != order_id_for("another secret", user, key)
    assert mine != order_id_for("the edge's secret", uuid.uuid4(), key)
    assert mine != uuid.uuid5(uuid.NAMESPACE_URL, f"{user}:{key}") and mine.version == 4


def test_a_production_worker_needs_the_service_secret() -> None:
    from workers.runtime.service import WorkerService

    with pytest.raises(RuntimeError, match="AGORA_SERVICE_SECRET"):
        WorkerService("inventory", settings=_settings(env="production", service_secret="", data_keys=""))
