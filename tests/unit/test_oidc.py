"""ID-token verification (kernel/oidc.py) against tokens signed here with throwaway keys,
and the pure rules of third-party sign-in: where the browser may return, who signs in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import SecretStr, ValidationError

from edge.oidc import safe_return_to
from edge.problems import HttpProblem
from kernel.oidc import OidcError, Provider, ProviderUnavailable
from kernel.settings import OidcProvider, Settings
from workers.users.model import User, federated_verdict, username_from, username_with_suffix

ISSUER = "https://id.example.com"
CLIENT = "agora-web"


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEY, OTHER_KEY = _rsa(), _rsa()


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, use="sig")
    return jwk


class FakeProvider:
    """What the provider serves: discovery and the key set, counting key fetches."""

    def __init__(self) -> None:
        self.keys = [_jwk(KEY, "k1")]
        self.discovery: dict[str, Any] = {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/authorize",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/jwks",
            "id_token_signing_alg_values_supported": ["RS256"],
        }
        self.key_fetches = 0

    async def fetch(self, url: str) -> dict[str, Any]:
        if url.endswith("/.well-known/openid-configuration"):
            return self.discovery
        if url == f"{ISSUER}/jwks":
            self.key_fetches += 1
            return {"keys": self.keys}
        raise ProviderUnavailable(url)


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "subject-1",
        "iat": now,
        "exp": now + 300,
        "nonce": "the-nonce",
        "email": "Ann@Example.com",
        "email_verified": True,
        "preferred_username": "ann",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(claims: dict[str, Any], key: Any = KEY, kid: str | None = "k1", alg: str = "RS256") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid} if kid else None)


def _provider(fake: FakeProvider, **config: Any) -> Provider:
    settings = OidcProvider(issuer=ISSUER, client_id=CLIENT, client_secret=SecretStr("s"), **config)
    return Provider("example", settings, fetch=fake.fetch)


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider()


async def test_a_genuine_token_gives_its_claims(fake: FakeProvider) -> None:
    claims = await _provider(fake).verify_id_token(_sign(_claims()), nonce="the-nonce")
    assert claims.subject == "subject-1"
    assert claims.email == "Ann@Example.com" and claims.email_verified
    assert claims.preferred_username == "ann"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: _sign(_claims(), key=OTHER_KEY), "signature"),
        (lambda: _sign(_claims(aud="someone-else")), "another client"),
        (lambda: _sign(_claims(aud=[CLIENT, "someone-else"])), "azp"),
        (lambda: _sign(_claims(aud=[CLIENT, "someone-else"], azp="someone-else")), "azp"),
        (lambda: _sign(_claims(azp="someone-else")), "azp"),
        (lambda: _sign(_claims(iss="https://evil.example.com")), "another issuer"),
        (lambda: _sign(_claims(exp=int(time.time()) - 120)), "expired"),
        (lambda: _sign(_claims(iat=int(time.time()) - 3600, exp=int(time.time()) + 60)), "too long ago"),
        (lambda: _sign(_claims(iat=int(time.time()) + 600, exp=int(time.time()) + 900)), "not valid"),
        (lambda: _sign(_claims(sub=None)), "not valid"),
        (lambda: _sign(_claims(nonce="another-nonce")), "nonce"),
        (lambda: _sign(_claims(nonce=None)), "nonce"),
        (lambda: jwt.encode(_claims(), key=None, algorithm="none", headers={"kid": "k1"}), "algorithm"),
        (lambda: "not.a.token", "malformed"),
    ],
)
async def test_tokens_that_fail_a_check_are_refused(fake: FakeProvider, token: Any, reason: str) -> None:
    with pytest.raises(OidcError, match=reason):
        await _provider(fake).verify_id_token(token(), nonce="the-nonce")


async def test_an_hmac_token_keyed_with_the_public_key_is_refused(fake: FakeProvider) -> None:
    # The classic confusion: HS256 "signed" with the RSA public key the verifier holds.
    fake.discovery["id_token_signing_alg_values_supported"] = ["RS256", "HS256"]
    public = json.dumps(fake.keys[0]).encode()

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'kid': 'k1'}).encode())}.{b64(json.dumps(_claims()).encode())}"
    token = f"{signing_input}.{b64(hmac.new(public, signing_input.encode(), hashlib.sha256).digest())}"
    with pytest.raises(OidcError, match="algorithm"):
        await _provider(fake).verify_id_token(token, nonce="the-nonce")


async def test_the_worker_checks_everything_but_the_nonce(fake: FakeProvider) -> None:
    claims = await _provider(fake).verify_id_token(_sign(_claims(nonce=None)))
    assert claims.subject == "subject-1"


async def test_a_token_without_kid_verifies_on_a_machine_booted_minutes_ago(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Authlib 1.9 signs ID tokens without `kid` (the key set has one key, so none is
    # needed). The monotonic clock counts from boot: on a fresh machine (CI) it is small,
    # and a key set stamped 0.0 "fetched at boot" looked fresh and was never fetched.
    monkeypatch.setattr("kernel.tokens.time.monotonic", lambda: 120.0)
    claims = await _provider(fake).verify_id_token(_sign(_claims(), kid=None), nonce="the-nonce")
    assert claims.subject == "subject-1"
    assert fake.key_fetches == 1


async def test_an_unknown_key_refetches_the_key_set_once(fake: FakeProvider) -> None:
    provider = _provider(fake)
    await provider.verify_id_token(_sign(_claims()))
    assert fake.key_fetches == 1
    # The provider rotated: the new key is published, and a token names it.
    fake.keys.append(_jwk(OTHER_KEY, "k2"))
    provider._keys._fetched_at -= 10  # past the minimum refetch interval
    await provider.verify_id_token(_sign(_claims(), key=OTHER_KEY, kid="k2"))
    assert fake.key_fetches == 2
    # A kid nobody publishes: one more fetch at most, then refused; junk does not hammer.
    provider._keys._fetched_at -= 10
    for _ in range(3):
        with pytest.raises(OidcError, match="does not publish"):
            await provider.verify_id_token(_sign(_claims(), kid="k9"))
    assert fake.key_fetches == 3


async def test_a_discovery_document_for_another_issuer_is_refused(fake: FakeProvider) -> None:
    fake.discovery["issuer"] = "https://evil.example.com"
    with pytest.raises(ProviderUnavailable, match="another issuer"):
        await _provider(fake).verify_id_token(_sign(_claims()))


async def test_email_verification_claims(fake: FakeProvider) -> None:
    provider = _provider(fake)
    assert (await provider.verify_id_token(_sign(_claims(email_verified="true")))).email_verified
    assert not (await provider.verify_id_token(_sign(_claims(email_verified=False)))).email_verified
    assert not (await provider.verify_id_token(_sign(_claims(email_verified=None)))).email_verified
    trusted = _provider(fake, trust_email=True)
    assert (await trusted.verify_id_token(_sign(_claims(email_verified=None)))).email_verified
    no_email = await trusted.verify_id_token(_sign(_claims(email=None)))
    assert no_email.email is None and not no_email.email_verified


def test_providers_come_from_json_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    good = {"mock": {"issuer": "http://127.0.0.1:9000", "client_id": "agora", "client_secret": "hush-hush"}}
    monkeypatch.setenv("AGORA_OIDC_PROVIDERS", json.dumps(good))
    provider = Settings().oidc_providers["mock"]
    assert provider.scopes == "openid email profile" and "hush" not in repr(provider)
    monkeypatch.setenv("AGORA_OIDC_PROVIDERS", "")
    assert Settings().oidc_providers == {}
    for bad in (
        {"mock": {**good["mock"], "issuer": "http://id.example.com"}},  # plain http off this machine
        {"Bad Name": good["mock"]},
        {"mock": {**good["mock"], "scopes": "email"}},
    ):
        monkeypatch.setenv("AGORA_OIDC_PROVIDERS", json.dumps(bad))
        with pytest.raises(ValidationError):
            Settings()


@pytest.mark.parametrize("value", ["/", "/orders?tab=open", "/a/b#c"])
def test_return_to_accepts_paths_on_this_site(value: str) -> None:
    assert safe_return_to(value) == value


@pytest.mark.parametrize(
    "value",
    ["https://evil.example", "//evil.example/x", "/\\evil.example", "evil", "/a\tb", "/café", "javascript:alert(1)"],
)
def test_return_to_refuses_other_sites(value: str) -> None:
    with pytest.raises(HttpProblem):
        safe_return_to(value)


def test_return_to_defaults_to_the_root() -> None:
    assert safe_return_to(None) == safe_return_to("") == "/"


def _user(disabled: bool = False) -> User:
    now = datetime.now(UTC)
    return User(
        user_id=uuid4(),
        email="ann@example.com",
        username="ann",
        role="member",
        password_hash=None,
        phone=None,
        address=None,
        created_at=now,
        updated_at=now,
        disabled_at=now if disabled else None,
    )


def test_who_signs_in() -> None:
    ann, email = _user(), "ann@example.com"
    # Linked before: that account, whatever the email says now.
    assert federated_verdict(linked=ann, same_email=None, email=None, email_verified=False) == "sign_in"
    assert federated_verdict(linked=None, same_email=ann, email=email, email_verified=True) == "link"
    assert federated_verdict(linked=None, same_email=None, email=email, email_verified=True) == "create"
    # An unverified email neither links nor creates.
    assert federated_verdict(linked=None, same_email=ann, email=email, email_verified=False) == "unverified_taken"
    assert federated_verdict(linked=None, same_email=None, email=email, email_verified=False) == "unverified"
    assert federated_verdict(linked=None, same_email=None, email=None, email_verified=False) == "no_email"
    # A disabled account is refused like at login.
    off = _user(disabled=True)
    assert federated_verdict(linked=off, same_email=None, email=email, email_verified=True) == "disabled"
    assert federated_verdict(linked=None, same_email=off, email=email, email_verified=True) == "disabled"


def test_usernames_from_provider_hints() -> None:
    assert username_from("Ann Lee", "ann@example.com") == "Ann_Lee"
    assert username_from(None, "ann.lee+shop@example.com") == "ann.lee_shop"
    assert username_from("ä", "jo@example.com", None) == "member"
    assert username_from("x" * 50) == "x" * 32
    assert username_from("--", "_.") == "member"
    long = username_with_suffix("y" * 32, "ab12")
    assert len(long) == 32 and long.endswith("_ab12")
