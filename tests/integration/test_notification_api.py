"""Notification preferences (self or admin) and the template admin API, end to end."""

from __future__ import annotations

from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from harness.accounts import bearer, login, register
from harness.stack import Stack
from workers.notifications.templates import DEFAULTS, VARIABLES

NO_CHOICES = {"sms_orders": False, "sms_security": False, "marketing_email": False, "marketing_sms": False}
TEMPLATES = "/api/admin/notification-templates"


async def _member(http: aiohttp.ClientSession) -> dict[str, Any]:
    user = await register(http)
    return {**user, **await login(http, user["email"], user["password"])}


def _auth(who: dict[str, Any]) -> dict[str, str]:
    return bearer(who["access_token"])


async def test_preferences_start_off_and_are_the_users_own(http: aiohttp.ClientSession, admin: dict[str, Any]) -> None:
    user = await _member(http)
    url = f"/api/users/{user['user_id']}/notification-preferences"
    async with http.get(url, headers=_auth(user)) as resp:
        assert resp.status == 200, await resp.text()
        view = await resp.json()
    assert view["preferences"] == NO_CHOICES
    assert view["updated_at"] is None
    assert set(view["email_always"]) == {"account", "orders", "security", "seller"}

    chosen = {**NO_CHOICES, "sms_orders": True, "marketing_email": True}
    async with http.put(url, json=chosen, headers=_auth(user)) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["preferences"] == chosen
    async with http.get(url, headers=_auth(user)) as resp:
        view = await resp.json()
    assert view["preferences"] == chosen and view["updated_at"] is not None

    # Transactional email is not a choice: there is no field to turn it off.
    async with http.put(url, json={"email_orders": False}, headers=_auth(user)) as resp:
        assert resp.status == 422
        assert (await resp.json())["errors"][0]["field"] == "email_orders"

    # Someone else's preferences do not exist for another member; an admin may read and change them.
    other = await _member(http)
    async with http.get(url, headers=_auth(other)) as resp:
        assert resp.status == 404
    async with http.put(url, json=NO_CHOICES, headers=_auth(other)) as resp:
        assert resp.status == 404
    async with http.put(url, json={"sms_security": True}, headers=_auth(admin)) as resp:
        assert resp.status == 200, await resp.text()
    async with http.get(url, headers=_auth(admin)) as resp:
        assert (await resp.json())["preferences"] == {**NO_CHOICES, "sms_security": True}

    # The export carries them, and the notifications service's delivery log.
    async with http.get(f"/api/users/{user['user_id']}/export", headers=_auth(user)) as resp:
        assert resp.status == 200, await resp.text()
        notifications = (await resp.json())["services"]["notifications"]
    assert notifications["preferences"]["sms_security"] is True
    assert notifications["preferences"]["updated_at"] is not None
    assert isinstance(notifications["deliveries"], list)
    assert all(d["recipient_id"] == user["user_id"] for d in notifications["deliveries"])


