"""The revocation list every token verifier keeps (kernel/revocations.py): what it voids,
and how it loads. The feed that fills it is tested end to end in tests/security/test_revocation.py."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from contracts.users import TokensRevoked
from kernel.revocations import RevocationList, RevocationsUnavailable
from kernel.tokens import Actor

WINDOW = 930.0


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _actor(user: object, issued_at: float, session: object = None) -> Actor:
    return Actor(user_id=user, role="member", issued_at=issued_at, session_id=session)  # type: ignore[arg-type]


async def test_a_user_wide_mark_voids_older_tokens_only_to_the_millisecond() -> None:
    user, now = uuid4(), time.time()
    revoked = RevocationList(
        lambda: _items([TokensRevoked(user_id=user, not_before=_at(now), reason="logout_all")]), window_seconds=WINDOW
    )
    await revoked.ready()
    assert revoked.voids(_actor(user, now - 0.001))
    assert not revoked.voids(_actor(user, now + 0.001))  # signed in again right after
    assert not revoked.voids(_actor(uuid4(), now - 60))  # someone else


async def test_a_session_mark_voids_that_session_only() -> None:
    user, session, now = uuid4(), uuid4(), time.time()
    mark = TokensRevoked(user_id=user, session_id=session, not_before=_at(now), reason="logout")
    revoked = RevocationList(lambda: _items([mark]), window_seconds=WINDOW)
    await revoked.ready()
    assert revoked.voids(_actor(user, now - 1, session))
    assert not revoked.voids(_actor(user, now - 1, uuid4()))  # the same account on another device


async def test_a_burst_on_a_cold_list_loads_once_and_a_failed_load_judges_no_token() -> None:
    loads = 0

    async def fetch() -> list[TokensRevoked]:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.02)
        return []

    revoked = RevocationList(fetch, window_seconds=WINDOW)
    await asyncio.gather(*(revoked.ready() for _ in range(10)))
    assert loads == 1
    revoked.stale()  # a reconnection: events may have been missed
    await revoked.ready()
    assert loads == 2

    async def down() -> list[TokensRevoked]:
        raise ConnectionError("users service down")

    unavailable = RevocationList(down, window_seconds=WINDOW)
    with pytest.raises(RevocationsUnavailable):  # a ConnectionError: the caller retries
        await unavailable.ready()


async def test_marks_older_than_a_token_lifetime_are_forgotten() -> None:
    user = uuid4()
    old = TokensRevoked(user_id=user, not_before=datetime.now(UTC) - timedelta(seconds=WINDOW + 5), reason="logout_all")
    revoked = RevocationList(lambda: _items([old]), window_seconds=WINDOW)
    await revoked.ready()
    assert not revoked.voids(_actor(user, 0.0))  # any token it could void has expired anyway


async def _items(items: list[TokensRevoked]) -> list[TokensRevoked]:
    return items
