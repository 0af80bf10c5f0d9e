"""Access-token verification against the users service's public key set (JWKS).

Only the users worker holds signing keys. Everyone else — the edge and every worker —
verifies with the public keys, fetched through `fetch_jwks` and refreshed when a token
names a key id not seen before (a key rotation).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import jwt

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
    def __init__(self, fetch_jwks: JwksFetcher, *, issuer: str, audience: str) -> None:
        self._fetch = fetch_jwks
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
        if kid not in self._keys:
            async with self._lock:
                # A token with an unknown kid may be a forgery: refetch at most every
                # few seconds so junk tokens cannot hammer the users service.
                if kid not in self._keys and time.monotonic() - self._fetched_at > _REFRESH_MIN_INTERVAL:
                    # Stamped before the fetch: if it fails or is slow, the callers
                    # queued behind this lock do not each try again.
                    self._fetched_at = time.monotonic()
                    document = await self._fetch()
                    self._keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(document).keys if k.key_id}
        try:
            return self._keys[kid]
        except KeyError:
            raise InvalidToken("unknown signing key") from None
