"""Abuse limits and user enumeration, against an edge with production-like limits.

These tests run their own users worker and edge in a separate vhost: real rate
limits (the shared stack's are lifted so the suite is not throttled), the real
password-hashing cost (so timing differences would show), and one trusted proxy hop
so each test can speak from its own client address.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from harness import broker, environment, processes
from harness.accounts import new_user
from harness.stack import Stack

PORT = environment.HTTP_PORT + 12
LIMITS = {
    "token:ip": "2/minute",
    "refresh:account": "2/minute",
    "login:ip": "8/minute",
    "login:account": "3/minute",
    "register:ip": "3/minute",
    "password:account": "2/minute",
}


@pytest.fixture(scope="module")
def hardened(stack: Stack) -> Iterator[str]:
    vhost = f"{environment.VHOST}_abuse"
    broker.reset_vhost(vhost)
    env = {
        **stack.env,
        "AGORA_AMQP_URL": stack.env["AGORA_AMQP_URL"].rsplit("/", 1)[0] + f"/{vhost}",
        "AGORA_HTTP_PORT": str(PORT),
        "AGORA_BCRYPT_ROUNDS": "10",
        "AGORA_TRUSTED_PROXY_HOPS": "1",
        "AGORA_RATE_LIMITS": json.dumps(LIMITS),
    }
    worker = processes.worker("users", env, index=8)
    worker.name = "worker-users-abuse"
    edge = processes.edge(env, "edge-abuse", PORT)
    try:
        worker.start()
        edge.start()
        yield f"http://127.0.0.1:{PORT}"
    finally:
        edge.stop()
        worker.stop()
        broker.management_api("DELETE", f"/vhosts/{vhost}")


@pytest.fixture
async def client(hardened: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(hardened) as session:
        yield session


def _from(ip: str | None = None) -> dict[str, str]:
    """Headers as if a proxy forwarded the request for `ip` (a fresh address by default)."""
    return {"X-Forwarded-For": ip or f"198.51.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}


async def _login(
    client: aiohttp.ClientSession, email: str, password: str, ip: str | None = None
) -> aiohttp.ClientResponse:
    async with client.post("/api/users/login", json={"email": email, "password": password}, headers=_from(ip)) as resp:
        await resp.read()
        return resp


async def _register(client: aiohttp.ClientSession, ip: str | None = None) -> dict[str, Any]:
    body = new_user()
    async with client.post("/api/users/register", json=body, headers=_from(ip)) as resp:
        assert resp.status == 201, await resp.text()
        return {**(await resp.json()), "password": body["password"]}


async def test_login_guesses_on_an_account_block_the_guesser_not_the_owner(client: aiohttp.ClientSession) -> None:
    user = await _register(client)
    guesser = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"  # its own range: no other test's address
    for _ in range(3):
        assert (await _login(client, user["email"], "wrong password!", guesser)).status == 401
    blocked = await _login(client, user["email"], user["password"], guesser)  # even the right password waits
    assert blocked.status == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    # The review found that anyone could lock a known account out for an hour this way:
    # the owner, from their own address, signs in as usual.
    assert (await _login(client, user["email"], user["password"])).status == 200


async def test_login_is_limited_per_address(client: aiohttp.ClientSession) -> None:
    ip = f"203.0.113.{uuid.uuid4().int % 250}"
    statuses = [
        (await _login(client, f"nobody-{uuid.uuid4().hex[:8]}@example.com", "x" * 10, ip)).status for _ in range(9)
    ]
    assert statuses[:8] == [401] * 8
    assert statuses[8] == 429


async def test_register_is_limited_per_address(client: aiohttp.ClientSession) -> None:
    ip = f"192.0.2.{uuid.uuid4().int % 250}"
    for _ in range(3):
        await _register(client, ip)
    async with client.post("/api/users/register", json=new_user(), headers=_from(ip)) as resp:
        assert resp.status == 429
        problem = await resp.json()
        assert problem["code"] == "too_many_requests" and resp.headers["Retry-After"]


async def test_password_change_is_limited_per_account(client: aiohttp.ClientSession) -> None:
    user = await _register(client)
    async with client.post(
        "/api/users/login", json={"email": user["email"], "password": user["password"]}, headers=_from()
    ) as resp:
        token = (await resp.json())["access_token"]
    url, auth = f"/api/users/{user['user_id']}/password", {"Authorization": f"Bearer {token}"}
    body = {"current_password": "not the password", "new_password": "a brand new passphrase"}
    statuses = []
    for _ in range(3):
        async with client.post(url, json=body, headers={**auth, **_from()}) as resp:
            statuses.append(resp.status)
    assert statuses == [403, 403, 429]


async def test_unknown_email_and_wrong_password_look_the_same(client: aiohttp.ClientSession) -> None:
    user = await _register(client)
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"

    async def attempt(email: str) -> tuple[float, int, dict[str, Any]]:
        started = time.perf_counter()
        async with client.post(
            "/api/users/login", json={"email": email, "password": "wrong password!"}, headers=_from()
        ) as resp:
            body = await resp.json()
        body.pop("request_id")
        return time.perf_counter() - started, resp.status, body

    # Alternate the two, two tries per account (under its limit), on fresh addresses.
    samples: dict[str, list[float]] = {"known": [], "unknown": []}
    bodies = set()
    for round_ in range(2):
        for kind, email in (("known", user["email"]), ("unknown", unknown)):
            elapsed, status, body = await attempt(email)
            assert status == 401
            samples[kind].append(elapsed)
            bodies.add(json.dumps(body, sort_keys=True))
        if round_ == 0:
            user = await _register(client)  # a fresh account keeps the per-account limit out of the way
            unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    assert len(bodies) == 1  # same status and same body
    known, unknown_t = statistics.median(samples["known"]), statistics.median(samples["unknown"])
    # Both pay for a full hash verification (tens of ms at this cost); skipping it for
    # an unknown email would make that answer several times faster.
    assert 0.5 < unknown_t / known < 2, samples


async def test_the_partner_token_endpoint_is_limited_per_address(client: aiohttp.ClientSession) -> None:
    ip = f"192.0.2.{uuid.uuid4().int % 250}"
    form = {"grant_type": "client_credentials", "client_id": str(uuid.uuid4()), "client_secret": "guess"}
    statuses = []
    for _ in range(3):
        async with client.post("/api/oauth/token", data=form, headers=_from(ip)) as resp:
            statuses.append(resp.status)
    assert statuses == [401, 401, 429]


async def test_refresh_is_limited_per_session(client: aiohttp.ClientSession) -> None:
    # Guessing refresh tokens, or hammering one: counted per presented token.
    token = "guess-" + uuid.uuid4().hex
    statuses = []
    for _ in range(3):
        async with client.post("/api/auth/refresh", json={"refresh_token": token}, headers=_from()) as resp:
            statuses.append(resp.status)
    assert statuses == [401, 401, 429]
