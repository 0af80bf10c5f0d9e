"""Abuse limits on the credential endpoints, per client IP and per account (Redis-backed).

Rules: login, register, refresh, password change, and the partner token endpoint
("account" there is the client id).

The counters live in Redis through the `limits` library (moving windows), so every
edge replica counts against the same budget. A refused request is a 429 with
`Retry-After`, before any command is sent. The answer for an unknown account is the
same as for a known one: the limit is keyed on what the client typed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from aiohttp import web
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from edge.problems import HttpProblem
from kernel.settings import Settings

log = logging.getLogger("agora.edge.ratelimit")

# rule -> limits; "<action>:ip" counts per client address, "<action>:account" per
# email or user. AGORA_RATE_LIMITS='{"login:ip": "5/minute"}' overrides one rule.
DEFAULT_LIMITS: dict[str, str] = {
    "login:ip": "30/minute;300/hour",
    "login:account": "10/minute;50/hour",
    "register:ip": "10/minute;100/hour",
    "register:account": "5/hour",
    "refresh:ip": "60/minute",
    "refresh:account": "10/minute",
    "password:ip": "10/minute",
    "password:account": "5/minute;20/hour",
    # The partner token endpoint: secrets are unguessable, but each request costs a round trip.
    "token:ip": "60/minute",
    "token:account": "30/minute",
}


# Actions whose per-account counter is per client address too (see `check`).
_PER_CLIENT = frozenset({"login", "token"})


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        unknown = set(settings.rate_limits) - set(DEFAULT_LIMITS)
        if unknown:
            raise ValueError(f"AGORA_RATE_LIMITS names unknown rules: {sorted(unknown)}")
        self._rules: dict[str, list[RateLimitItem]] = {
            rule: parse_many(settings.rate_limits.get(rule, default)) for rule, default in DEFAULT_LIMITS.items()
        }
        self._proxy_hops = settings.trusted_proxy_hops
        uri = settings.redis_url.replace("redis://", "async+redis://", 1)
        self._storage = RedisStorage(uri, implementation="redispy", key_prefix="agora:ratelimit")
        self._limiter = MovingWindowRateLimiter(self._storage)

    async def check(self, request: web.Request, action: str, *, account: str | None = None) -> None:
        """Count one attempt at `action`; raise 429 if the IP or the account is over its limit.

        For sign-in (`login`, a partner's `token`) the account's counter is kept per client
        address: anyone may know an email or a client id, and a counter they could fill
        from their own address would let them lock its owner out. Guessing is held back by
        the per-address limits, bcrypt and the password rules instead.
        """
        ip = client_ip(request, self._proxy_hops)
        keys = [(f"{action}:ip", ip)]
        if account:
            subject = account.strip().lower() + (f"|{ip}" if action in _PER_CLIENT else "")
            # Hashed: the counter key would otherwise put an email address in Redis.
            keys.append((f"{action}:account", hashlib.sha256(subject.encode()).hexdigest()[:32]))
        for rule, who in keys:
            for item in self._rules[rule]:
                if not await self._limiter.hit(item, rule, who):
                    stats = await self._limiter.get_window_stats(item, rule, who)
                    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                    log.warning("security: rate limit hit", extra={"rule": rule, "limit": str(item)})
                    raise HttpProblem(
                        "too_many_requests",
                        "too many attempts; retry later",
                        headers={"Retry-After": str(retry_after)},
                    )


def client_ip(request: web.Request, proxy_hops: int) -> str:
    """The client's address: the peer, or the address the outermost trusted proxy saw."""
    if proxy_hops:
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
        if len(hops) >= proxy_hops:
            return hops[-proxy_hops]
    return request.remote or "unknown"


RATE_LIMITER_KEY = web.AppKey("rate_limiter", RateLimiter)
