"""Third-party sign-in against a real OpenID Connect provider run in the test.

The provider is `oidc-provider-mock` (a Flask app built on Authlib's server side) in a
thread on a free local port; a second one plays another provider. This module runs its
own users worker and edge in a separate vhost, both configured with these providers
(the worker verifies ID tokens itself, so it needs the configuration too). A test
drives the provider's authorization form with aiohttp, as a browser would.

The mock does not check PKCE itself, so the provider here is wrapped in a small WSGI
layer that does what a real provider does (RFC 7636 §4.6): it remembers each code's
`code_challenge` and refuses a token request whose `code_verifier` does not match.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import threading
import urllib.request
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import aiohttp
import jwt
import pytest
import werkzeug.serving
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.oidc import OIDC_SIGN_IN, OidcSignIn
from edge.bus import RpcClient
from edge.oidc import FLOW_COOKIE
from edge.sessions import ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from harness import broker, environment, processes
from harness.accounts import login, new_user
from harness.stack import Stack

with warnings.catch_warnings():
    # The mock runs on Authlib APIs Authlib now deprecates (authlib.jose, its httpx
    # integration), and Authlib forces its own warnings on: not ours to fix.
    warnings.simplefilter("ignore", DeprecationWarning)
    import oidc_provider_mock

PORT = environment.HTTP_PORT + 14
BASE = f"http://127.0.0.1:{PORT}"
CLIENT_ID = "agora-test"
CLIENT_SECRET = "not-so-secret"


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


class PkceCheck:
    """WSGI middleware: the provider refuses a code whose verifier does not match its challenge."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.challenges: dict[str, str] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        if path == "/oauth2/authorize" and method == "POST":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            seen: dict[str, str] = {}

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                seen.update(headers)
                return start_response(status, headers, exc_info)

            body = list(self.app(environ, capture))  # the debug wrapper starts the response lazily
            code = parse_qs(urlsplit(seen.get("Location", "")).query).get("code")
            if code and query.get("code_challenge_method") == ["S256"] and "code_challenge" in query:
                self.challenges[code[0]] = query["code_challenge"][0]
            return body
        if path == "/oauth2/token" and method == "POST":
            raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(raw)
            form = parse_qs(raw.decode())
            challenge = self.challenges.pop(form.get("code", [""])[0], None)
            if challenge is not None and _s256(form.get("code_verifier", [""])[0]) != challenge:
                start_response("400 Bad Request", [("Content-Type", "application/json")])
                return [b'{"error": "invalid_grant", "error_description": "PKCE verification failed"}']
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


@dataclass
class MockProvider:
    issuer: str
    server: werkzeug.serving.BaseWSGIServer
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


class BorrowedKeys:
    """WSGI middleware: publish another provider's keys, so its genuine tokens verify here but
    name another issuer (the case the issuer check exists for)."""

    def __init__(self, app: Any, keys_from: str) -> None:
        self.app = app
        self.keys_from = keys_from

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] != "/jwks":
            result: Iterable[bytes] = self.app(environ, start_response)
            return result
        with urllib.request.urlopen(f"{self.keys_from}/jwks", timeout=5) as resp:
            body = resp.read()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]


def _run_provider(keys_from: str | None = None) -> MockProvider:
    app: Any = PkceCheck(oidc_provider_mock.app(require_nonce=True))
    if keys_from:
        app = BorrowedKeys(app, keys_from)
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    return MockProvider(f"http://127.0.0.1:{server.server_port}", server, thread)


@dataclass
class Oidc:
    base_url: str
    provider: MockProvider
    other: MockProvider
    amqp_url: str


