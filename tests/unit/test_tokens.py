import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from kernel.tokens import LEEWAY_SECONDS, InvalidToken, TokenVerifier

ISS, AUD = "agora", "agora-api"


def _jwk(key: Ed25519PrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, alg="EdDSA", use="sig")
    return jwk


def _token(key: Ed25519PrivateKey, kid: str, **claims: Any) -> str:
    now = datetime.now(UTC)
    body = {
        "iss": ISS,
        "aud": AUD,
        "sub": str(uuid4()),
        "role": "member",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    body.update(claims)
    return jwt.encode(body, key, algorithm="EdDSA", headers={"kid": kid})


class Keys:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.fetches = 0

    async def fetch(self) -> dict[str, Any]:
        self.fetches += 1
        return {"keys": self.published}


@pytest.fixture
def setup() -> tuple[Keys, Ed25519PrivateKey, TokenVerifier]:
    keys = Keys()
    key = Ed25519PrivateKey.generate()
    keys.published.append(_jwk(key, "k1"))
    return keys, key, TokenVerifier(keys.fetch, issuer=ISS, audience=AUD)


async def test_a_valid_token_gives_the_actor(setup: tuple[Keys, Ed25519PrivateKey, TokenVerifier]) -> None:
    _, key, verifier = setup
    uid = uuid4()
    actor = await verifier.verify(_token(key, "k1", sub=str(uid), role="seller"))
    assert actor.user_id == uid
    assert actor.role == "seller"


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "someone-else"},
        {"iss": "evil"},
        {"exp": datetime.now(UTC) - timedelta(minutes=2)},  # beyond the 30 s leeway
    ],
)
async def test_wrong_audience_issuer_or_expired_is_refused(
    setup: tuple[Keys, Ed25519PrivateKey, TokenVerifier], claims: dict[str, Any]
) -> None:
    _, key, verifier = setup
    with pytest.raises(InvalidToken):
        await verifier.verify(_token(key, "k1", **claims))


async def test_expiry_within_leeway_is_accepted(setup: tuple[Keys, Ed25519PrivateKey, TokenVerifier]) -> None:
    _, key, verifier = setup
    await verifier.verify(_token(key, "k1", exp=datetime.now(UTC) - timedelta(seconds=5)))


async def test_a_forged_signature_is_refused(setup: tuple[Keys, Ed25519PrivateKey, TokenVerifier]) -> None:
    _, _, verifier = setup
    with pytest.raises(InvalidToken):
        await verifier.verify(_token(Ed25519PrivateKey.generate(), "k1"))


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
async def test_malformed_tokens_are_refused(setup: tuple[Keys, Ed25519PrivateKey, TokenVerifier], token: str) -> None:
    _, _, verifier = setup
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_hs256_with_the_public_key_as_secret_is_refused(
    setup: tuple[Keys, Ed25519PrivateKey, TokenVerifier],
) -> None:
    keys, _, verifier = setup
    now = datetime.now(UTC)
    # Every required claim present: only the algorithm allow-list can refuse it.
    claims = {"sub": str(uuid4()), "iss": ISS, "aud": AUD, "iat": now, "exp": now + timedelta(minutes=5)}
    forged = jwt.encode(claims, keys.published[0]["x"], algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(InvalidToken):
        await verifier.verify(forged)


async def test_a_new_key_id_triggers_one_refetch(setup: tuple[Keys, Ed25519PrivateKey, TokenVerifier]) -> None:
    keys, key, verifier = setup
    await verifier.verify(_token(key, "k1"))
    assert keys.fetches == 1
    new = Ed25519PrivateKey.generate()
    keys.published.append(_jwk(new, "k2"))
    verifier._keys._fetched_at = time.monotonic() - 6  # pretend the refetch interval has passed
    await verifier.verify(_token(new, "k2"))
    await verifier.verify(_token(key, "k1"))
    assert keys.fetches == 2


async def test_a_burst_of_tokens_on_a_cold_cache_all_wait_for_the_one_fetch() -> None:
    # Found by the chaos test: the first verifications after a worker started raced the
    # fetch they were queued behind and answered "unknown signing key".
    key = Ed25519PrivateKey.generate()
    fetches = 0

    async def slow_fetch() -> dict[str, Any]:
        nonlocal fetches
        fetches += 1
        await asyncio.sleep(0.05)
        return {"keys": [_jwk(key, "k1")]}

    verifier = TokenVerifier(slow_fetch, issuer=ISS, audience=AUD)
    actors = await asyncio.gather(*(verifier.verify(_token(key, "k1")) for _ in range(8)))
    assert len(actors) == 8
    assert fetches == 1


async def test_unknown_key_ids_cannot_hammer_the_key_service(
    setup: tuple[Keys, Ed25519PrivateKey, TokenVerifier],
) -> None:
    keys, _, verifier = setup
    stranger = Ed25519PrivateKey.generate()
    for _ in range(20):
        with pytest.raises(InvalidToken):
            await verifier.verify(_token(stranger, "nope"))
    assert keys.fetches == 1


async def test_keys_are_refreshed_once_they_are_older_than_max_age(
    setup: tuple[Keys, Ed25519PrivateKey, TokenVerifier],
) -> None:
    keys, key, verifier = setup  # max_age is 60 s by default
    await verifier.verify(_token(key, "k1"))
    await verifier.verify(_token(key, "k1"))
    assert keys.fetches == 1
    verifier._keys._fetched_at = time.monotonic() - 61  # a minute later
    await verifier.verify(_token(key, "k1"))
    assert keys.fetches == 2


async def test_a_failed_refresh_keeps_the_known_keys(setup: tuple[Keys, Ed25519PrivateKey, TokenVerifier]) -> None:
    _, key, verifier = setup
    await verifier.verify(_token(key, "k1"))

    async def down() -> dict[str, Any]:
        raise ConnectionError("users service down")

    verifier._fetch = down
    verifier._keys._fetched_at = time.monotonic() - 61
    await verifier.verify(_token(key, "k1"))  # still verifies with what it knew


async def test_a_token_verified_before_is_refused_once_its_key_is_withdrawn(
    setup: tuple[Keys, Ed25519PrivateKey, TokenVerifier],
) -> None:
    keys, key, verifier = setup
    token = _token(key, "k1")
    first = await verifier.verify(token)
    assert await verifier.verify(token) == first  # kept: no second signature check needed
    keys.published.clear()  # the key is withdrawn (a leak): its tokens die with it
    verifier._keys._fetched_at = time.monotonic() - 61
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_a_token_verified_before_is_refused_once_it_expires(
    setup: tuple[Keys, Ed25519PrivateKey, TokenVerifier],
) -> None:
    _, key, verifier = setup
    token = _token(key, "k1", exp=int(time.time()) - LEEWAY_SECONDS + 1)  # a second of leeway left
    await verifier.verify(token)
    await asyncio.sleep(1.5)
    with pytest.raises(InvalidToken):
        await verifier.verify(token)