async def test_admins_list_preview_and_edit_templates(http: aiohttp.ClientSession, admin: dict[str, Any]) -> None:
    async with http.get(TEMPLATES, headers=_auth(admin)) as resp:
        assert resp.status == 200, await resp.text()
        items = (await resp.json())["items"]
    assert {(t["key"], t["channel"]) for t in items} == set(DEFAULTS)
    sms = next(t for t in items if (t["key"], t["channel"]) == ("order_shipped", "sms"))
    assert sms["category"] == "orders" and sms["body"]["subject"] is None
    assert sms["variables"] == list(VARIABLES["order_shipped"])

    url = f"{TEMPLATES}/email/payment_refunded"
    async with http.get(url, headers=_auth(admin)) as resp:
        assert resp.status == 200
        original = await resp.json()
    # The stored (or default) body, rendered with sample values.
    async with http.post(f"{url}/preview", headers=_auth(admin)) as resp:
        assert resp.status == 200, await resp.text()
        preview = await resp.json()
    assert "{{" not in preview["text"] and preview["html"].startswith("<div")
    async with http.post(
        f"{url}/preview", json={"subject": "Refund", "text": "{{ amount }} for {{ name }}"}, headers=_auth(admin)
    ) as resp:
        assert resp.status == 200
        assert await resp.json() == {"subject": "Refund", "text": "$44.97 for ada", "html": None}

    edited = {"subject": "Refund of {{ amount }}", "text": "Hi {{ name }}, {{ amount }} is back.", "html": None}
    try:
        async with http.put(url, json=edited, headers=_auth(admin)) as resp:
            assert resp.status == 200, await resp.text()
            view = await resp.json()
        assert view["body"] == edited
        async with http.get("/api/users/me", headers=_auth(admin)) as resp:
            assert view["updated_by"] == (await resp.json())["user_id"] and view["updated_at"] is not None
        async with http.get(url, headers=_auth(admin)) as resp:
            assert (await resp.json())["body"] == edited

        # One that does not render is refused, naming the part; the stored one stays.
        broken = {"subject": "Refund", "text": "ok", "html": "<p>{{ refund_total }}</p>"}
        async with http.put(url, json=broken, headers=_auth(admin)) as resp:
            assert resp.status == 422
            assert resp.content_type == "application/problem+json"
            problem = await resp.json()
        assert problem["code"] == "validation_failed"
        assert problem["errors"] == [{"field": "html", "message": "'refund_total' is undefined"}]
        sandboxed = {"subject": "{{ ''.__class__.__mro__ }}", "text": "ok"}
        async with http.put(url, json=sandboxed, headers=_auth(admin)) as resp:
            assert resp.status == 422
            assert (await resp.json())["errors"][0]["field"] == "subject"
        async with http.post(f"{url}/preview", json=broken, headers=_auth(admin)) as resp:
            assert resp.status == 422
        async with http.get(url, headers=_auth(admin)) as resp:
            assert (await resp.json())["body"] == edited
    finally:
        async with http.put(url, json=original["body"], headers=_auth(admin)) as resp:
            assert resp.status == 200

    # SMS templates are text only.
    async with http.put(
        f"{TEMPLATES}/sms/order_shipped", json={"subject": "x", "text": "x"}, headers=_auth(admin)
    ) as resp:
        assert resp.status == 422
        assert (await resp.json())["errors"][0]["field"] == "subject"


async def test_templates_are_for_admins_only(http: aiohttp.ClientSession, admin: dict[str, Any]) -> None:
    member = await _member(http)
    url = f"{TEMPLATES}/email/welcome"
    for method, path, body in (
        ("GET", TEMPLATES, None),
        ("GET", url, None),
        ("PUT", url, {"subject": "Hi", "text": "Hi"}),
        ("POST", f"{url}/preview", None),
    ):
        async with http.request(method, path, json=body, headers=_auth(member)) as resp:
            assert resp.status == 403, f"{method} {path}: {resp.status}"
        async with http.request(method, path, json=body) as resp:
            assert resp.status == 401
    # A template that is not in the catalogue, or a channel that does not exist.
    for path in (f"{TEMPLATES}/email/no_such_template", f"{TEMPLATES}/sms/welcome", f"{TEMPLATES}/fax/welcome"):
        async with http.get(path, headers=_auth(admin)) as resp:
            assert resp.status == 404, path


async def test_the_defaults_are_seeded_and_a_restart_keeps_an_edit(
    stack: Stack, http: aiohttp.ClientSession, db: AsyncEngine, admin: dict[str, Any]
) -> None:
    async with db.connect() as conn:
        seeded = {
            (r.key, r.channel): r.updated_by
            for r in await conn.execute(text("SELECT key, channel, updated_by FROM notifications.templates"))
        }
    assert set(seeded) == set(DEFAULTS)
    url = f"{TEMPLATES}/sms/order_delivered"
    edited = {"subject": None, "text": "Delivered: {{ order_id }}", "html": None}
    async with http.put(url, json=edited, headers=_auth(admin)) as resp:
        assert resp.status == 200, await resp.text()
    try:
        stack.workers["notifications"].stop()
        stack.workers["notifications"].start()  # seeds again at start
        async with http.get(url, headers=_auth(admin)) as resp:
            assert (await resp.json())["body"] == edited
    finally:
        async with http.put(url, json=DEFAULTS[("order_delivered", "sms")].body.model_dump(), headers=_auth(admin)):
            pass
