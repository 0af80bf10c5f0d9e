"""The users endpoints, end to end: HTTP → edge → RabbitMQ → users worker → PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import jwt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.users import LOGIN_USER
from harness import processes
from harness.accounts import login, new_user, register
from harness.stack import Stack
from tests.support import until, worker_metric

PROBLEM = "application/problem+json"


async def _problem(resp: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == PROBLEM
    body: dict[str, Any] = await resp.json()
    assert body["status"] == status
    assert body["request_id"] == resp.headers["X-Request-ID"]
    assert {"type", "title", "detail", "code"} <= body.keys()
    return body


def _fields(problem: dict[str, Any]) -> set[str]:
    return {e["field"] for e in problem.get("errors", [])}


async def test_register_returns_the_member(http: aiohttp.ClientSession) -> None:
    body = new_user(
        phone="+14155550101",
        address={
            "line1": "1 Market St",
            "city": "San Francisco",
            "region": "CA",
            "postal_code": "94105",
            "country": "US",
        },
    )
    async with http.post("/api/users/register", json=body) as resp:
        assert resp.status == 201, await resp.text()
        user = await resp.json()
        assert resp.headers["Location"] == f"/api/users/{user['user_id']}"
    assert user["email"] == body["email"]
    assert user["username"] == body["username"]
    assert user["role"] == "member"
    assert user["phone"] == "+14155550101"
    assert user["address"]["city"] == "San Francisco"
    assert {"user_id", "created_at", "updated_at"} <= user.keys()
    assert "password" not in user and "password_hash" not in user


async def test_duplicate_email_or_username_is_a_conflict(http: aiohttp.ClientSession) -> None:
    first = await register(http)
    again = new_user(email=first["email"].upper())
    async with http.post("/api/users/register", json=again) as resp:
        assert "email" in _fields(await _problem(resp, 409))
    same_name = new_user(username=first["username"].upper())
    async with http.post("/api/users/register", json=same_name) as resp:
        assert "username" in _fields(await _problem(resp, 409))


async def test_invalid_registration_lists_every_field(http: aiohttp.ClientSession) -> None:
    body = {"email": "not-an-email", "username": "ok_name", "password": "short", "role": "admin"}
    async with http.post("/api/users/register", json=body) as resp:
        problem = await _problem(resp, 422)
    assert _fields(problem) >= {"email", "password", "role"}


async def test_common_password_is_refused(http: aiohttp.ClientSession) -> None:
    async with http.post("/api/users/register", json=new_user(password="password123")) as resp:
        assert _fields(await _problem(resp, 422)) == {"password"}


async def test_role_cannot_be_chosen_at_registration(http: aiohttp.ClientSession) -> None:
    async with http.post("/api/users/register", json=new_user(role="admin")) as resp:
        assert _fields(await _problem(resp, 422)) == {"role"}


async def test_bodies_must_be_json_and_small(http: aiohttp.ClientSession) -> None:
    async with http.post("/api/users/register", data="email=a", headers={"Content-Type": "text/plain"}) as resp:
        await _problem(resp, 415)
    async with http.post("/api/users/register", data="{nope", headers={"Content-Type": "application/json"}) as resp:
        await _problem(resp, 422)
    huge = new_user(username="x" * 200_000)
    async with http.post("/api/users/register", json=huge) as resp:
        await _problem(resp, 413)


async def test_login_gives_an_eddsa_token_with_a_key_id(http: aiohttp.ClientSession) -> None:
    user = await register(http)
    result = await login(http, user["email"], user["password"])
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] > 0
    assert result["refresh_token"]
    assert result["user"]["user_id"] == user["user_id"]
    header = jwt.get_unverified_header(result["access_token"])
    assert header["alg"] == "EdDSA" and header["kid"]


async def test_unknown_email_and_wrong_password_look_the_same(http: aiohttp.ClientSession) -> None:
    user = await register(http)
    async with http.post("/api/users/login", json={"email": user["email"], "password": "wrong password!"}) as r1:
        wrong = await _problem(r1, 401)
    async with http.post("/api/users/login", json={"email": "nobody@example.com", "password": "whatever1"}) as r2:
        unknown = await _problem(r2, 401)
    for body in (wrong, unknown):
        body.pop("request_id")
    assert wrong == unknown


async def test_me_and_own_profile(http: aiohttp.ClientSession) -> None:
    user = await register(http, phone="+442071838750")
    token = (await login(http, user["email"], user["password"]))["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    async with http.get("/api/users/me", headers=auth) as resp:
        assert resp.status == 200
        me = await resp.json()
    assert me["user_id"] == user["user_id"]
    assert me["phone"] == "+442071838750"
    async with http.get(f"/api/users/{user['user_id']}", headers=auth) as resp:
        assert resp.status == 200
        assert (await resp.json())["email"] == user["email"]


async def test_no_or_bad_token_is_401(http: aiohttp.ClientSession) -> None:
    async with http.get("/api/users/me") as resp:
        await _problem(resp, 401)
    async with http.get("/api/users/me", headers={"Authorization": "Bearer not.a.token"}) as resp:
        await _problem(resp, 401)
    user = await register(http)
    token = (await login(http, user["email"], user["password"]))["access_token"]
    head, payload, sig = token.split(".")
    tampered = f"{head}.{payload}.{sig[::-1]}"
    async with http.get("/api/users/me", headers={"Authorization": f"Bearer {tampered}"}) as resp:
        await _problem(resp, 401)


async def test_another_members_account_is_not_found(http: aiohttp.ClientSession) -> None:
    alice, bob = await register(http), await register(http)
    token = (await login(http, alice["email"], alice["password"]))["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    async with http.get(f"/api/users/{bob['user_id']}", headers=auth) as resp:
        await _problem(resp, 404)
    async with http.put(f"/api/users/{bob['user_id']}", json={"username": "hijacked"}, headers=auth) as resp:
        await _problem(resp, 404)
    async with http.get(f"/api/users/{uuid.uuid4()}", headers=auth) as resp:
        await _problem(resp, 404)
    async with http.get("/api/users/not-a-uuid", headers=auth) as resp:
        await _problem(resp, 404)


async def test_partial_update(http: aiohttp.ClientSession) -> None:
    address = {"line1": "2 Elm", "city": "Leeds", "postal_code": "LS1", "country": "GB"}
    user = await register(http, phone="+14155550101", address=address)
    token = (await login(http, user["email"], user["password"]))["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    async with http.put(f"/api/users/{user['user_id']}", json={"phone": "+14155550199"}, headers=auth) as resp:
        assert resp.status == 200, await resp.text()
        updated = await resp.json()
    assert updated["phone"] == "+14155550199"
    assert updated["username"] == user["username"]
    assert updated["address"] == {**address, "line2": None, "region": None}
    async with http.put(f"/api/users/{user['user_id']}", json={"address": None}, headers=auth) as resp:
        assert (await resp.json())["address"] is None
    for forbidden in ({"user_id": str(uuid.uuid4())}, {"email": "x@example.com"}):
        async with http.put(f"/api/users/{user['user_id']}", json=forbidden, headers=auth) as resp:
            assert _fields(await _problem(resp, 422)) == set(forbidden)
    async with http.put(f"/api/users/{user['user_id']}", json={"role": "admin"}, headers=auth) as resp:
        await _problem(resp, 403)  # an admin-only field (tests/integration/test_roles.py)
    async with http.get("/api/users/me", headers=auth) as resp:
        me = await resp.json()
    assert me["role"] == "member" and me["email"] == user["email"]
    # PATCH says what PUT does here (issue 19): only the fields sent change; PUT keeps working.
    async with http.patch(f"/api/users/{user['user_id']}", json={"phone": "+1 415 555 0142"}, headers=auth) as resp:
        assert resp.status == 200, await resp.text()
        patched = await resp.json()
    assert (patched["phone"], patched["username"]) == ("+14155550142", user["username"])
    async with http.patch(f"/api/users/{user['user_id']}", json={"role": "admin"}, headers=auth) as resp:
        await _problem(resp, 403)
    async with http.request("PATCH", "/api/users/me", json={}, headers=auth) as resp:
        assert resp.status == 405 and "PATCH" not in resp.headers["Allow"]


async def test_username_change_to_a_taken_one_is_a_conflict(http: aiohttp.ClientSession) -> None:
    alice, bob = await register(http), await register(http)
    token = (await login(http, alice["email"], alice["password"]))["access_token"]
    body = {"username": bob["username"]}
    async with http.put(f"/api/users/{alice['user_id']}", json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        await _problem(r, 409)


async def test_personal_data_is_encrypted_at_rest(http: aiohttp.ClientSession, db: AsyncEngine) -> None:
    user = await register(
        http,
        phone="+14155550177",
        address={"line1": "9 Secret Rd", "city": "Oslo", "postal_code": "0150", "country": "NO"},
    )
    async with db.connect() as conn:
        row = (
            (await conn.execute(text("SELECT * FROM users.users WHERE user_id = :id"), {"id": user["user_id"]}))
            .mappings()
            .one()
        )
    flat = " ".join(str(v) for v in row.values())
    assert "5550177" not in flat and "Secret" not in flat
    assert row["phone_key_id"] and row["address_key_id"]
    assert row["password_hash"].startswith("$bcrypt-sha256$")


async def test_registration_event_is_published_through_the_outbox(http: aiohttp.ClientSession, db: AsyncEngine) -> None:

    user = await register(http)
    for _ in range(50):
        async with db.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT routing_key, sent_at, headers FROM users.outbox WHERE body->>'user_id' = :id"),
                    {"id": user["user_id"]},
                )
            ).one_or_none()
        if row and row.sent_at:
            break
        await asyncio.sleep(0.1)
    assert row is not None and row.sent_at is not None
    assert row.routing_key == "users.user_registered.v1"
    assert row.headers["causation_id"] and row.headers["correlation_id"]


async def test_request_id_is_echoed_and_carried_to_the_worker(http: aiohttp.ClientSession, db: AsyncEngine) -> None:
    request_id = f"test-{uuid.uuid4().hex}"
    body = new_user()
    async with http.post("/api/users/register", json=body, headers={"X-Request-ID": request_id}) as resp:
        assert resp.status == 201
        assert resp.headers["X-Request-ID"] == request_id
    async with http.get("/api/users/me") as resp:
        assert resp.headers["X-Request-ID"]  # generated when absent, even on errors
    # The worker handled the command under that id: the event it emitted carries it on.
    # (A delivery that goes well writes no log line at INFO, issue 14; its failures do,
    # with this id.)
    async with db.connect() as conn:
        carried = await conn.scalar(
            text("SELECT headers->>'correlation_id' FROM users.outbox WHERE body->>'email' = :email"),
            {"email": body["email"]},
        )
    assert carried == request_id


async def test_health_metrics_and_documents(http: aiohttp.ClientSession) -> None:
    for path in ("/healthz", "/readyz"):
        async with http.get(path) as resp:
            assert resp.status == 200
    # /metrics is on a port of its own, not published with the API (issue 13).
    async with http.get("/metrics") as resp:
        assert resp.status == 404
    async with http.get(f"http://127.0.0.1:{processes.edge_metrics_port()}/metrics") as resp:
        assert resp.status == 200
        assert "agora_edge_http_requests_total" in await resp.text()
    async with http.get("/api/openapi.json") as resp:
        doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    assert {"/api/users/register", "/api/users/login", "/api/users/me", "/api/users/{userId}"} <= doc["paths"].keys()
    async with http.get("/api/docs") as resp:
        assert resp.status == 200
        assert "swagger" in (await resp.text()).lower()
    async with http.get("/api/nowhere") as resp:
        await _problem(resp, 404)


async def test_worker_health_and_metrics(stack: Stack, http: aiohttp.ClientSession) -> None:
    async with aiohttp.ClientSession(f"http://127.0.0.1:{stack.users.port}") as worker:
        async with worker.get("/healthz") as resp:
            assert resp.status == 200
        async with worker.get("/readyz") as resp:
            assert resp.status == 200
            assert (await resp.json())["checks"] == {"consuming": True, "broker": True, "database": True}
        async with worker.get("/metrics") as resp:
            assert "agora_handled_total" in await resp.text()

    # The runtime times each delivery it takes (it is timed just after its reply).
    def timed() -> float:
        return worker_metric(stack.users.port, "agora_delivery_seconds_count", queue=LOGIN_USER.queue)

    before = timed()
    credentials = {"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "whatever1"}
    async with http.post("/api/users/login", json=credentials) as resp:
        await _problem(resp, 401)

    async def one_more() -> bool:
        return timed() == before + 1

    await until("the login's delivery is timed", one_more, within=2)
