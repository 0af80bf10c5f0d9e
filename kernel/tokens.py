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
from typing import Any, Protocol
from uuid import UUID

import jwt

log = logging.getLogger("agora.tokens")

ALGORITHMS = ["EdDSA"]
LEEWAY_SECONDS = 30
# Tokens verified lately, kept by their exact text (see TokenVerifier.verify).
VERIFIED_KEPT = 4096
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
    issued_at: float = 0.0  # `iat`, seconds since 1970 (with milliseconds)
    session_id: UUID | None = None  # `sid`: the session (refresh-token family) of a person's token


@dataclass(frozen=True)
class _Verified:
    """A token that passed every check: who it proves, and until when that holds."""

    kid: str
    key: jwt.PyJWK
    actor: Actor
    expires: float  # `exp` plus the leeway, seconds since 1970


JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]


class KeySet:
    """A public key set (JWKS) kept fresh: the one cache behind every token check.

    Refreshed every `max_age`; refetched early when a token names a key id not seen
    yet (a rotation), but at most every few seconds, so junk tokens cannot hammer the
    key's owner. If a refresh fails, the known keys keep working.
    """

    def __init__(self, fetch: JwksFetcher, *, max_age: float, label: str) -> None:
        self._fetch = fetch
        self._max_age = max_age
        self._label = label
        self._keys: dict[str, dict[str, Any]] = {}
        # None until the first fetch. Not 0.0: the monotonic clock counts from boot, so on
        # a machine up for less than `max_age` a zero stamp looked fresh and a token
        # without `kid` was checked against an empty key set that was never fetched.
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def current(self, kid: str | None) -> dict[str, dict[str, Any]]:
        """The signing keys by key id, refreshed first if stale or if `kid` is unknown."""
        # A key id not known yet while another caller is fetching: wait for that fetch
        # rather than answer from the set it is about to replace (the first burst of
        # tokens after a start would otherwise all be "unknown signing key").
        fetching = self._lock.locked() and kid is not None and kid not in self._keys
        if fetching or self._stale(kid):
            async with self._lock:
                if self._stale(kid):
                    await self._refresh()
        return self._keys

    def _stale(self, kid: str | None) -> bool:
        if self._fetched_at is None:
            return True
        age = time.monotonic() - self._fetched_at
        return age > self._max_age or (kid is not None and kid not in self._keys and age > _REFRESH_MIN_INTERVAL)

    async def _refresh(self) -> None:
        # Stamped before the fetch: if it fails or is slow, the callers queued behind
        # the lock do not each try again.
        self._fetched_at = time.monotonic()
        try:
            document = await self._fetch()
        except Exception:
            if not self._keys:
                raise  # nothing to verify with: the caller answers "unavailable"
            log.warning("could not refresh the %s keys; keeping the known ones", self._label, exc_info=True)
            return
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise ValueError(f"the {self._label} key set has no keys")
        self._keys = {str(k.get("kid", "")): k for k in keys if isinstance(k, dict) and k.get("use", "sig") == "sig"}


class Revocations(Protocol):
    """What a verifier asks of kernel/revocations.py's list (kept apart: no broker here)."""

    async def ready(self) -> None: ...

    def voids(self, actor: Actor) -> bool: ...


class TokenVerifier:
    def __init__(
        self,
        fetch_jwks: JwksFetcher,
        *,
        issuer: str,
        audience: str,
        max_age: float = 60.0,
        revocations: Revocations | None = None,
    ) -> None:
        self._keys = KeySet(fetch_jwks, max_age=max_age, label="token-signing")
        # Parsed keys, reused while the key set holds the same JWK (parsing costs more than verifying).
        self._parsed: dict[str, tuple[dict[str, Any], jwt.PyJWK]] = {}
        self._verified: dict[str, _Verified] = {}
        self._issuer = issuer
        self._audience = audience
        self.revocations = revocations

    async def verify(self, token: str) -> Actor:
        """The actor a token proves, or InvalidToken.

        A service's identity token and a person's access token come on many messages in
        a row, and checking the signature and claims costs about 100 µs each time, so a
        token verified lately is taken from `_verified` while its `exp` (with the leeway)
        has not passed and the key that signed it is still the one published; whether
        it was revoked is checked on every use.
        """
        kept = self._verified.get(token)
        if kept is not None and time.time() < kept.expires and await self._key(kept.kid) is kept.key:
            actor = kept.actor
        else:
            actor = await self._verify_anew(token)
        if self.revocations is not None:
            await self.revocations.ready()
            if self.revocations.voids(actor):
                raise InvalidToken("token revoked")
        return actor

    async def _verify_anew(self, token: str) -> Actor:
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
            sid = claims.get("sid")
            actor = Actor(
                user_id=UUID(claims["sub"]),
                role=str(claims.get("role", "member")),
                scopes=frozenset(str(claims.get("scope", "")).split()),
                token=token,
                issued_at=float(claims["iat"]),
                session_id=UUID(sid) if isinstance(sid, str) else None,
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc)) from exc
        if len(self._verified) >= VERIFIED_KEPT:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = _Verified(kid, key, actor, float(claims["exp"]) + LEEWAY_SECONDS)
        return actor

    async def _key(self, kid: str) -> jwt.PyJWK:
        jwk = (await self._keys.current(kid)).get(kid)
        if jwk is None:
            raise InvalidToken("unknown signing key")
        cached = self._parsed.get(kid)
        if cached is not None and cached[0] is jwk:
            return cached[1]
        try:
            key = jwt.PyJWK(jwk)
        except jwt.PyJWTError as exc:
            raise InvalidToken("unusable signing key") from exc
        self._parsed[kid] = (jwk, key)
        return key
