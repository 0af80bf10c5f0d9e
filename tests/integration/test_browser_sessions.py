"""Browser sessions: cookies set at login, the CSRF check on cookie-authenticated writes, CORS."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import aiohttp

from edge.sessions import ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER, REFRESH_COOKIE
from harness import environment
from harness.accounts import register


async def _browser_login(http: aiohttp.ClientSession) -> tuple[dict[str, Any], SimpleCookie]:
    user = await register(http)
    async with http.post("/api/users/login", json={"email": user["email"], "password": user["password"]}) as resp:
        assert resp.status == 200
        return {**user, **(await resp.json())}, resp.cookies


def _cookie_header(jar: SimpleCookie, *names: str) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{n}={jar[n].value}" for n in names)}


async def test_login_sets_host_only_secure_http_only_cookies(http: aiohttp.ClientSession) -> None:
    result, jar = await _browser_login(http)
    access, refresh, csrf = jar[ACCESS_COOKIE], jar[REFRESH_COOKIE], jar[CSRF_COOKIE]
    assert access.value == result["access_token"] and refresh.value == result["refresh_token"]
    for cookie in (access, refresh, csrf):
        assert cookie["secure"] and cookie["samesite"] == "Lax"
        assert not cookie["domain"]  # host-only
    assert access["httponly"] and refresh["httponly"]
    assert not csrf["httponly"]  # the page's script reads it to echo it
    assert refresh["path"] == "/api/auth" and access["path"] == "/"


async def test_cookie_reads_work_and_cookie_writes_need_the_csrf_token(http: aiohttp.ClientSession) -> None:
    result, jar = await _browser_login(http)
    cookies = _cookie_header(jar, ACCESS_COOKIE, CSRF_COOKIE)
    async with http.get("/api/users/me", headers=cookies) as resp:
        assert resp.status == 200  # a safe method needs no CSRF token
    url = f"/api/users/{result['user']['user_id']}"
    async with http.put(url, json={"username": "no_csrf_" + result["username"][-8:]}, headers=cookies) as resp:
        assert resp.status == 403
        assert (await resp.json())["code"] == "forbidden"
    token = jar[CSRF_COOKIE].value
    forged = {**cookies, CSRF_HEADER: ("x" if token[0] != "x" else "y") + token[1:]}  # altered where it is signed
    async with http.put(url, json={"username": "forged_" + result["username"][-8:]}, headers=forged) as resp:
        assert resp.status == 403
    good = {**cookies, CSRF_HEADER: jar[CSRF_COOKIE].value}
    async with http.put(url, json={"username": "csrf_ok_" + result["username"][-8:]}, headers=good) as resp:
        assert resp.status == 200, await resp.text()


async def test_a_csrf_token_of_another_user_is_refused(http: aiohttp.ClientSession) -> None:
    # A token a sibling site planted for the attacker's own account, in both places.
    _, victim_jar = await _browser_login(http)
    _, attacker_jar = await _browser_login(http)
    planted = attacker_jar[CSRF_COOKIE].value
    headers = {
        "Cookie": f"{ACCESS_COOKIE}={victim_jar[ACCESS_COOKIE].value}; {CSRF_COOKIE}={planted}",
        CSRF_HEADER: planted,
    }
    async with http.post("/api/auth/logout-all", headers=headers) as resp:
        assert resp.status == 403


async def test_bearer_clients_need_no_csrf_token(http: aiohttp.ClientSession) -> None:
    result, _ = await _browser_login(http)
    url = f"/api/users/{result['user']['user_id']}"
    headers = {"Authorization": f"Bearer {result['access_token']}"}
    async with http.put(url, json={"username": "bearer_" + result["username"][-8:]}, headers=headers) as resp:
        assert resp.status == 200


async def test_refresh_and_logout_with_the_refresh_cookie(http: aiohttp.ClientSession) -> None:
    _, jar = await _browser_login(http)
    cookies = _cookie_header(jar, REFRESH_COOKIE, CSRF_COOKIE)
    async with http.post("/api/auth/refresh", headers=cookies) as resp:
        assert resp.status == 403  # the cookie alone could be a forged cross-site POST
    async with http.post("/api/auth/refresh", headers={**cookies, CSRF_HEADER: jar[CSRF_COOKIE].value}) as resp:
        assert resp.status == 200
        renewed = resp.cookies
        assert renewed[REFRESH_COOKIE].value != jar[REFRESH_COOKIE].value
    headers = {**_cookie_header(renewed, REFRESH_COOKIE, CSRF_COOKIE), CSRF_HEADER: renewed[CSRF_COOKIE].value}
    async with http.post("/api/auth/logout", headers=headers) as resp:
        assert resp.status == 204
        assert resp.cookies[ACCESS_COOKIE].value == ""  # cleared
    async with http.post("/api/auth/refresh", json={"refresh_token": renewed[REFRESH_COOKIE].value}) as resp:
        assert resp.status == 401
    # No cookie and no token: nobody to refresh (401 saying how to sign in), not a malformed body.
    for body in (None, {}):
        async with http.post("/api/auth/refresh", json=body) as resp:
            assert resp.status == 401 and "WWW-Authenticate" in resp.headers, await resp.text()
    async with http.post("/api/auth/refresh", json={"refresh_token": 5}) as resp:
        assert resp.status == 422  # a token of the wrong kind is still a bad request


async def test_cors_allows_only_configured_origins(http: aiohttp.ClientSession) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-csrf-token"}
    async with http.options("/api/users/login", headers={"Origin": environment.CORS_ORIGIN, **preflight}) as resp:
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == environment.CORS_ORIGIN
        assert resp.headers["Access-Control-Allow-Credentials"] == "true"
        assert "X-CSRF-TOKEN" in resp.headers["Access-Control-Allow-Headers"].upper()
    async with http.options("/api/users/login", headers={"Origin": "https://evil.example", **preflight}) as resp:
        assert "Access-Control-Allow-Origin" not in resp.headers
    async with http.get("/api/auth/jwks.json", headers={"Origin": "https://evil.example"}) as resp:
        assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers
    async with http.get("/api/auth/jwks.json", headers={"Origin": environment.CORS_ORIGIN}) as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == environment.CORS_ORIGIN
        assert "X-REQUEST-ID" in resp.headers["Access-Control-Expose-Headers"].upper()