@pytest.fixture(scope="module")
def oidc(stack: Stack) -> Iterator[Oidc]:
    provider = _run_provider()
    other = _run_provider(keys_from=provider.issuer)
    vhost = f"{environment.VHOST}_oidc"
    broker.reset_vhost(vhost)
    providers = {
        name: {"issuer": p.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        for name, p in (("mock", provider), ("other", other))
    }
    amqp_url = stack.env["AGORA_AMQP_URL"].rsplit("/", 1)[0] + f"/{vhost}"
    env = {
        **stack.env,
        "AGORA_AMQP_URL": amqp_url,
        "AGORA_HTTP_PORT": str(PORT),
        "AGORA_PUBLIC_URL": BASE,
        "AGORA_OIDC_PROVIDERS": json.dumps(providers),
    }
    worker = processes.worker("users", env, index=7)
    worker.name = "worker-users-oidc"
    worker.log_path = worker.log_path.with_name("worker-users-oidc.log")
    edge = processes.edge(env, "edge-oidc", PORT)
    try:
        worker.start()
        edge.start()
        yield Oidc(BASE, provider, other, amqp_url)
    finally:
        edge.stop()
        worker.stop()
        broker.management_api("DELETE", f"/vhosts/{vhost}")
        provider.stop()
        other.stop()


@pytest.fixture
async def browser(oidc: Oidc) -> AsyncIterator[aiohttp.ClientSession]:
    # Cookies are handled by hand (the jar would drop Secure cookies over plain http).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


@dataclass
class Started:
    authorization_url: str
    cookie: str

    @property
    def params(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.authorization_url).query).items()}

    def with_params(self, **changes: str) -> str:
        parts = urlsplit(self.authorization_url)
        return urlunsplit(parts._replace(query=urlencode({**self.params, **changes})))


async def _set_claims(browser: aiohttp.ClientSession, issuer: str, sub: str, **claims: Any) -> None:
    async with browser.put(f"{issuer}/users/{sub}", json=claims) as resp:
        assert resp.status == 204, await resp.text()


