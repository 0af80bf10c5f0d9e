"""Access-token verification against the users service's public key set (JWKS).

Only the users worker holds signing keys. Everyone else — the edge and every worker —
verifies with the public keys, fetched through `fetch_jwks` and refreshed when a token
names a key id not seen before (a key rotation).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import jwt

log = logging.getLogger("agora.tokens")

ALGORITHMS = ["EdDSA"]
LEEWAY_SECONDS = 30
_REFRESH_MIN_INTERVAL = 5.0


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired or for someone else."""


@dataclass(frozen=True)
class Actor:
    """Who is asking, as proven by a verified token."""

    user_id: UUID
    role: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    token: str = field(default="", repr=False)


JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]


class TokenVerifier:
    def __init__(self, fetch_jwks: JwksFetcher, *, issuer: str, audience: str, max_age: float = 60.0) -> None:
        self._fetch = fetch_jwks
        self._max_age = max_age
        self._issuer = issuer
        self._audience = audience
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> Actor:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        if not isinstance(kid, str):
            raise InvalidToken("token has no key id")
        key = await self._key(kid)
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
            return Actor(
                user_id=UUID(claims["sub"]),
                role=str(claims.get("role", "member")),
                scopes=frozenset(str(claims.get("scope", "")).split()),
                token=token,
            )
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidToken(str(exc)) from exc

    async def _key(self, kid: str) -> jwt.PyJWK:
        if self._should_refresh(kid):
            async with self._lock:
                if self._should_refresh(kid):
                    await self._refresh()
        try:
            return self._keys[kid]
        except KeyError:
            raise InvalidToken("unknown signing key") from None

    def _should_refresh(self, kid: str) -> bool:
        # Keys are refreshed every `max_age` anyway, so a rotated key (which signs
        # only after an activation delay longer than that) is known before its first
        # token. An unknown kid may be a forgery: that refetch happens at most every
        # few seconds, so junk tokens cannot hammer the users service.
        age = time.monotonic() - self._fetched_at
        return age > self._max_age or (kid not in self._keys and age > _REFRESH_MIN_INTERVAL)

    async def _refresh(self) -> None:
        # Stamped before the fetch: if it fails or is slow, the callers queued behind
        # the lock do not each try again.
        self._fetched_at = time.monotonic()
        try:
            document = await self._fetch()
        except Exception:
            if not self._keys:
                raise  # nothing to verify with: the caller answers 503
            log.warning("could not refresh the signing keys; keeping the known ones", exc_info=True)
            return
        self._keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(document).keys if k.key_id}
