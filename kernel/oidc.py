"""OpenID Connect, the part the edge and the users worker share: discovery and ID tokens.

The edge runs the browser flow (edge/oidc.py) and checks the ID token, nonce included.
The users worker checks the same token again before it signs anyone in, because the
broker is not trusted (architecture §6): a command that merely *said* "provider X
vouches for subject Y" could be forged by anyone who can publish. Only the provider's
signature is proof, so the token itself travels and both sides verify it here.

Verification follows OpenID Connect Core §3.1.3.7: the signature against the key the
provider publishes (JWKS, refetched once when a token names an unknown `kid`), an
asymmetric algorithm only, `iss` equal to the configured issuer, `aud` containing our
client id (and `azp` equal to it when there are several audiences), `exp`, `iat` not in
the future and not too old, and `nonce` when the caller holds it.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from kernel.settings import OidcProvider, Settings, secure_url
from kernel.tokens import LEEWAY_SECONDS, KeySet

log = logging.getLogger("agora.oidc")

# Asymmetric only: an HMAC-signed ID token would be keyed with the client secret,
# which the edge and every users worker hold, so it would prove nothing to the worker.
ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
# An ID token is used within seconds of being issued; an older one is a replay.
MAX_ID_TOKEN_AGE_SECONDS = 600
DISCOVERY_MAX_AGE_SECONDS = 3600.0
JWKS_MAX_AGE_SECONDS = 3600.0
HTTP_TIMEOUT_SECONDS = 5.0
_MAX_HINT = 200


class OidcError(Exception):
    """An ID token or a provider answer failed a check. The message is safe to log."""


class ProviderUnavailable(Exception):
    """The provider's discovery document or keys could not be fetched."""


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of the discovery document Agora uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_endpoint_auth_methods: tuple[str, ...]
    signing_algorithms: frozenset[str]


@dataclass(frozen=True)
class IdentityClaims:
    """What a verified ID token says about the person. No token, no secrets."""

    subject: str
    email: str | None
    email_verified: bool
    preferred_username: str | None
    name: str | None


FetchJson = Callable[[str], Awaitable[dict[str, Any]]]


async def fetch_json(url: str) -> dict[str, Any]:
    """GET a JSON object from a provider. A client per call: these calls are cached and rare."""
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False) as client:
            response = await client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderUnavailable(f"{url}: {type(exc).__name__}") from exc
    if not isinstance(document, dict):
        raise ProviderUnavailable(f"{url}: not a JSON object")
    return document