async def _start(browser: aiohttp.ClientSession, provider: str = "mock", **query: str) -> Started:
    async with browser.get(f"{BASE}/api/auth/oauth/{provider}/start", params=query, allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        return Started(resp.headers["Location"], resp.cookies[FLOW_COOKIE].value)


async def _authorize(browser: aiohttp.ClientSession, url: str, **form: str) -> str:
    """Submit the provider's authorization form; return where it sends the browser."""
    async with browser.post(url, data=form, allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        return resp.headers["Location"]


@dataclass
class Answer:
    """A response, read: status, headers, cookies and body outlive the connection."""

    status: int
    headers: Mapping[str, str]
    cookies: SimpleCookie
    content_type: str
    body: bytes


async def _callback(browser: aiohttp.ClientSession, url: str, cookie: str | None) -> Answer:
    headers = {"Cookie": f"{FLOW_COOKIE}={cookie}"} if cookie else {}
    async with browser.get(url, headers=headers, allow_redirects=False) as resp:
        return Answer(resp.status, resp.headers, resp.cookies, resp.content_type, await resp.read())


async def _sign_in(
    browser: aiohttp.ClientSession, sub: str, *, return_to: str | None = None
) -> tuple[Answer, SimpleCookie]:
    started = await _start(browser, **({"return_to": return_to} if return_to else {}))
    callback = await _authorize(browser, started.authorization_url, sub=sub)
    resp = await _callback(browser, callback, started.cookie)
    return resp, resp.cookies


async def _me(browser: aiohttp.ClientSession, cookies: SimpleCookie) -> dict[str, Any]:
    headers = {"Cookie": f"{ACCESS_COOKIE}={cookies[ACCESS_COOKIE].value}"}
    async with browser.get(f"{BASE}/api/users/me", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        me: dict[str, Any] = await resp.json()
        return me


async def _problem(resp: Answer | aiohttp.ClientResponse) -> dict[str, Any]:
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = json.loads(resp.body if isinstance(resp, Answer) else await resp.read())
    return body


def _tag() -> str:
    return uuid.uuid4().hex[:10]


async def test_start_sends_the_browser_to_the_provider_with_pkce_state_and_nonce(
    browser: aiohttp.ClientSession, oidc: Oidc
) -> None:
    async with browser.get(f"{BASE}/api/auth/oauth/mock/start", allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Cache-Control"] == "no-store"
        location, cookie = resp.headers["Location"], resp.cookies[FLOW_COOKIE]
    assert location.startswith(f"{oidc.provider.issuer}/oauth2/authorize?")
    params = Started(location, cookie.value).params
    assert params["response_type"] == "code" and params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == f"{BASE}/api/auth/oauth/mock/callback"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32 and params["state"] != params["nonce"]
    assert "openid" in params["scope"].split()
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Lax"
    assert cookie["path"] == "/api/auth/oauth" and int(cookie["max-age"]) == 600
    assert cookie.value != params["state"]  # a hash of it, not the state itself


async def test_first_sign_in_creates_a_member_whose_cookies_work(
    browser: aiohttp.ClientSession, oidc: Oidc, db: AsyncEngine
) -> None:
    sub, tag = f"sub-{_tag()}", _tag()
    await _set_claims(
        browser,
        oidc.provider.issuer,
        sub,
        email=f"New-{tag}@Example.com",
        email_verified=True,
        preferred_username=f"new {tag}",
    )
    resp, cookies = await _sign_in(browser, sub, return_to="/orders?tab=open")
    assert resp.status == 303
    assert resp.headers["Location"] == "/orders?tab=open"
    assert {ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE} <= cookies.keys()
    assert cookies[FLOW_COOKIE].value == ""  # the flow cookie is cleared
    me = await _me(browser, cookies)
    assert me["email"] == f"new-{tag}@example.com"
    assert me["username"] == f"new_{tag}" and me["role"] == "member"
    async with db.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT u.password_hash, i.provider, i.subject FROM users.users u "
                    "JOIN users.identities i USING (user_id) WHERE u.user_id = :id"
                ),
                {"id": me["user_id"]},
            )
        ).one()
        registered = await conn.scalar(
            text(
                "SELECT count(*) FROM users.outbox "
                "WHERE routing_key = 'users.user_registered.v1' AND body->>'user_id' = :id"
            ),
            {"id": me["user_id"]},
        )
    assert row.password_hash is None and (row.provider, row.subject) == ("mock", sub)
    assert registered == 1
    # The refresh cookie works as after a password login.
    headers = {
        "Cookie": f"{REFRESH_COOKIE}={cookies[REFRESH_COOKIE].value}; {CSRF_COOKIE}={cookies[CSRF_COOKIE].value}",
        "X-CSRF-Token": cookies[CSRF_COOKIE].value,
    }
    async with browser.post(f"{BASE}/api/auth/refresh", headers=headers) as refreshed:
        assert refreshed.status == 200


async def test_the_same_subject_signs_in_to_the_same_account(browser: aiohttp.ClientSession, oidc: Oidc) -> None:
    sub, tag = f"sub-{_tag()}", _tag()
    await _set_claims(browser, oidc.provider.issuer, sub, email=f"same-{tag}@example.com", email_verified=True)
    first = await _me(browser, (await _sign_in(browser, sub))[1])
    # The link decides, not the email: it may change at the provider.
    await _set_claims(browser, oidc.provider.issuer, sub, email=f"changed-{tag}@example.com", email_verified=True)
    resp, cookies = await _sign_in(browser, sub)
    assert resp.status == 303 and resp.headers["Location"] == "/"
    again = await _me(browser, cookies)
    assert again["user_id"] == first["user_id"] and again["email"] == first["email"]


async def test_a_verified_email_links_an_existing_password_account(
    browser: aiohttp.ClientSession, oidc: Oidc, db: AsyncEngine
) -> None:
    body = new_user()
    async with browser.post(f"{BASE}/api/users/register", json=body) as resp:
        assert resp.status == 201
        registered = await resp.json()
    sub = f"sub-{_tag()}"
    await _set_claims(browser, oidc.provider.issuer, sub, email=body["email"].upper(), email_verified=True)
    resp, cookies = await _sign_in(browser, sub)
    assert resp.status == 303
    assert (await _me(browser, cookies))["user_id"] == registered["user_id"]
    async with aiohttp.ClientSession(BASE) as http:  # the password still works
        assert (await login(http, body["email"], body["password"]))["user"]["user_id"] == registered["user_id"]
    async with db.connect() as conn:
        linked = await conn.scalar(
            text(
                "SELECT count(*) FROM users.outbox "
                "WHERE routing_key = 'users.identity_linked.v1' AND body->>'user_id' = :id"
            ),
            {"id": registered["user_id"]},
        )
    assert linked == 1


async def test_an_unverified_email_does_not_link_or_create(
    browser: aiohttp.ClientSession, oidc: Oidc, db: AsyncEngine
) -> None:
    body = new_user()
    async with browser.post(f"{BASE}/api/users/register", json=body) as resp:
        assert resp.status == 201
    sub = f"sub-{_tag()}"
    await _set_claims(browser, oidc.provider.issuer, sub, email=body["email"], email_verified=False)
    resp, _ = await _sign_in(browser, sub)
    assert resp.status == 409
    problem = await _problem(resp)
    assert problem["code"] == "conflict" and "password" in problem["detail"]
    # Nobody else's email, but still only claimed: no account is made on it.
    await _set_claims(browser, oidc.provider.issuer, sub, email=f"claimed-{_tag()}@example.com")
    resp, _ = await _sign_in(browser, sub)
    assert resp.status == 403
    async with db.connect() as conn:
        links = await conn.scalar(text("SELECT count(*) FROM users.identities WHERE subject = :s"), {"s": sub})
    assert links == 0


async def test_a_replayed_callback_is_refused(browser: aiohttp.ClientSession, oidc: Oidc) -> None:
    sub = f"sub-{_tag()}"
    await _set_claims(browser, oidc.provider.issuer, sub, email=f"{sub}@example.com", email_verified=True)
    started = await _start(browser)
    callback = await _authorize(browser, started.authorization_url, sub=sub)
    assert (await _callback(browser, callback, started.cookie)).status == 303
    replayed = await _callback(browser, callback, started.cookie)
    assert replayed.status == 401
    assert (await _problem(replayed))["code"] == "oidc_state_invalid"


async def test_a_callback_in_another_browser_is_refused(browser: aiohttp.ClientSession, oidc: Oidc) -> None:
    # Login CSRF: an attacker's own callback URL, opened in the victim's browser.
    sub = f"sub-{_tag()}"
    await _set_claims(browser, oidc.provider.issuer, sub, email=f"{sub}@example.com", email_verified=True)
    for victims_cookie in (None, (await _start(browser)).cookie):
        attackers = await _start(browser)
        callback = await _authorize(browser, attackers.authorization_url, sub=sub)
        resp = await _callback(browser, callback, victims_cookie)
        assert resp.status == 401
        assert (await _problem(resp))["code"] == "oidc_state_invalid"
        assert ACCESS_COOKIE not in resp.cookies


async def test_an_id_token_for_another_nonce_is_refused(browser: aiohttp.ClientSession, oidc: Oidc) -> None:
    sub = f"sub-{_tag()}"
    await _set_claims(browser, oidc.provider.issuer, sub, email=f"{sub}@example.com", email_verified=True)
    started = await _start(browser)
    callback = await _authorize(browser, started.with_params(nonce="a-nonce-from-elsewhere"), sub=sub)
    resp = await _callback(browser, callback, started.cookie)
    assert resp.status == 401
    assert (await _problem(resp))["code"] == "oidc_id_token_invalid"


async def test_a_code_issued_for_another_verifier_is_refused(browser: aiohttp.ClientSession, oidc: Oidc) -> None:
    # A code injected from another flow carries that flow's challenge: our verifier fails it.
    sub = f"sub-{_tag()}"
    started = await _start(browser)
    callback = await _authorize(browser, started.with_params(code_challenge=_s256("someone else's")), sub=sub)
    resp = await _callback(browser, callback, started.cookie)
    assert resp.status == 401
    assert (await _problem(resp))["code"] == "oidc_code_rejected"


async def test_the_provider_denying_is_a_clear_problem(browser: aiohttp.ClientSession, oidc: Oidc) -> None:
    started = await _start(browser)
    callback = await _authorize(browser, started.authorization_url, action="deny")
    assert "error=access_denied" in callback
    # The mock leaves `state` out of its error redirect; RFC 6749 §4.1.2.1 requires it.
    callback += "&" + urlencode({"state": started.params["state"]})
    resp = await _callback(browser, callback, started.cookie)
    assert resp.status == 401
    problem = await _problem(resp)
    assert problem["code"] == "oidc_access_denied" and "access_denied" in problem["detail"]


async def test_unknown_providers_and_foreign_return_urls(browser: aiohttp.ClientSession, oidc: Oidc) -> None:
    for path in ("/api/auth/oauth/nope/start", "/api/auth/oauth/nope/callback?code=x&state=y"):
        async with browser.get(BASE + path, allow_redirects=False) as resp:
            assert resp.status == 404
            assert (await _problem(resp))["code"] == "not_found"
    for bad in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        async with browser.get(
            f"{BASE}/api/auth/oauth/mock/start", params={"return_to": bad}, allow_redirects=False
        ) as resp:
            assert resp.status == 422
            assert (await _problem(resp))["errors"][0]["field"] == "return_to"


async def test_the_openapi_document_lists_the_sign_in_redirects(browser: aiohttp.ClientSession, oidc: Oidc) -> None:
    async with browser.get(f"{BASE}/api/openapi.json") as resp:
        paths = (await resp.json())["paths"]
    assert "302" in paths["/api/auth/oauth/{provider}/start"]["get"]["responses"]
    assert "303" in paths["/api/auth/oauth/{provider}/callback"]["get"]["responses"]


# --- the worker does not trust the broker: it verifies the ID token itself ----------------


async def _id_token(browser: aiohttp.ClientSession, issuer: str, sub: str, client_id: str = CLIENT_ID) -> str:
    """A genuine ID token, got by playing the client at the provider directly."""
    redirect = "http://127.0.0.1:9/cb"
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect,
            "scope": "openid email",
            "state": "s",
            "nonce": "n",
        }
    )
    location = await _authorize(browser, f"{issuer}/oauth2/authorize?{query}", sub=sub)
    code = parse_qs(urlsplit(location).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect}
    basic = base64.b64encode(f"{client_id}:{CLIENT_SECRET}".encode()).decode()
    async with browser.post(f"{issuer}/oauth2/token", data=form, headers={"Authorization": f"Basic {basic}"}) as resp:
        assert resp.status == 200, await resp.text()
        token: str = (await resp.json())["id_token"]
        return token


