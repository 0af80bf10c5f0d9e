"""Roles: members by default, only admins change roles or standing, everything admins do is audited."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from harness.accounts import bearer, create_admin, login, make_seller, new_user, register
from harness.processes import agora_cli
from harness.stack import Stack


async def _put(http: aiohttp.ClientSession, user_id: str, body: dict[str, Any], token: str) -> aiohttp.ClientResponse:
    async with http.put(f"/api/users/{user_id}", json=body, headers=bearer(token)) as resp:
        await resp.read()
        return resp


async def _audit(db: AsyncEngine, target_id: str) -> list[Any]:
    async with db.connect() as conn:
        return list(
            (
                await conn.execute(
                    text("SELECT * FROM users.audit_log WHERE target_id = :t ORDER BY id"), {"t": target_id}
                )
            ).all()
        )


async def test_registration_makes_a_member_and_role_cannot_be_self_assigned(http: aiohttp.ClientSession) -> None:
    async with http.post("/api/users/register", json=new_user(role="admin")) as resp:
        assert resp.status == 422  # not silently ignored either
    user = await register(http)
    assert user["role"] == "member"
    session = await login(http, user["email"], user["password"])
    for body in ({"role": "admin"}, {"role": "seller"}, {"disabled": False}):
        resp = await _put(http, user["user_id"], body, session["access_token"])
        assert resp.status == 403, body


async def test_a_member_cannot_touch_another_account(http: aiohttp.ClientSession) -> None:
    me = await register(http)
    other = await register(http)
    session = await login(http, me["email"], me["password"])
    resp = await _put(http, other["user_id"], {"username": "taken_over"}, session["access_token"])
    assert resp.status == 404  # someone else's account does not exist for a member
    resp = await _put(http, other["user_id"], {"role": "member"}, session["access_token"])
    assert resp.status == 403  # an admin-only field is refused whoever's account it names


async def test_a_demoted_admin_loses_admin_powers_at_once(
    stack: Stack, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    body = create_admin(stack.env)
    second = await login(http, body["email"], body["password"])
    second_id = second["user"]["user_id"]
    assert (await _put(http, second_id, {"role": "member"}, admin["access_token"])).status == 200
    # Its access token said "admin": the demotion revoked it, everywhere, at once.
    async with http.get("/api/admin/users", headers=bearer(second["access_token"])) as resp:
        assert resp.status == 401
    assert (await _put(http, second_id, {"role": "admin"}, second["access_token"])).status == 401
    assert (await _put(http, admin["user"]["user_id"], {"role": "member"}, second["access_token"])).status == 401
    # Signed in again it is a member, and may not make itself admin again.
    again = await login(http, body["email"], body["password"])
    assert (await _put(http, second_id, {"role": "admin"}, again["access_token"])).status == 403
    # Disabled: nothing at all, even with a token that has not expired.
    assert (await _put(http, second_id, {"disabled": True}, admin["access_token"])).status == 200
    async with http.get("/api/users/me", headers=bearer(again["access_token"])) as resp:
        assert resp.status == 401


async def test_an_admin_makes_a_seller_and_the_old_sessions_end(
    http: aiohttp.ClientSession, admin: dict[str, Any], db: AsyncEngine
) -> None:
    user = await register(http)
    before = await login(http, user["email"], user["password"])
    async with http.put(
        f"/api/users/{user['user_id']}", json={"role": "seller"}, headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["role"] == "seller"
    # The member-role session is over; a new login carries the new role.
    async with http.post("/api/auth/refresh", json={"refresh_token": before["refresh_token"]}) as resp:
        assert resp.status == 401
    after = await login(http, user["email"], user["password"])
    assert after["user"]["role"] == "seller"
    [entry] = await _audit(db, user["user_id"])
    assert entry.action == "user.update" and entry.actor_role == "admin"
    assert str(entry.actor_id) == admin["user"]["user_id"]
    assert entry.details == {"changed": ["role"], "role": {"from": "member", "to": "seller"}}
    assert entry.correlation_id


async def test_a_disabled_account_cannot_sign_in_until_enabled(
    http: aiohttp.ClientSession, admin: dict[str, Any], db: AsyncEngine
) -> None:
    user = await register(http)
    session = await login(http, user["email"], user["password"])
    assert (await _put(http, user["user_id"], {"disabled": True}, admin["access_token"])).status == 200
    async with http.post("/api/users/login", json={"email": user["email"], "password": user["password"]}) as resp:
        assert resp.status == 401
        assert (await resp.json())["detail"] == "email or password is incorrect"  # no hint that it exists
    async with http.post("/api/auth/refresh", json={"refresh_token": session["refresh_token"]}) as resp:
        assert resp.status == 401
    assert (await _put(http, user["user_id"], {"disabled": False}, admin["access_token"])).status == 200
    await login(http, user["email"], user["password"])
    assert [e.details.get("disabled") for e in await _audit(db, user["user_id"])] == [True, False]


async def test_an_admin_cannot_lock_themself_out(http: aiohttp.ClientSession, admin: dict[str, Any]) -> None:
    me = admin["user"]["user_id"]
    assert (await _put(http, me, {"disabled": True}, admin["access_token"])).status == 409
    assert (await _put(http, me, {"role": "member"}, admin["access_token"])).status == 409
    assert (await _put(http, me, {"role": None}, admin["access_token"])).status == 422


async def test_admin_user_search_and_pages(http: aiohttp.ClientSession, admin: dict[str, Any], db: AsyncEngine) -> None:
    tag = new_user()["username"]
    made = [await register(http, username=f"{tag}{i}", email=f"{tag}{i}@example.com") for i in range(3)]
    auth = bearer(admin["access_token"])
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params = {"q": tag.upper(), "limit": "2", **({"cursor": cursor} if cursor else {})}
        async with http.get("/api/admin/users", params=params, headers=auth) as resp:
            assert resp.status == 200, await resp.text()
            page = await resp.json()
        seen += [u["user_id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [u["user_id"] for u in reversed(made)]  # newest first, no repeats, none missing
    async with http.get("/api/admin/users", params={"role": "admin", "limit": "100"}, headers=auth) as resp:
        assert admin["user"]["user_id"] in [u["user_id"] for u in (await resp.json())["items"]]
    for bad in ({"cursor": "garbage"}, {"limit": "101"}, {"role": "emperor"}, {"q": "x" * 101}, {"extra": "1"}):
        async with http.get("/api/admin/users", params=bad, headers=auth) as resp:
            assert resp.status == 422, bad
    async with db.connect() as conn:
        searches = (
            await conn.execute(
                text(
                    "SELECT details FROM users.audit_log WHERE action = 'users.search' AND actor_id = :a "
                    "AND details->>'text_search' = 'true' ORDER BY id DESC LIMIT 2"
                ),
                {"a": admin["user"]["user_id"]},
            )
        ).scalars()
        # Audited without the search text: it is often the email of the person looked for.
        assert all(tag.upper() not in str(details) and details["limit"] == 2 for details in searches)


async def test_only_admins_list_users(http: aiohttp.ClientSession, admin: dict[str, Any]) -> None:
    async with http.get("/api/admin/users") as resp:
        assert resp.status == 401
    member = await register(http)
    session = await login(http, member["email"], member["password"])
    async with http.get("/api/admin/users", headers=bearer(session["access_token"])) as resp:
        assert resp.status == 403
    seller = await make_seller(http, admin)
    async with http.get("/api/admin/users", headers=bearer(seller["access_token"])) as resp:
        assert resp.status == 403


async def test_create_admin_promotes_an_existing_account(stack: Stack, http: aiohttp.ClientSession) -> None:
    user = await register(http)
    # Anyone may have registered the address: promotion must be asked for.
    refused = agora_cli(stack.env, "users", "create-admin", "--email", user["email"])
    assert refused.returncode == 2 and "--promote" in refused.stdout
    result = agora_cli(stack.env, "users", "create-admin", "--email", user["email"], "--promote")
    assert result.returncode == 0 and "promoted" in result.stdout
    assert (await login(http, user["email"], user["password"]))["user"]["role"] == "admin"


async def test_another_local_admin_email_on_the_same_data_gets_a_free_username(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    # scripts/up run again with another AGORA_ADMIN_EMAIL whose local part names a taken
    # username: that admin is created (as `name_2`), not refused half-way through start-up.
    local, password = f"ops-{uuid.uuid4().hex[:8]}", "a long admin passphrase"
    for domain, username in (("a.example", local), ("b.example", f"{local}_2")):
        env = {"AGORA_ADMIN_EMAIL": f"{local}@{domain}", "AGORA_ADMIN_PASSWORD": password}
        result = agora_cli(stack.env, "users", "create-admin", "--from-env", extra_env=env)
        assert result.returncode == 0 and f"(username {username})" in result.stdout, result.stdout
        assert (await login(http, f"{local}@{domain}", password))["user"]["role"] == "admin"


async def test_the_local_admin_is_refused_in_production(stack: Stack) -> None:
    result = agora_cli(stack.env, "users", "create-admin", "--from-env", extra_env={"AGORA_ENV": "production"})
    assert result.returncode == 2 and "refused" in result.stdout
    result = agora_cli(stack.env, "seed", extra_env={"AGORA_ENV": "production"})
    assert result.returncode == 2
