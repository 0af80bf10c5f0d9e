"""Token-signing keys are retired once their tokens have expired, and then verify nothing.

The review found every key row in the JWKS forever, so a leaked key verified forever.
These tests run `KeyRing` against a database of their own (migrated like the suite's),
because retiring the suite's signing key would void every token the other tests hold.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.engine import make_sessionmaker
from db.tables.users import signing_keys
from harness import environment
from harness.stack import Stack
from kernel.crypto import FieldCipher
from kernel.settings import Settings
from kernel.tokens import InvalidToken, TokenVerifier
from workers.users.keys import KeyRing, RetireRefused

TTL = 900


@pytest.fixture(scope="module")
async def keys_db(stack: Stack) -> AsyncIterator[tuple[AsyncEngine, Settings]]:
    base, _ = stack.env["AGORA_DATABASE_URL"].rsplit("/", 1)
    name = f"{environment.DATABASE}_keys"
    admin = create_async_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    env = {**stack.env, "AGORA_DATABASE_URL": f"{base}/{name}"}
    upgrade = [str(environment.ROOT / ".venv/bin/agora"), "db", "upgrade"]
    await asyncio.to_thread(subprocess.run, upgrade, env=env, check=True, cwd=environment.ROOT)
    data_key = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(
        database_url=env["AGORA_DATABASE_URL"],
        data_keys=f"k1:{data_key}",
        data_key_id="k1",
        access_token_ttl_seconds=TTL,
        signing_key_activation_seconds=3,
    )
    engine = create_async_engine(settings.database_url)
    yield engine, settings
    await engine.dispose()
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    await admin.dispose()


async def _age(engine: AsyncEngine, kid: str, by: timedelta) -> None:
    """Pretend the key was made `by` earlier (waiting out a token lifetime in a test is not an option)."""
    async with engine.begin() as conn:
        await conn.execute(
            update(signing_keys).where(signing_keys.c.kid == kid).values(created_at=signing_keys.c.created_at - by)
        )


async def test_a_key_retires_only_after_its_tokens_expired_and_then_verifies_nothing(
    keys_db: tuple[AsyncEngine, Settings],
) -> None:
    engine, settings = keys_db
    ring = KeyRing(FieldCipher.from_config(settings.data_keys, settings.data_key_id), settings)
    sessions = make_sessionmaker(engine)
    async with sessions.begin() as session:
        await ring.ensure_key(session)
        old = (await ring.jwks(session))["keys"][0]["kid"]
        token = await ring.access_token(session, user_id=uuid4(), role="member")

    async def jwks() -> dict[str, object]:
        async with sessions() as session:
            return await ring.jwks(session)

    verifier = TokenVerifier(jwks, issuer=settings.jwt_issuer, audience=settings.jwt_audience, max_age=0)
    await verifier.verify(token)

    async with sessions.begin() as session:
        with pytest.raises(RetireRefused, match="still signs"):  # the only key: rotate first
            await ring.retire(session, old, now=datetime.now(UTC))
        new = await ring.add_key(session)
    await _age(engine, old, timedelta(hours=1))
    await _age(engine, new, timedelta(seconds=settings.signing_key_activation_seconds))
    async with sessions.begin() as session:
        # The new key signs now, but the old key's last tokens live another 15 minutes.
        with pytest.raises(RetireRefused, match="may be valid until"):
            await ring.retire(session, old, now=datetime.now(UTC))
        with pytest.raises(RetireRefused, match="still signs"):
            await ring.retire(session, new, now=datetime.now(UTC))
    later = datetime.now(UTC) + timedelta(seconds=TTL + 31)
    async with sessions.begin() as session:
        await ring.retire(session, old, now=later)
        assert [k["kid"] for k in (await ring.jwks(session))["keys"]] == [new]
    with pytest.raises(InvalidToken, match="unknown signing key"):
        await verifier.verify(token)
    async with sessions.begin() as session:
        await verifier.verify(await ring.access_token(session, user_id=uuid4(), role="member"))  # signed by the new key
