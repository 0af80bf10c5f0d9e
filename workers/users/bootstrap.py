"""The first admin: created (or promoted) by an operator at the command line.

Nobody can become admin through the API until an admin exists, so the first one is
made here, with database access, and written to the audit log as the operator's act.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from passlib.hash import bcrypt_sha256

from contracts.users import (
    TOKENS_REVOKED,
    USER_REGISTERED,
    USER_UPDATED,
    TokensRevoked,
    UserRegistered,
    UserUpdated,
)
from kernel.crypto import FieldCipher
from kernel.settings import Settings
from workers.runtime.context import operator_unit_of_work
from workers.users.model import User, normalize_email, password_problem, revocation_window, username_with_suffix
from workers.users.repository import UserRepository


class BootstrapError(Exception):
    """The admin cannot be created as asked (a weak password, a taken username)."""


async def create_admin(
    settings: Settings, *, email: str, password: str | None, username: str | None = None, promote: bool = False
) -> str:
    """Create an admin account, or (with `promote`) make the account with this email one.

    Promotion must be asked for: anyone can register any email address, so an account
    that merely bears the intended admin's address is not proof it is theirs.
    """
    email = normalize_email(email)
    chosen = username
    username = username or re.sub(r"[^A-Za-z0-9_.-]", "_", email.split("@")[0])[:32]
    cipher = FieldCipher.from_config(settings.data_keys, settings.data_key_id)
    async with operator_unit_of_work(settings, "users") as ctx:
        repo = UserRepository(ctx.session, cipher)
        now = datetime.now(UTC)
        existing = await repo.by_email(email)
        if existing is not None:
            if existing.role == "admin" and not existing.disabled:
                return f"{email} is already an admin"
            if not promote:
                raise BootstrapError(f"an account with {email} exists; pass --promote if it is the intended admin's")
            await repo.save(replace(existing, role="admin", disabled_at=None, updated_at=now))
            # Its tokens carry the old role: void them everywhere.
            revoked = TokensRevoked(user_id=existing.user_id, not_before=now, reason="role_changed")
            await repo.revoke(revoked, keep_for=revocation_window(settings.access_token_ttl_seconds))
            await ctx.emit(TOKENS_REVOKED, revoked)
            await repo.audit(None, "user.promote_admin", target_id=existing.user_id, details={"from": existing.role})
            changed = ("disabled", "role") if existing.disabled else ("role",)
            updated = UserUpdated(
                user_id=existing.user_id, changed=changed, updated_at=now, role="admin", disabled=False
            )
            await ctx.emit(USER_UPDATED, updated)
            return f"{email} promoted to admin (its password is unchanged)"
        if not password:
            raise BootstrapError("a new account needs a password: set AGORA_ADMIN_PASSWORD or run in a terminal")
        if problem := password_problem(password, email=email, username=username):
            raise BootstrapError(f"password {problem}")
        if len(password) < 8:
            raise BootstrapError("password must have at least 8 characters")
        if await repo.taken(username=username):
            if chosen:
                raise BootstrapError(f"username {username} is taken; pass another --username")
            # Derived from the email (a second admin on a data directory that has
            # `admin` already): the first free `admin_2`, `admin_3`, ...
            username = await _free_username(repo, username)
        user = User(
            user_id=uuid.uuid4(),
            email=email,
            username=username,
            role="admin",
            password_hash=bcrypt_sha256.using(rounds=settings.bcrypt_rounds).hash(password),
            phone=None,
            address=None,
            created_at=now,
            updated_at=now,
        )
        await repo.add(user)
        await repo.audit(None, "user.create_admin", target_id=user.user_id, details={})
        event = UserRegistered(user_id=user.user_id, email=email, username=username, role="admin", registered_at=now)
        await ctx.emit(USER_REGISTERED, event)
        return f"admin {email} created (username {username})"


async def _free_username(repo: UserRepository, base: str) -> str:
    for n in range(2, 100):
        candidate = username_with_suffix(base, str(n))
        if not await repo.taken(username=candidate):
            return candidate
    raise BootstrapError(f"username {base} and its numbered variants are taken; pass --username")
