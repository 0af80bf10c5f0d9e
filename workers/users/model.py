"""The users domain: pure rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Literal
from uuid import UUID

from zxcvbn.frequency_lists import FREQUENCY_LISTS

from contracts.users import Address, UserView


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def normalize_email(email: str) -> str:
    """One account per mailbox, whatever the capitalisation the user typed."""
    return email.strip().lower()


def password_problem(password: str, *, email: str, username: str) -> str | None:
    """Why a password is refused, or None. Length is checked by the contract."""
    lowered = password.lower()
    if lowered in _common_passwords():
        return "is too common"
    if lowered in {email.lower(), username.lower(), email.lower().split("@")[0]}:
        return "must not be your email or username"
    return None


@dataclass(frozen=True)
class User:
    user_id: UUID
    email: str
    username: str
    role: str
    # None: the account signs in only through an identity provider.
    password_hash: str | None
    phone: str | None
    address: Address | None
    created_at: datetime
    updated_at: datetime
    disabled: bool = False

    def view(self) -> UserView:
        return UserView(
            user_id=self.user_id,
            email=self.email,
            username=self.username,
            role=self.role,
            phone=self.phone,
            address=self.address,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )

    def visible_to(self, actor_id: UUID, actor_role: str) -> bool:
        """A member sees only themself; an admin sees everyone."""
        return actor_role == "admin" or actor_id == self.user_id

    def updated(self, changes: dict[str, object], now: datetime) -> tuple[User, tuple[str, ...]]:
        """Apply a partial update; return the new user and the names of fields that changed."""
        changed = tuple(sorted(k for k, v in changes.items() if getattr(self, k) != v))
        if not changed:
            return self, ()
        return replace(self, **changes, updated_at=now), changed  # type: ignore[arg-type]


@dataclass(frozen=True)
class RefreshToken:
    """What the database knows about one refresh token (never the token itself)."""

    family_id: UUID
    user_id: UUID
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


RefreshVerdict = Literal["rotate", "reuse", "invalid"]


def refresh_verdict(token: RefreshToken | None, now: datetime) -> RefreshVerdict:
    """Whether a presented refresh token may be rotated.

    A token that was already rotated coming back means two parties hold the same
    session: one of them stole it. Which one cannot be told, so the whole family
    (every token descended from that login) is revoked: "reuse".
    """
    if token is None or token.revoked_at is not None:
        return "invalid"
    if token.used_at is not None:
        return "reuse"
    if token.expires_at <= now:
        return "invalid"
    return "rotate"
