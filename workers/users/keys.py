"""Token-signing keys (Ed25519, with `kid`) and the tokens they sign.

Only this service holds private keys. They live in `users.signing_keys`, encrypted
with the data key, so every replica signs with the same key and a rotation is a row.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from db.sealed import SIGNING_KEY
from db.tables.users import signing_keys
from kernel.crypto import FieldCipher, Sealed
from kernel.settings import Settings
from kernel.tokens import LEEWAY_SECONDS
from workers.runtime.context import operator_unit_of_work


class KeyRing:
    def __init__(self, cipher: FieldCipher, settings: Settings) -> None:
        self._cipher = cipher
        self._settings = settings
        self._current: tuple[str, Ed25519PrivateKey] | None = None
        self._loaded_at = 0.0

    async def ensure_key(self, session: AsyncSession) -> None:
        """Create the first signing key if there is none (safe with many replicas starting)."""
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('users.signing_keys'))"))
        if await session.scalar(select(signing_keys.c.kid).where(signing_keys.c.retired_at.is_(None)).limit(1)):
            return
        await self.add_key(session)

    async def add_key(self, session: AsyncSession) -> str:
        """Publish a new key; it signs once it is past the activation delay. Older keys keep verifying."""
        private = Ed25519PrivateKey.generate()
        kid = f"{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        sealed = self._cipher.seal(pem, SIGNING_KEY.context(kid))
        jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
        jwk.update(kid=kid, alg="EdDSA", use="sig")
        await session.execute(
            signing_keys.insert().values(
                kid=kid,
                algorithm="EdDSA",
                private_key_enc=sealed.ciphertext,
                private_key_key_id=sealed.key_id,
                public_jwk=jwk,
                created_at=datetime.now(UTC),
            )
        )
        self._current = None
        return kid

    async def jwks(self, session: AsyncSession) -> dict[str, Any]:
        """The keys that verify: retired keys are left out, so verifiers drop them at
        their next refresh (AGORA_JWKS_REFRESH_SECONDS) and their tokens stop verifying."""
        live = signing_keys.c.retired_at.is_(None)
        rows = await session.scalars(
            select(signing_keys.c.public_jwk).where(live).order_by(signing_keys.c.created_at.desc())
        )
        return {"keys": list(rows)}

    async def retire(self, session: AsyncSession, kid: str, *, now: datetime) -> None:
        """Retire a key once no token it signed can still be valid.

        A key signs until the next newer key becomes active (its creation plus the
        activation delay); its last tokens live one token lifetime after that. Retiring
        earlier would turn valid sessions away, so it is refused, with the moment it
        becomes possible. The key that signs now is never retired: rotate first.
        """
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('users.signing_keys'))"))
        rows = (await session.execute(select(signing_keys).order_by(signing_keys.c.created_at))).all()
        index = next((i for i, row in enumerate(rows) if row.kid == kid), None)
        if index is None:
            raise RetireRefused(f"no signing key {kid!r}")
        if rows[index].retired_at is not None:
            return
        activation = timedelta(seconds=self._settings.signing_key_activation_seconds)
        newer = [row for row in rows[index + 1 :] if row.retired_at is None and row.created_at + activation <= now]
        if not newer:
            raise RetireRefused(f"{kid} still signs tokens: `agora keys rotate` first, then retire it later")
        stopped = newer[0].created_at + activation
        lifetime = timedelta(seconds=self._settings.access_token_ttl_seconds + LEEWAY_SECONDS)
        if now < stopped + lifetime:
            raise RetireRefused(
                f"tokens signed by {kid} may be valid until {(stopped + lifetime).isoformat(timespec='seconds')}; "
                "retire it after that"
            )
        await session.execute(signing_keys.update().where(signing_keys.c.kid == kid).values(retired_at=now))
        self._current = None

    async def _signing_key(self, session: AsyncSession) -> tuple[str, Ed25519PrivateKey]:
        if self._current is None or time.monotonic() - self._loaded_at > self._settings.jwks_refresh_seconds:
            # The newest key old enough that every verifier has seen it; before any
            # key is that old (a new installation), the first key.
            active_since = datetime.now(UTC) - timedelta(seconds=self._settings.signing_key_activation_seconds)
            live = select(signing_keys).where(signing_keys.c.retired_at.is_(None))
            row = (
                await session.execute(
                    live.where(signing_keys.c.created_at <= active_since)
                    .order_by(signing_keys.c.created_at.desc())
                    .limit(1)
                )
            ).first() or (await session.execute(live.order_by(signing_keys.c.created_at).limit(1))).one()
            pem = self._cipher.open(Sealed(row.private_key_enc, row.private_key_key_id), SIGNING_KEY.context(row.kid))
            key = serialization.load_pem_private_key(pem.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise TypeError(f"signing key {row.kid} is not an Ed25519 key")
            self._current = (row.kid, key)
            self._loaded_at = time.monotonic()
        return self._current

    async def access_token(
        self,
        session: AsyncSession,
        *,
        user_id: uuid.UUID,
        role: str,
        scopes: tuple[str, ...] = (),
        session_id: uuid.UUID | None = None,
    ) -> str:
        """A signed access token; `user_id` is a client id for partner and service tokens.

        `sid` names the session (the refresh-token family) so a logout can void just its
        tokens; `iat` has milliseconds (RFC 7519 allows a fraction), so a revocation at
        12:00:00.400 voids a token of 12:00:00.300 and not one of 12:00:00.500.
        """
        kid, key = await self._signing_key(session)
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": self._settings.jwt_issuer,
            "aud": self._settings.jwt_audience,
            "sub": str(user_id),
            "role": role,
            # Rounded up: a token issued after a revocation never looks older than it.
            "iat": math.ceil(now.timestamp() * 1000) / 1000,
            "exp": now + timedelta(seconds=self._settings.access_token_ttl_seconds),
            "jti": uuid.uuid4().hex,
        }
        if session_id is not None:
            claims["sid"] = str(session_id)
        if scopes:
            claims["scope"] = " ".join(scopes)  # RFC 9068 / 8693: space-delimited
        return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


def new_refresh_token() -> tuple[str, str]:
    """An opaque refresh token and the hash that is all the database keeps."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RetireRefused(Exception):
    """The key cannot be retired (yet); the message says why and when it can."""


async def retire_signing_key(settings: Settings, kid: str) -> None:
    """Retire a signing key from the operator's command line (`agora keys retire KID`)."""
    cipher = FieldCipher.from_config(settings.data_keys, settings.data_key_id)
    async with operator_unit_of_work(settings, "users") as ctx:
        await KeyRing(cipher, settings).retire(ctx.session, kid, now=datetime.now(UTC))


async def rotate_signing_key(settings: Settings) -> str:
    """Add a signing key from the operator's command line (`agora keys rotate`)."""
    cipher = FieldCipher.from_config(settings.data_keys, settings.data_key_id)
    async with operator_unit_of_work(settings, "users") as ctx:
        return await KeyRing(cipher, settings).add_key(ctx.session)
