"""The users domain: pure rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal
from uuid import UUID

from zxcvbn.frequency_lists import FREQUENCY_LISTS

from contracts.users import Address, RevocationReason, UserUpdated, UserView
from kernel.tokens import LEEWAY_SECONDS


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def revocation_window(access_token_ttl_seconds: float) -> timedelta:
    """How long a token revocation matters: as long as the longest-lived token it can void."""
    return timedelta(seconds=access_token_ttl_seconds + LEEWAY_SECONDS)


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
    disabled_at: datetime | None = None
    erased_at: datetime | None = None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def view(self) -> UserView:
        return UserView(
            user_id=self.user_id,
            email=self.email,
            username=self.username,
            role=self.role,
            phone=self.phone,
            address=self.address,
            disabled=self.disabled,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )

    def erased(self, now: datetime) -> User:
        """The account with its personal data gone: the id stays, so orders still add up."""
        return replace(
            self,
            email=f"erased-{self.user_id}@erased.invalid",
            username=f"erased_{self.user_id.hex[:24]}",
            password_hash=None,
            phone=None,
            address=None,
            disabled_at=self.disabled_at or now,
            erased_at=now,
            updated_at=now,
        )

    def visible_to(self, actor_id: UUID, actor_role: str) -> bool:
        """A member sees only themself; an admin sees everyone. Erased accounts are gone."""
        return self.erased_at is None and (actor_role == "admin" or actor_id == self.user_id)

    def updated(self, changes: dict[str, object], now: datetime) -> tuple[User, tuple[str, ...]]:
        """Apply a partial update; return the new user and the names of fields that changed."""
        changed = tuple(sorted(k for k, v in changes.items() if getattr(self, k) != v))
        if not changed:
            return self, ()
        fields = {k: v for k, v in changes.items() if k in changed and k != "disabled"}
        if "disabled" in changed:
            fields["disabled_at"] = now if changes["disabled"] else None
        return replace(self, **fields, updated_at=now), changed  # type: ignore[arg-type]


# Only an admin sets these, on anyone's account.
ADMIN_FIELDS = frozenset({"role", "disabled"})
# Roles of actors that are accounts here (partners and services are OAuth clients).
ACCOUNT_ROLES = frozenset({"member", "seller", "admin"})


def update_refusal(user: User, changes: dict[str, object], actor_id: UUID, actor_role: str) -> str | None:
    """Why an actor who can see `user` may still not make `changes`: "forbidden", "self_lockout" or None."""
    admin_fields = ADMIN_FIELDS & changes.keys()
    if admin_fields and actor_role != "admin":
        return "forbidden"
    # An admin who demotes or disables themself may leave nobody able to undo it.
    if user.user_id == actor_id and (changes.get("disabled") is True or changes.get("role", "admin") != "admin"):
        return "self_lockout"
    return None


class UpdateRefused(Exception):
    """An update the rules refuse: `code` is the error code; `field` names the field at fault."""

    def __init__(self, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.field = field


@dataclass(frozen=True)
class Update:
    """What an update decided: the user after it, the fields it changed, the event that
    announces it (None if nothing changed), why the user's sessions end (a role or
    access change), whether a new username must be checked free, and what the audit
    log keeps of an admin's update (None for anyone else's)."""

    user: User
    changed: tuple[str, ...]
    event: UserUpdated | None
    revoke: RevocationReason | None
    new_username: str | None
    audit: dict[str, object] | None


def refuse_admin_fields(changes: dict[str, object], actor_role: str) -> None:
    """Refused before the account is looked up: 403 whoever's account it is."""
    if ADMIN_FIELDS & changes.keys() and actor_role != "admin":
        raise UpdateRefused("forbidden", "only an admin may change role or disabled")


def decide_update(user: User, changes: dict[str, object], actor_id: UUID, actor_role: str, now: datetime) -> Update:
    """Decide a partial update of `user` by an actor who may see it; `UpdateRefused` if not allowed."""
    for field in ("username", "role", "disabled"):
        if field in changes and changes[field] is None:
            raise UpdateRefused("validation_failed", "cannot be removed", field)
    refusal = update_refusal(user, changes, actor_id, actor_role)
    if refusal == "forbidden":
        raise UpdateRefused("forbidden", "only an admin may change role or disabled")
    if refusal == "self_lockout":
        raise UpdateRefused("conflict", "an admin cannot demote or disable their own account")
    username = changes.get("username")
    new_username = username if isinstance(username, str) and username.lower() != user.username.lower() else None
    updated, changed = user.updated(changes, now)
    event = None
    revoke: RevocationReason | None = None
    if changed:
        event = UserUpdated(
            user_id=user.user_id,
            changed=changed,
            updated_at=updated.updated_at,
            role=updated.role,
            disabled=updated.disabled,
            username=updated.username if "username" in changed else None,
        )
        if ADMIN_FIELDS & set(changed):
            # Sessions carry the old role (or a disabled account's access): end them.
            revoke = "disabled" if updated.disabled else "role_changed"
    audit: dict[str, object] | None = None
    if actor_role == "admin":
        audit = {"changed": list(changed)}
        if "role" in changed:
            audit["role"] = {"from": user.role, "to": updated.role}
        if "disabled" in changed:
            audit["disabled"] = updated.disabled
    return Update(updated, changed, event, revoke, new_username, audit)


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


# --- third-party sign-in (workers/users/federation.py) -------------------------------

FederatedVerdict = Literal["sign_in", "link", "create", "disabled", "no_email", "unverified_taken", "unverified"]


def federated_verdict(
    *, linked: User | None, same_email: User | None, email: str | None, email_verified: bool
) -> FederatedVerdict:
    """How a verified provider identity signs in.

    An identity linked before signs in to its account, whatever its email says now.
    Otherwise the email decides, and only an email the provider has *verified*: an
    unverified one is merely claimed, so linking on it would hand its claimant someone
    else's account, and creating an account on it would let a squatter hold the
    address until its owner signs in with a provider that vouches for it, and is
    linked into the squatter's account.
    """
    target = linked or (same_email if email_verified else None)
    if target is not None and target.disabled:
        return "disabled"
    if linked is not None:
        return "sign_in"
    if email is None:
        return "no_email"
    if not email_verified:
        return "unverified_taken" if same_email is not None else "unverified"
    return "link" if same_email is not None else "create"


_USERNAME_MIN, _USERNAME_MAX = 3, 32


def username_from(*hints: str | None) -> str:
    """A username for a new account from the provider's hints (`preferred_username`,
    the email's local part, ...): the first that survives cleaning, else "member"."""
    for hint in hints:
        if not hint:
            continue
        local = hint.split("@", 1)[0]
        cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "_.-") else "_" for c in local)
        cleaned = cleaned.strip("._-")[:_USERNAME_MAX].rstrip("._-")
        if len(cleaned) >= _USERNAME_MIN:
            return cleaned
    return "member"


def username_with_suffix(base: str, suffix: str) -> str:
    """`base_suffix`, shortened so it stays a valid username."""
    return f"{base[: _USERNAME_MAX - len(suffix) - 1]}_{suffix}"
