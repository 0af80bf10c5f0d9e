"""Users use cases: load, decide (model.py), save, emit. One transaction per message."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from passlib.hash import bcrypt_sha256
from sqlalchemy.exc import IntegrityError

from agora.crypto import FieldCipher
from agora.settings import Settings
from contracts.errors import FieldError
from contracts.users import (
    USER_REGISTERED,
    USER_UPDATED,
    GetJwks,
    GetUser,
    Jwks,
    LoginResult,
    LoginUser,
    RegisterUser,
    UpdateUser,
    UserRegistered,
    UserUpdated,
    UserView,
)
from workers.runtime.errors import DomainError, invalid, not_found
from workers.runtime.service import HandlerContext
from workers.users.keys import KeyRing, new_refresh_token
from workers.users.model import User, normalize_email, password_problem
from workers.users.repository import UserRepository

_BAD_CREDENTIALS = "email or password is incorrect"


class UserHandlers:
    def __init__(self, cipher: FieldCipher, keys: KeyRing, settings: Settings) -> None:
        self._cipher = cipher
        self._keys = keys
        self._settings = settings
        self._hasher = bcrypt_sha256.using(rounds=settings.bcrypt_rounds)
        # Verified against when the email is unknown, so that case costs the same time.
        self._dummy_hash = self._hasher.hash(uuid.uuid4().hex)

    async def register_user(self, cmd: RegisterUser, ctx: HandlerContext) -> UserView:
        email = normalize_email(cmd.email)
        problem = password_problem(cmd.password, email=email, username=cmd.username)
        if problem:
            raise invalid("password", problem)
        repo = UserRepository(ctx.session, self._cipher)
        if taken := await repo.taken(email=email, username=cmd.username):
            raise _conflict(taken)
        now = datetime.now(UTC)
        user = User(
            user_id=uuid.uuid4(),
            email=email,
            username=cmd.username,
            role="member",
            # Hashing is deliberately slow: keep it off the event loop.
            password_hash=await asyncio.to_thread(self._hasher.hash, cmd.password),
            phone=cmd.phone,
            address=cmd.address,
            created_at=now,
            updated_at=now,
        )
        try:
            # Its own savepoint: after a unique violation the transaction must still
            # be usable to find out which field collided.
            async with ctx.session.begin_nested():
                await repo.add(user)
        except IntegrityError:  # a concurrent registration won the race
            raise _conflict(await repo.taken(email=email, username=cmd.username) or {"email"}) from None
        await ctx.emit(
            USER_REGISTERED,
            UserRegistered(user_id=user.user_id, email=email, username=user.username, role="member", registered_at=now),
        )
        return user.view()

    async def login_user(self, cmd: LoginUser, ctx: HandlerContext) -> LoginResult:
        repo = UserRepository(ctx.session, self._cipher)
        user = await repo.by_email(normalize_email(cmd.email))
        hashed = user.password_hash if user else self._dummy_hash
        ok = await asyncio.to_thread(self._hasher.verify, cmd.password, hashed)
        if user is None or not ok or user.disabled:
            raise DomainError("unauthorized", _BAD_CREDENTIALS)
        token, token_hash = new_refresh_token()
        now = datetime.now(UTC)
        await repo.add_refresh_token(
            token_hash,
            user_id=user.user_id,
            issued_at=now,
            expires_at=now + timedelta(seconds=self._settings.refresh_token_ttl_seconds),
        )
        return LoginResult(
            access_token=await self._keys.access_token(ctx.session, user_id=user.user_id, role=user.role),
            expires_in=self._settings.access_token_ttl_seconds,
            refresh_token=token,
            user=user.view(),
        )

    async def get_user(self, cmd: GetUser, ctx: HandlerContext) -> UserView:
        actor = ctx.require_actor()
        user = await UserRepository(ctx.session, self._cipher).get(cmd.user_id or actor.user_id)
        # Someone else's account is "not found", not "forbidden": no probing for ids.
        if user is None or not user.visible_to(actor.user_id, actor.role):
            raise not_found("user")
        return user.view()

    async def update_user(self, cmd: UpdateUser, ctx: HandlerContext) -> UserView:
        actor = ctx.require_actor()
        repo = UserRepository(ctx.session, self._cipher)
        user = await repo.get(cmd.user_id)
        if user is None or not user.visible_to(actor.user_id, actor.role):
            raise not_found("user")
        changes = cmd.model_dump(include=cmd.model_fields_set - {"user_id"})
        if "address" in changes:
            changes["address"] = cmd.address
        if "username" in changes and changes["username"] is None:
            raise invalid("username", "cannot be removed")
        if (
            "username" in changes
            and changes["username"].lower() != user.username.lower()
            and await repo.taken(username=changes["username"])
        ):
            raise _conflict({"username"})
        updated, changed = user.updated(changes, datetime.now(UTC))
        if changed:
            try:
                await repo.save(updated)
            except IntegrityError:
                raise _conflict({"username"}) from None
            await ctx.emit(
                USER_UPDATED, UserUpdated(user_id=user.user_id, changed=changed, updated_at=updated.updated_at)
            )
        return updated.view()

    async def get_jwks(self, cmd: GetJwks, ctx: HandlerContext) -> Jwks:
        return Jwks(keys=tuple((await self._keys.jwks(ctx.session))["keys"]))


def _conflict(fields: set[str]) -> DomainError:
    names = sorted(fields)
    return DomainError(
        "conflict",
        f"{' and '.join(names)} already registered",
        tuple(FieldError(field=f, message="already registered") for f in names),
    )
