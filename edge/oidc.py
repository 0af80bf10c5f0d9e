"""The edge's half of third-party sign-in: the OpenID Connect authorization code flow.

`start` makes a fresh `state`, `nonce` and PKCE `code_verifier`, keeps them in Redis
under the state's hash for ten minutes, and sends the browser to the provider with the
S256 code challenge. A short-lived cookie holding the state's hash ties the flow to
that browser: a callback URL someone else obtained (login CSRF: signing a victim in to
the attacker's account) fails in the victim's browser.

`finish` takes the flow out of Redis with GETDEL, so a state works once however many
edge replicas see it, checks the cookie, exchanges the code (with the verifier and the
client secret) for tokens, and verifies the ID token including its nonce
(kernel/oidc.py). The users worker verifies the token again before signing anyone in.

Every refusal is a problem with its own `code`, logged as a `security:` warning with
the reason only: never a token, a code or an email.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from urllib.parse import quote_plus, urlsplit

import httpx
from aiohttp import web
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from redis.asyncio import Redis
from redis.exceptions import RedisError

from contracts.errors import FieldError
from edge.problems import HttpProblem
from kernel.oidc import (
    HTTP_TIMEOUT_SECONDS,
    OidcError,
    Provider,
    ProviderMetadata,
    ProviderUnavailable,
    callback_url,
    providers,
)
from kernel.settings import Settings

log = logging.getLogger("agora.edge.oidc")

FLOW_TTL_SECONDS = 600
# One flow per browser at a time: a second sign-in started meanwhile replaces the first.
FLOW_COOKIE = "__Secure-agora_oidc"
FLOW_COOKIE_PATH = "/api/auth/oauth"
_KEY_PREFIX = "agora:oidc:flow:"
_MAX_RETURN_TO = 512


@dataclass(frozen=True)
class Flow:
    """What the edge remembers between start and callback (in Redis, never in the browser)."""

    provider: str
    nonce: str
    code_verifier: str
    return_to: str


@dataclass(frozen=True)
class Started:
    authorization_url: str
    cookie: str


@dataclass(frozen=True)
class Finished:
    id_token: str
    return_to: str


def _problem(code: str, detail: str, status: int = 401) -> HttpProblem:
    return HttpProblem(code, detail, status=status, title="Unauthorized" if status == 401 else "Bad request")


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def safe_return_to(value: str | None) -> str:
    """Where the browser may be sent after signing in: a path on this site, nothing else.

    An absolute URL (or `//host`, or a backslash some browsers read as a slash) would
    make the sign-in an open redirect to another site.
    """
    if not value:
        return "/"
    parts = urlsplit(value)
    if (
        len(value) > _MAX_RETURN_TO
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(not 0x21 <= ord(c) <= 0x7E for c in value)  # printable ASCII: percent-encode the rest
        or parts.scheme
        or parts.netloc
    ):
        raise HttpProblem(
            "validation_failed",
            "return_to must be a path on this site",
            errors=(FieldError(field="return_to", message="must be a relative path starting with a single /"),),
        )
    return value


class OidcFlows:
    def __init__(self, settings: Settings, redis: Redis, known: Mapping[str, Provider] | None = None) -> None:
        self._settings = settings
        self._redis = redis
        self._providers = dict(known) if known is not None else providers(settings)

    async def close(self) -> None:
        await self._redis.aclose()

    def provider(self, name: str) -> Provider:
        provider = self._providers.get(name)
        if provider is None:
            raise HttpProblem("not_found", "no such identity provider")
        return provider

    async def start(self, name: str, return_to: str) -> Started:
        provider = self.provider(name)
        metadata = await self._metadata(provider)
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        flow = Flow(provider=name, nonce=nonce, code_verifier=verifier, return_to=return_to)
        try:
            await self._redis.set(_KEY_PREFIX + _digest(state), json.dumps(asdict(flow)), ex=FLOW_TTL_SECONDS, nx=True)
        except RedisError as exc:
            raise self._unavailable(name, exc, what="flow store") from None
        url = prepare_grant_uri(
            metadata.authorization_endpoint,
            client_id=provider.config.client_id,
            response_type="code",
            redirect_uri=callback_url(self._settings, name),
            scope=provider.config.scopes,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        return Started(authorization_url=url, cookie=_digest(state))

    async def finish(self, name: str, query: Mapping[str, str], cookie: str | None) -> Finished:
        provider = self.provider(name)
        state = query.get("state")
        flow = await self._take(state) if state else None
        if state is None or flow is None or flow.provider != name:
            # Unknown, expired or already used: a replayed or forged callback.
            raise self._refused(
                "oidc_state_invalid", "this sign-in is unknown, expired or already used", name, "unknown state"
            )
        if not cookie or not hmac.compare_digest(cookie.encode(), _digest(state).encode()):
            raise self._refused(
                "oidc_state_invalid", "this sign-in was not started in this browser", name, "no or another flow cookie"
            )
        if error := query.get("error"):
            problem = "oidc_access_denied" if error == "access_denied" else "oidc_provider_error"
            reason = error if error.replace("_", "").isalpha() and len(error) <= 64 else "unknown"
            log.info("third-party sign-in ended by the provider", extra={"provider": name, "error": reason})
            raise _problem(problem, f"the identity provider ended the sign-in: {reason}")
        code = query.get("code")
        if not code:
            raise _problem("bad_request", "the callback carries no authorization code", status=400)
        id_token = await self._exchange(provider, code, flow)
        try:
            await provider.verify_id_token(id_token, nonce=flow.nonce)
        except OidcError as exc:
            raise self._refused(
                "oidc_id_token_invalid", "the identity provider's ID token is not valid", name, str(exc)
            ) from None
        except ProviderUnavailable as exc:
            raise self._unavailable(name, exc) from None
        return Finished(id_token=id_token, return_to=flow.return_to)

    async def _take(self, state: str) -> Flow | None:
        try:
            raw = await self._redis.getdel(_KEY_PREFIX + _digest(state))
        except RedisError as exc:
            raise self._unavailable("-", exc, what="flow store") from None
        return Flow(**json.loads(raw)) if raw else None

    async def _metadata(self, provider: Provider) -> ProviderMetadata:
        try:
            return await provider.metadata()
        except ProviderUnavailable as exc:
            raise self._unavailable(provider.name, exc) from None

    async def _exchange(self, provider: Provider, code: str, flow: Flow) -> str:
        """The token request of RFC 6749 §4.1.3, with the PKCE verifier (RFC 7636 §4.5)."""
        metadata = await provider.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": callback_url(self._settings, provider.name),
            "code_verifier": flow.code_verifier,
        }
        client_id, secret = provider.config.client_id, provider.config.client_secret.get_secret_value()
        headers = {"Accept": "application/json"}
        if "client_secret_basic" in metadata.token_endpoint_auth_methods:
            # RFC 6749 §2.3.1: each part form-urlencoded before the Basic encoding.
            basic = base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        else:
            form |= {"client_id": client_id, "client_secret": secret}
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False) as client:
                response = await client.post(metadata.token_endpoint, data=form, headers=headers)
            body = response.json() if response.status_code < 500 else None
        except (httpx.HTTPError, ValueError) as exc:
            raise self._unavailable(provider.name, exc) from None
        if body is None:
            raise self._unavailable(provider.name, RuntimeError(f"token endpoint answered {response.status_code}"))
        if response.status_code != 200 or not isinstance(body, dict) or "error" in body:
            error = body.get("error") if isinstance(body, dict) else None
            raise self._refused(
                "oidc_code_rejected",
                "the identity provider refused the authorization code",
                provider.name,
                f"token endpoint: {response.status_code} {error if isinstance(error, str) else ''}"[:100],
            )
        id_token = body.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise self._refused(
                "oidc_id_token_invalid", "the identity provider sent no ID token", provider.name, "no id_token"
            )
        return id_token

    @staticmethod
    def _refused(code: str, detail: str, provider: str, reason: str) -> HttpProblem:
        log.warning(
            "security: third-party sign-in refused", extra={"provider": provider, "code": code, "reason": reason}
        )
        return _problem(code, detail)

    @staticmethod
    def _unavailable(provider: str, exc: Exception, what: str = "identity provider") -> HttpProblem:
        log.warning(f"{what} unreachable", extra={"provider": provider, "reason": type(exc).__name__})
        return HttpProblem("unavailable", f"the {what} cannot be reached; retry later", headers={"Retry-After": "5"})


OIDC_KEY = web.AppKey("oidc", OidcFlows)


def setup_oidc(app: web.Application, settings: Settings) -> None:
    """The Redis client is made in the start-up hook (it belongs to the app's event loop)."""

    async def start(app: web.Application) -> None:
        app[OIDC_KEY] = OidcFlows(settings, Redis.from_url(settings.redis_url, decode_responses=True))

    async def close(app: web.Application) -> None:
        await app[OIDC_KEY].close()

    app.on_startup.append(start)
    app.on_cleanup.append(close)
