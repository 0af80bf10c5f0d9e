"""Browser sessions: tokens in cookies, and the CSRF check that cookies make necessary.

A browser gets the same tokens as any client, also as cookies it cannot read from
script (`HttpOnly`), that travel only over HTTPS (`Secure`), only to this host (no
`Domain`) and not on cross-site subrequests (`SameSite=Lax`). Because a browser sends
cookies by itself, an unsafe request authenticated by cookie must also prove it came
from a page of ours: it echoes the readable `agora_csrf` cookie in `X-CSRF-Token`
(double submit), and that token is signed for the signed-in user, so a cookie planted
by a sibling site is useless. A client that sends `Authorization: Bearer` is not a
browser riding on ambient credentials and needs no CSRF token.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any
from uuid import UUID

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer

from edge.problems import HttpProblem
from kernel.settings import Settings

log = logging.getLogger("agora.edge.sessions")

# `__Host-`: the browser refuses the cookie unless it is Secure, host-only and Path=/.
ACCESS_COOKIE = "__Host-agora_access"
# Sent only to the session endpoints that need it (`__Secure-`: Secure is enforced).
REFRESH_COOKIE = "__Secure-agora_refresh"
REFRESH_COOKIE_PATH = "/api/auth"
CSRF_COOKIE = "__Host-agora_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfSigner:
    """Issues and checks CSRF tokens bound to a user id (itsdangerous, HMAC-SHA256)."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.csrf_secret
        if not secret:
            if settings.env == "production":
                raise RuntimeError("AGORA_CSRF_SECRET must be set in production")
            # Fine for one process; replicas behind one balancer need a shared secret.
            log.warning("AGORA_CSRF_SECRET is not set; using a random secret for this process")
            secret = secrets.token_urlsafe(32)
        self._serializer = URLSafeTimedSerializer(secret, salt="agora.csrf")
        self._max_age = settings.refresh_token_ttl_seconds

    def issue(self, user_id: UUID | str) -> str:
        return self._serializer.dumps(str(user_id))

    def user_of(self, token: str) -> str | None:
        try:
            value = self._serializer.loads(token, max_age=self._max_age)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None


def set_session_cookies(
    response: web.StreamResponse, result: dict[str, Any], settings: Settings, csrf: CsrfSigner
) -> None:
    """Put a login or refresh result (`LoginResult` as JSON) into the browser's cookies."""
    common: dict[str, Any] = {"secure": True, "samesite": "Lax"}
    response.set_cookie(
        ACCESS_COOKIE, result["access_token"], max_age=int(result["expires_in"]), path="/", httponly=True, **common
    )
    session_age = settings.refresh_token_ttl_seconds
    response.set_cookie(
        REFRESH_COOKIE,
        result["refresh_token"],
        max_age=session_age,
        path=REFRESH_COOKIE_PATH,
        httponly=True,
        **common,
    )
    # Readable by our own pages' scripts: they copy it into the X-CSRF-Token header.
    response.set_cookie(CSRF_COOKIE, csrf.issue(result["user"]["user_id"]), max_age=session_age, path="/", **common)


def clear_session_cookies(response: web.StreamResponse) -> None:
    common: dict[str, Any] = {"secure": True, "samesite": "Lax"}
    response.del_cookie(ACCESS_COOKIE, path="/", **common)
    response.del_cookie(REFRESH_COOKIE, path=REFRESH_COOKIE_PATH, **common)
    response.del_cookie(CSRF_COOKIE, path="/", **common)


def check_csrf(request: web.Request, csrf: CsrfSigner, user_id: UUID | None) -> None:
    """Refuse an unsafe cookie-authenticated request that does not echo a valid CSRF token.

    `user_id` is the signed-in user when the access cookie proved one; the token must
    have been issued to that user. Without one (refreshing with the refresh cookie),
    a well-signed token equal to the cookie is required.
    """
    if request.method in SAFE_METHODS:
        return
    header = request.headers.get(CSRF_HEADER, "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    owner = csrf.user_of(header) if header else None
    if (
        not header
        or not hmac.compare_digest(header.encode(), cookie.encode())
        or owner is None
        or (user_id is not None and owner != str(user_id))
    ):
        log.warning("security: CSRF check failed", extra={"path": request.path, "method": request.method})
        raise HttpProblem("forbidden", f"a cookie-authenticated {request.method} needs a valid {CSRF_HEADER} header")


CSRF_KEY = web.AppKey("csrf", CsrfSigner)