def _forged(genuine: str) -> str:
    """The same claims and key id, signed with a key the provider never had."""
    claims = jwt.decode(genuine, options={"verify_signature": False})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = jwt.get_unverified_header(genuine).get("kid")  # the mock sends none: it has one key
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid} if kid else None)


@pytest.fixture
async def bus(oidc: Oidc) -> AsyncIterator[RpcClient]:
    client = RpcClient(oidc.amqp_url)
    client.start()
    for _ in range(100):
        if client.is_connected:
            break
        await asyncio.sleep(0.1)
    yield client
    await client.close()


async def _send(bus: RpcClient, provider: str, id_token: str) -> Any:
    return await bus.call(
        OIDC_SIGN_IN,
        OidcSignIn(provider=provider, id_token=id_token),
        correlation_id=str(uuid.uuid4()),
        authorization=None,
        timeout=10,
    )


async def test_the_worker_verifies_the_id_token_itself(
    browser: aiohttp.ClientSession, oidc: Oidc, bus: RpcClient
) -> None:
    sub = f"sub-{_tag()}"
    await _set_claims(browser, oidc.provider.issuer, sub, email=f"{sub}@example.com", email_verified=True)
    genuine = await _id_token(browser, oidc.provider.issuer, sub)
    refused = {
        "bad signature": ("mock", _forged(genuine)),
        "wrong audience": ("mock", await _id_token(browser, oidc.provider.issuer, sub, client_id="someone-else")),
        "wrong issuer": ("other", genuine),
        "not a token": ("mock", "not.a.token"),
    }
    for case, (provider, token) in refused.items():
        reply = await _send(bus, provider, token)
        assert not reply.ok and reply.error is not None, case
        assert reply.error.code == "unauthorized", case
    unknown = await _send(bus, "nope", genuine)
    assert unknown.error is not None and unknown.error.code == "not_found"
    signed_in = await _send(bus, "mock", genuine)
    assert signed_in.ok and signed_in.data is not None
    assert signed_in.data["user"]["email"] == f"{sub}@example.com"
    # An ID token signs in once: a copy of it is worthless afterwards.
    replayed = await _send(bus, "mock", genuine)
    assert replayed.error is not None and replayed.error.code == "unauthorized"
