"""Accounts made the way their owners make them: members register and sign in over the API,
an operator creates an admin with `agora users create-admin`, an admin makes a seller."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp

from harness.processes import agora_cli


def new_user(**overrides: Any) -> dict[str, Any]:
    """A registration body with a unique email and username."""
    tag = uuid.uuid4().hex[:10]
    return {
        "email": f"user-{tag}@example.com",
        "username": f"user_{tag}",
        "password": "correct horse battery",
        **overrides,
    }


async def register(http: aiohttp.ClientSession, **overrides: Any) -> dict[str, Any]:
    body = new_user(**overrides)
    async with http.post("/api/users/register", json=body) as resp:
        assert resp.status == 201, await resp.text()
        return {**(await resp.json()), "password": body["password"]}


async def login(http: aiohttp.ClientSession, email: str, password: str) -> dict[str, Any]:
    async with http.post("/api/users/login", json={"email": email, "password": password}) as resp:
        assert resp.status == 200, await resp.text()
        result: dict[str, Any] = await resp.json()
        return result


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_admin(env: dict[str, str]) -> dict[str, Any]:
    """A new admin made the way an operator makes one: `agora users create-admin`."""
    body = new_user()
    result = agora_cli(
        env, "users", "create-admin", "--email", body["email"], extra_env={"AGORA_ADMIN_PASSWORD": body["password"]}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return body


async def make_seller(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """A new account that an admin made a seller; logged in after the change."""
    user = await register(http)
    async with http.put(
        f"/api/users/{user['user_id']}", json={"role": "seller"}, headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 200, await resp.text()
    return await login(http, user["email"], user["password"])
