"""The token lifecycle: refresh rotation with reuse detection, logout, password change, key rotation."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import aiohttp
import jwt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from harness import environment
from harness.accounts import login, register
from harness.stack import Stack


async def _refresh(http: aiohttp.ClientSession, token: str) -> tuple[int, dict[str, Any]]:
    async with http.post("/api/auth/refresh", json={"refresh_token": token}) as resp:
        return resp.status, await resp.json()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_refresh_rotates_and_a_reused_token_ends_the_session(
    http: aiohttp.ClientSession, db: AsyncEngine
) -> None:
    user = await register(http)
    first = await login(http, user["email"], user["password"])
    status, second = await _refresh(http, first["refresh_token"])
    assert status == 200
    assert second["refresh_token"] != first["refresh_token"]
    assert second["user"]["user_id"] == user["user_id"]
    async with http.get("/api/users/me", headers=_bearer(second["access_token"])) as resp:
        assert resp.status == 200
    # The first token again: someone holds a copy. Both it and its successor die.
    status, problem = await _refresh(http, first["refresh_token"])
    assert status == 401 and problem["code"] == "unauthorized"
    status, _ = await _refresh(http, second["refresh_token"])
    assert status == 401
    async with db.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT expires_at, revoked_at FROM users.refresh_tokens WHERE user_id = :u"),
                {"u": user["user_id"]},
            )
        ).all()
    assert len(rows) == 2
    assert len({r.expires_at for r in rows}) == 1  # the session's lifetime is absolute
    assert all(r.revoked_at is not None for r in rows)


async def test_a_garbage_refresh_token_is_401(http: aiohttp.ClientSession) -> None:
    status, problem = await _refresh(http, "not-a-token")
    assert status == 401 and problem["code"] == "unauthorized"


async def test_logout_ends_this_session_only(http: aiohttp.ClientSession) -> None:
    user = await register(http)
    phone = await login(http, user["email"], user["password"])
    laptop = await login(http, user["email"], user["password"])
    async with http.post("/api/auth/logout", json={"refresh_token": phone["refresh_token"]}) as resp:
        assert resp.status == 204
    assert (await _refresh(http, phone["refresh_token"]))[0] == 401
    assert (await _refresh(http, laptop["refresh_token"]))[0] == 200
    async with http.post("/api/auth/logout", json={"refresh_token": "never-issued"}) as resp:
        assert resp.status == 204  # says nothing about which tokens exist


async def test_logout_all_ends_every_session(http: aiohttp.ClientSession) -> None:
    user = await register(http)
    one = await login(http, user["email"], user["password"])
    two = await login(http, user["email"], user["password"])
    async with http.post("/api/auth/logout-all") as resp:
        assert resp.status == 401
    async with http.post("/api/auth/logout-all", headers=_bearer(one["access_token"])) as resp:
        assert resp.status == 204
    assert (await _refresh(http, one["refresh_token"]))[0] == 401
    assert (await _refresh(http, two["refresh_token"]))[0] == 401


async def test_password_change(http: aiohttp.ClientSession, db: AsyncEngine) -> None:
    user = await register(http)
    session = await login(http, user["email"], user["password"])
    url, auth = f"/api/users/{user['user_id']}/password", _bearer(session["access_token"])
    wrong = {"current_password": "wrong one!", "new_password": "a brand new passphrase"}
    async with http.post(url, json=wrong, headers=auth) as resp:
        assert resp.status == 403  # a well-formed request without the proof it asks for
        assert "current_password" in {e["field"] for e in (await resp.json())["errors"]}
    cases = [
        ({"current_password": user["password"], "new_password": "password1"}, "new_password"),
        ({"current_password": user["password"], "new_password": user["password"]}, "new_password"),
        ({"current_password": user["password"], "new_password": "a brand new passphrase", "user_id": "x"}, "user_id"),
    ]
    for body, field in cases:
        async with http.post(url, json=body, headers=auth) as resp:
            assert resp.status == 422, body
            assert field in {e["field"] for e in (await resp.json())["errors"]}
    other = await register(http)
    body = {"current_password": user["password"], "new_password": "a brand new passphrase"}
    async with http.post(f"/api/users/{other['user_id']}/password", json=body, headers=auth) as resp:
        assert resp.status == 404
    async with http.post(url, json=body, headers=auth) as resp:
        assert resp.status == 204, await resp.text()
    async with http.post("/api/users/login", json={"email": user["email"], "password": user["password"]}) as resp:
        assert resp.status == 401
    await login(http, user["email"], "a brand new passphrase")
    assert (await _refresh(http, session["refresh_token"]))[0] == 401  # old sessions ended
    async with db.connect() as conn:
        events = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM users.outbox WHERE routing_key = 'users.password_changed.v1' "
                    "AND body->>'user_id' = :u"
                ),
                {"u": user["user_id"]},
            )
        ).scalar_one()
    assert events == 1


async def test_key_rotation_keeps_old_tokens_valid(stack: Stack, http: aiohttp.ClientSession) -> None:
    user = await register(http)
    before = await login(http, user["email"], user["password"])
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]
    await asyncio.to_thread(
        subprocess.run,
        [str(environment.ROOT / ".venv/bin/agora"), "keys", "rotate"],
        env=stack.env,
        check=True,
        cwd=environment.ROOT,
        capture_output=True,
    )
    async with http.get("/api/auth/jwks.json") as resp:
        assert resp.status == 200 and "max-age" in resp.headers["Cache-Control"]
        kids = [k["kid"] for k in (await resp.json())["keys"]]
    assert old_kid in kids and len(kids) >= 2
    # Published at once, but it signs only after the activation delay, by when every
    # verifier has refreshed its keys.
    right_away = await login(http, user["email"], user["password"])
    assert jwt.get_unverified_header(right_away["access_token"])["kid"] == old_kid
    await asyncio.sleep(4.5)
    after = await login(http, user["email"], user["password"])
    new_kid = jwt.get_unverified_header(after["access_token"])["kid"]
    assert new_kid != old_kid and new_kid == kids[0]
    for token in (before["access_token"], after["access_token"]):
        async with http.get("/api/users/me", headers=_bearer(token)) as resp:
            assert resp.status == 200
