"""Third-party sign-in (OpenID Connect): the two browser redirects of the authorization code flow.

`/start` sends the browser to the provider; the provider sends it back to `/callback`,
which signs the person in (`users.oidc_sign_in.v1`), sets the session cookies as a
password login does, and sends the browser on to `return_to`. The protocol work is in
edge/oidc.py; these are redirects, not JSON commands, so they are documented by hand.
"""

from __future__ import annotations

from aiohttp import web

from contracts.oidc import OIDC_SIGN_IN, OidcSignIn
from edge import SETTINGS_KEY
from edge.commands import send
from edge.fingerprint import client_fingerprint
from edge.oidc import FLOW_COOKIE, FLOW_COOKIE_PATH, FLOW_TTL_SECONDS, OIDC_KEY, safe_return_to
from edge.openapi import Redirect
from edge.ratelimit import RATE_LIMITER_KEY
from edge.routes.users import NO_STORE
from edge.sessions import CSRF_KEY, set_session_cookies


async def oidc_start(request: web.Request) -> web.Response:
    flows = request.app[OIDC_KEY]
    provider = request.match_info["provider"]
    flows.provider(provider)  # an unknown provider is a 404 before anything is counted or stored
    return_to = safe_return_to(request.query.get("return_to"))
    # Each start stores a flow in Redis: counted like a login attempt, per address.
    await request.app[RATE_LIMITER_KEY].check(request, "login")
    started = await flows.start(provider, return_to)
    response = web.Response(status=302, headers={"Location": started.authorization_url, **NO_STORE})
    response.set_cookie(
        FLOW_COOKIE,
        started.cookie,
        max_age=FLOW_TTL_SECONDS,
        path=FLOW_COOKIE_PATH,
        httponly=True,
        secure=True,
        # Lax: sent on the provider's top-level redirect back to us, not on cross-site subrequests.
        samesite="Lax",
    )
    return response


async def oidc_callback(request: web.Request) -> web.Response:
    provider = request.match_info["provider"]
    finished = await request.app[OIDC_KEY].finish(provider, request.query, request.cookies.get(FLOW_COOKIE))
    fingerprint = client_fingerprint(request, request.app[SETTINGS_KEY])
    command = OidcSignIn(provider=provider, id_token=finished.id_token, client_fingerprint=fingerprint)
    result = await send(request, OIDC_SIGN_IN, command)
    response = web.Response(status=303, headers={"Location": finished.return_to, **NO_STORE})
    set_session_cookies(response, result, request.app[SETTINGS_KEY], request.app[CSRF_KEY])
    response.del_cookie(FLOW_COOKIE, path=FLOW_COOKIE_PATH, secure=True, samesite="Lax")
    return response


_PROVIDER = {
    "name": "provider",
    "in": "path",
    "required": True,
    "description": "An identity provider configured in AGORA_OIDC_PROVIDERS.",
    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,31}$"},
}


def _query(name: str, description: str) -> dict[str, object]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": {"type": "string"}}


REDIRECTS = (
    Redirect(
        "GET",
        "/api/auth/oauth/{provider}/start",
        oidc_start,
        status=302,
        tag="users",
        summary="Start signing in with an identity provider (OpenID Connect).",
        description="Redirects the browser to the provider's authorization endpoint (authorization code flow "
        "with PKCE S256, `state` and `nonce`). Unknown provider: 404; a `return_to` that is not a path on this "
        "site: 422.",
        parameters=(
            _PROVIDER,
            _query("return_to", "Where to send the browser after signing in: a path on this site (default `/`)."),
        ),
        errors=(404, 422, 429),
        cookies="`__Secure-agora_oidc` (HttpOnly, Secure, SameSite=Lax, 10 minutes, path `/api/auth/oauth`): "
        "ties the sign-in to this browser.",
    ),
    Redirect(
        "GET",
        "/api/auth/oauth/{provider}/callback",
        oidc_callback,
        status=303,
        tag="users",
        summary="Where the identity provider sends the browser back; signs in and redirects to `return_to`.",
        description="Exchanges the code, verifies the ID token (signature, issuer, audience, expiry, nonce), and "
        f"sends the `{OIDC_SIGN_IN.routing_key}` command: an identity seen before signs in to its account; an "
        "account with the same *verified* email is linked; otherwise a member is created. Sets the session "
        "cookies like a password login. Refusals are 401 problems with codes `oidc_state_invalid` (unknown, "
        "expired or replayed state, or another browser), `oidc_access_denied` / `oidc_provider_error` (the "
        "provider ended the sign-in), `oidc_code_rejected` and `oidc_id_token_invalid`; 409 when an account "
        "has the email but the provider has not verified it; 403 when no verified email is shared.",
        parameters=(
            _PROVIDER,
            _query("code", "The authorization code."),
            _query("state", "The state sent at the start."),
            _query("error", "The provider's error code, when it ended the sign-in (`access_denied`)."),
        ),
        errors=(400, 401, 403, 404, 409),
        cookies="The session cookies of a login (`__Host-agora_access`, `__Secure-agora_refresh`, "
        "`__Host-agora_csrf`); clears `__Secure-agora_oidc`.",
    ),
)
