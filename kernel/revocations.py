"""Access tokens void before they expire: logout, password change, role change, disabling,
erasure, a reused refresh token (issue 13).

An access token is checked by signature and expiry alone, so until now a revoked one
kept working for up to its whole lifetime (15 minutes). The users service records each
revocation ("the tokens of this user, or of this session, issued before T are void")
and emits it as `users.tokens_revoked.v1`. Every process that verifies tokens (the edge
and every worker) keeps the revocations still in force in memory: it loads them all
when it starts (`users.get_revocations.v1`) and follows the events on a queue of its
own; after a broker reconnection, which loses what was published meanwhile, it loads
them all again. Checking a token is then a dictionary lookup.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from aio_pika.abc import AbstractIncomingMessage

from contracts.topology import broker_user
from contracts.users import TOKENS_REVOKED, TokensRevoked
from kernel.events import Following, follow
from kernel.tokens import Actor

log = logging.getLogger("agora.revocations")

RevocationsFetcher = Callable[[], Awaitable[list[TokensRevoked]]]


class RevocationsUnavailable(ConnectionError):
    """The users service could not say which tokens are revoked: try again later."""


class RevocationList:
    """The revocations in force, by user and by session, as moments (seconds since 1970)."""

    def __init__(self, fetch: RevocationsFetcher, *, window_seconds: float) -> None:
        self._fetch = fetch
        self._window = window_seconds
        self._users: dict[UUID, float] = {}
        self._sessions: dict[UUID, float] = {}
        self._loaded = False
        self._lock = asyncio.Lock()

    def add(self, revoked: TokensRevoked) -> None:
        marks, key = (self._sessions, revoked.session_id) if revoked.session_id else (self._users, revoked.user_id)
        moment = revoked.not_before.timestamp()
        if moment > marks.get(key, 0.0):
            marks[key] = moment

    def voids(self, actor: Actor) -> bool:
        """Whether a verified token is revoked (a partner's client id counts as its user id:
        disabling a partner voids its tokens too)."""
        if actor.issued_at < self._users.get(actor.user_id, 0.0):
            return True
        return actor.session_id is not None and actor.issued_at < self._sessions.get(actor.session_id, 0.0)

    def stale(self) -> None:
        """Events may have been missed: load everything again before the next check."""
        self._loaded = False

    async def ready(self) -> None:
        """Loaded (since the last reconnection); until then, no token can be judged. A burst
        of checks on a cold list waits for one load, not one each."""
        if not self._loaded:
            async with self._lock:
                if not self._loaded:
                    await self._load()

    async def reload(self) -> None:
        async with self._lock:
            await self._load()

    async def _load(self) -> None:
        try:
            items = await self._fetch()
        except Exception as exc:
            raise RevocationsUnavailable(f"token revocations could not be loaded: {exc}") from exc
        for revoked in items:
            self.add(revoked)
        self._forget_expired()
        self._loaded = True

    def _forget_expired(self) -> None:
        # A mark older than a token's lifetime can only void tokens that expired anyway.
        horizon = time.time() - self._window
        for marks in (self._users, self._sessions):
            for key in [k for k, moment in marks.items() if moment < horizon]:
                del marks[key]


class RevocationFeed:
    """Follows `users.tokens_revoked.v1` on an exclusive queue of this process's own."""

    def __init__(self, amqp_url: str, revocations: RevocationList) -> None:
        self._url = amqp_url
        self._revocations = revocations
        self._following: Following | None = None
        self._reload: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._following = await follow(self._url, [TOKENS_REVOKED.routing_key], self._on_event, no_ack=True)
        # Events published while the queue was gone (a reconnection) are lost: load them all.
        self._following.connection.reconnect_callbacks.add(self._reconnected)
        try:
            await self._revocations.reload()
        except RevocationsUnavailable:
            # The users service is not up yet: the first token check loads them.
            log.warning("token revocations not loaded at start; they load on first use")

    async def stop(self) -> None:
        if self._following is not None:
            await self._following.close()

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        if message.user_id != broker_user("users"):  # RabbitMQ vouches for user_id
            log.warning("security: token revocation not from the users service", extra={"user": message.user_id})
            return
        try:
            self._revocations.add(TokensRevoked.model_validate_json(message.body))
        except ValueError:
            log.warning("security: malformed token revocation ignored", extra={"raw_message_id": message.message_id})

    def _reconnected(self, *_: Any) -> None:
        self._revocations.stale()
        self._reload = asyncio.get_running_loop().create_task(self._reload_after_reconnect())

    async def _reload_after_reconnect(self) -> None:
        try:
            await self._revocations.reload()
        except RevocationsUnavailable:
            log.warning("token revocations not reloaded after a reconnection", exc_info=True)