class Provider:
    """One configured identity provider: its metadata and keys (cached), and ID-token checks."""

    def __init__(self, name: str, config: OidcProvider, *, fetch: FetchJson = fetch_json) -> None:
        self.name = name
        self.config = config
        self._fetch = fetch
        self._metadata: ProviderMetadata | None = None
        self._metadata_at = 0.0
        self._keys = KeySet(self._fetch_keys, max_age=JWKS_MAX_AGE_SECONDS, label=f"{name} identity provider")
        self._lock = asyncio.Lock()

    @property
    def discovery_url(self) -> str:
        return self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"

    async def metadata(self) -> ProviderMetadata:
        if self._metadata is None or time.monotonic() - self._metadata_at > DISCOVERY_MAX_AGE_SECONDS:
            async with self._lock:
                if self._metadata is None or time.monotonic() - self._metadata_at > DISCOVERY_MAX_AGE_SECONDS:
                    self._metadata = _parse_metadata(await self._fetch(self.discovery_url), self.config.issuer)
                    self._metadata_at = time.monotonic()
        return self._metadata

    async def verify_id_token(self, token: str, *, nonce: str | None = None) -> IdentityClaims:
        """The claims of a genuine, current ID token for our client, or `OidcError`.

        `nonce` is checked when given: the edge holds it (it is in the flow's state);
        the worker does not, and relies on the token being fresh and signed.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise OidcError("the ID token is malformed") from exc
        metadata = await self.metadata()
        alg, kid = header.get("alg"), header.get("kid")
        allowed = ALGORITHMS & metadata.signing_algorithms if metadata.signing_algorithms else ALGORITHMS
        if not isinstance(alg, str) or alg not in allowed:
            raise OidcError(f"the ID token's algorithm {alg!r} is not accepted")
        key = await self._key(kid if isinstance(kid, str) else None, alg)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                issuer=self.config.issuer,
                # pyjwt accepts the token when any of its audiences is ours; `azp` below.
                audience=self.config.client_id,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"], "strict_aud": False},
            )
        except jwt.InvalidSignatureError as exc:
            raise OidcError("the ID token's signature is not valid") from exc
        except jwt.InvalidAudienceError as exc:
            raise OidcError("the ID token is for another client (aud)") from exc
        except jwt.InvalidIssuerError as exc:
            raise OidcError("the ID token is from another issuer (iss)") from exc
        except jwt.ExpiredSignatureError as exc:
            raise OidcError("the ID token has expired") from exc
        except jwt.PyJWTError as exc:
            raise OidcError(f"the ID token is not valid: {type(exc).__name__}") from exc
        return self._check_claims(claims, nonce)

    def _check_claims(self, claims: dict[str, Any], nonce: str | None) -> IdentityClaims:
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != self.config.client_id:
            raise OidcError("the ID token was issued to another party (azp)")
        if int(claims["iat"]) < time.time() - MAX_ID_TOKEN_AGE_SECONDS - LEEWAY_SECONDS:
            raise OidcError("the ID token was issued too long ago (iat)")
        if nonce is not None:
            got = claims.get("nonce")
            if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
                raise OidcError("the ID token's nonce does not match this sign-in")
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= 255:
            raise OidcError("the ID token's subject is not a usable identifier")
        email = claims.get("email")
        email = email.strip() if isinstance(email, str) and 3 <= len(email.strip()) <= 320 else None
        # Some providers send the boolean as a string.
        verified = claims.get("email_verified") in (True, "true") or (self.config.trust_email and email is not None)
        return IdentityClaims(
            subject=subject,
            email=email,
            email_verified=bool(email) and verified,
            preferred_username=_hint(claims.get("preferred_username")),
            name=_hint(claims.get("name")),
        )

    async def _key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        keys = await self._keys.current(kid)
        jwk = keys.get(kid) if kid else _only_key(keys)
        if jwk is None:
            raise OidcError("the ID token is signed with a key the provider does not publish")
        if jwk.get("alg") not in (None, alg):
            raise OidcError("the ID token's algorithm does not match its key")
        try:
            return jwt.PyJWK(jwk, algorithm=alg)
        except jwt.PyJWTError as exc:
            raise OidcError("the provider's key does not fit the ID token's algorithm") from exc

    async def _fetch_keys(self) -> dict[str, Any]:
        return await self._fetch((await self.metadata()).jwks_uri)


def _only_key(keys: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    # A token without `kid` is acceptable only when there is no doubt which key it means.
    return next(iter(keys.values())) if len(keys) == 1 else None


def _hint(value: object) -> str | None:
    return value.strip()[:_MAX_HINT] if isinstance(value, str) and value.strip() else None


def _parse_metadata(document: dict[str, Any], issuer: str) -> ProviderMetadata:
    # OIDC Discovery §4.3: the document must name exactly the issuer it was fetched for,
    # or one provider could speak for another.
    if document.get("issuer") != issuer:
        raise ProviderUnavailable("the discovery document names another issuer")
    urls = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        url = document.get(name)
        if not isinstance(url, str) or not secure_url(url):
            raise ProviderUnavailable(f"the discovery document has no usable {name}")
        urls[name] = url
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    algorithms = document.get("id_token_signing_alg_values_supported") or []
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=urls["authorization_endpoint"],
        token_endpoint=urls["token_endpoint"],
        jwks_uri=urls["jwks_uri"],
        token_endpoint_auth_methods=tuple(str(m) for m in methods),
        signing_algorithms=frozenset(str(a) for a in algorithms),
    )


def providers(settings: Settings, *, fetch: FetchJson = fetch_json) -> dict[str, Provider]:
    return {name: Provider(name, config, fetch=fetch) for name, config in settings.oidc_providers.items()}


def public_url(settings: Settings) -> str:
    return (settings.public_url or f"http://127.0.0.1:{settings.http_port}").rstrip("/")


def callback_url(settings: Settings, provider: str) -> str:
    return f"{public_url(settings)}/api/auth/oauth/{provider}/callback"
