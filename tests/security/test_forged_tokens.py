"""Forged, expired and misdirected tokens are refused at the edge (401) and on the broker (dead letter).

The forgeries are made properly: with Agora's real signing key where the point is
a bad claim (expired, wrong audience or issuer, missing expiry), so that only the
claim can be what gets them refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt
import pytest
from aio_pika.abc import AbstractRobustConnection
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.users import GET_USER
from db.sealed import SIGNING_KEY
from edge.sessions import ACCESS_COOKIE
from harness import environment
from harness.accounts import bearer, login, register
from harness.stack import Stack
from kernel.crypto import FieldCipher, Sealed
from kernel.settings import Settings
from tests.reliability.conftest import dead_letters, publish_command


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def _real_key(stack: Stack, db: AsyncEngine, kid: str) -> Ed25519PrivateKey:
    settings = Settings(
        _env_file=environment.ROOT / ".run" / "agora.env", **{"database_url": stack.env["AGORA_DATABASE_URL"]}
    )  # type: ignore[call-arg]
    cipher = FieldCipher.from_config(settings.data_keys, settings.data_key_id)
    async with db.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM users.signing_keys WHERE kid = :k"), {"k": kid})).one()
    pem = cipher.open(Sealed(row.private_key_enc, row.private_key_key_id), SIGNING_KEY.context(kid))
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


Forge = Callable[[str, Ed25519PrivateKey], str]


def _resign(change: dict[str, Any], drop: tuple[str, ...] = ()) -> Forge:
    def forge(token: str, key: Ed25519PrivateKey) -> str:
        claims = {k: v for k, v in {**_claims(token), **change}.items() if k not in drop}
        return jwt.encode(claims, key, algorithm="EdDSA", headers=jwt.get_unverified_header(token))

    return forge


def _alg_none(token: str, key: Ed25519PrivateKey) -> str:
    header = {**jwt.get_unverified_header(token), "alg": "none"}
    return f"{_b64(header)}.{token.split('.')[1]}."


def _other_key(token: str, key: Ed25519PrivateKey) -> str:
    return _resign({})(token, Ed25519PrivateKey.generate())


def _tampered(token: str, key: Ed25519PrivateKey) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{_b64({**_claims(token), 'role': 'admin'})}.{signature}"


def _hs256_with_public_key(token: str, key: Ed25519PrivateKey) -> str:
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    header = {**jwt.get_unverified_header(token), "alg": "HS256"}
    signing_input = f"{_b64(header)}.{token.split('.')[1]}".encode()
    mac = base64.urlsafe_b64encode(hmac.new(public, signing_input, hashlib.sha256).digest()).decode().rstrip("=")
    return f"{signing_input.decode()}.{mac}"


def _unknown_kid(token: str, key: Ed25519PrivateKey) -> str:
    return jwt.encode(_claims(token), key, algorithm="EdDSA", headers={"kid": "no-such-key"})


_PAST = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp())
FORGERIES: dict[str, Forge] = {
    "alg_none": _alg_none,
    "wrong_key": _other_key,
    "expired": _resign({"exp": _PAST, "iat": _PAST - 900}),
    "wrong_audience": _resign({"aud": "someone-else"}),
    "wrong_issuer": _resign({"iss": "https://evil.example"}),
    "no_expiry": _resign({}, drop=("exp",)),
    "tampered_role": _tampered,
    "hs256_key_confusion": _hs256_with_public_key,
    "unknown_kid": _unknown_kid,
}


@pytest.fixture(scope="module")
async def victim(http: aiohttp.ClientSession, stack: Stack, db: AsyncEngine) -> dict[str, Any]:
    user = await register(http)
    session = await login(http, user["email"], user["password"])
    key = await _real_key(stack, db, jwt.get_unverified_header(session["access_token"])["kid"])
    return {**session, "key": key}


async def test_a_token_re_signed_with_the_real_key_works(http: aiohttp.ClientSession, victim: dict[str, Any]) -> None:
    # The control: the forgeries below differ from this token only by what they change.
    async with http.get("/api/users/me", headers=bearer(_resign({})(victim["access_token"], victim["key"]))) as resp:
        assert resp.status == 200


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_a_forged_token_is_refused_over_http(
    http: aiohttp.ClientSession, victim: dict[str, Any], forgery: str
) -> None:
    token = FORGERIES[forgery](victim["access_token"], victim["key"])
    async with http.get("/api/users/me", headers=bearer(token)) as resp:
        assert resp.status == 401
        assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    async with http.get("/api/users/me", headers={"Cookie": f"{ACCESS_COOKIE}={token}"}) as resp:
        assert resp.status == 401


async def test_forged_tokens_are_dead_lettered_on_the_broker_and_logged(
    amqp: AbstractRobustConnection, stack: Stack, victim: dict[str, Any]
) -> None:
    body = {"user_id": victim["user"]["user_id"]}
    sent = {}
    for name, forge in FORGERIES.items():
        token = forge(victim["access_token"], victim["key"])
        sent[name] = await publish_command(
            amqp, GET_USER.routing_key, body, headers={"authorization": f"Bearer {token}"}
        )
    dead = await dead_letters(amqp, f"{GET_USER.queue}.dlq", expect=len(sent), ids=set(sent.values()))
    assert dead.keys() == set(sent.values())
    log = stack.users.log_path.read_text().splitlines()
    security = [json.loads(line) for line in log if "security: rejected actor token" in line]
    assert set(sent.values()) <= {entry["message_id"] for entry in security}
