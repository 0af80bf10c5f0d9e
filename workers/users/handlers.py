"""Users use cases: load, decide (model.py), save, emit. One transaction per message."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from passlib.hash import bcrypt_sha256
from sqlalchemy.exc import IntegrityError

from contracts.errors import FieldError
from contracts.privacy import ExportUserData, PersonalData
from contracts.users import (
    PASSWORD_CHANGED,
    SIGNED_IN,
    TOKENS_REVOKED,
    USER_ERASED,
    USER_REGISTERED,
    USER_UPDATED,
    ChangePassword,
    Contact,
    EraseUser,
    GetContact,
    GetJwks,
    GetRevocations,
    GetUser,
    Jwks,
    ListUsers,
    LoginResult,
    LoginUser,
    Logout,
    LogoutAll,
    PasswordChanged,
    RefreshSession,
    RegisterUser,
    RevocationReason,
    Revocations,
    SignedIn,
    TokensRevoked,
    UpdateUser,
    UserErased,
    UserPage,
    UserRegistered,
    UserView,
)
from kernel.crypto import FieldCipher
from kernel.settings import Settings
from kernel.tokens import Actor
from workers.runtime.context import HandlerContext
from workers.runtime.errors import DomainError, invalid, not_found
from workers.runtime.pagination import decode_cursor, encode_cursor
from workers.users.keys import KeyRing, hash_refresh_token, new_refresh_token
from workers.users.model import (
    ACCOUNT_ROLES,
    UpdateRefused,
    User,
    decide_update,
    normalize_email,
    password_problem,
    refresh_verdict,
    refuse_admin_fields,
    revocation_window,
)
from workers.users.repository import UserRepository

_BAD_CREDENTIALS = "email or password is incorrect"
_BAD_REFRESH = "the refresh token is invalid, expired or revoked"

log = logging.getLogger("agora.users")


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
        hashed = user.password_hash if user and user.password_hash else self._dummy_hash
        ok = await asyncio.to_thread(self._hasher.verify, cmd.password, hashed)
        if user is None or user.password_hash is None or not ok or user.disabled:
            raise DomainError("unauthorized", _BAD_CREDENTIALS)
        now = datetime.now(UTC)
        expires_at = now + timedelta(seconds=self._settings.refresh_token_ttl_seconds)
        await self.signed_in(ctx, user, now, "password", cmd.client_fingerprint)
        return await self.issue_tokens(ctx, repo, user, now=now, expires_at=expires_at)

    async def signed_in(
        self,
        ctx: HandlerContext,
        user: User,
        now: datetime,
        method: Literal["password", "oidc"],
        fingerprint: str | None,
    ) -> None:
        """Tell the world (the notifications service: new-device notices) of a new session."""
        await ctx.emit(SIGNED_IN, SignedIn(user_id=user.user_id, at=now, method=method, client_fingerprint=fingerprint))

    async def refresh_session(self, cmd: RefreshSession, ctx: HandlerContext) -> LoginResult:
        repo = UserRepository(ctx.session, self._cipher)
        presented = hash_refresh_token(cmd.refresh_token)
        token = await repo.refresh_token_for_update(presented)
        now = datetime.now(UTC)
        verdict = refresh_verdict(token, now)
        if verdict == "reuse" and token is not None:
            await self._revoke(ctx, repo, token.user_id, "refresh_reuse", now, session_id=token.family_id)
            log.warning("security: refresh token reused; session revoked", extra={"family_id": str(token.family_id)})
            raise DomainError("unauthorized", _BAD_REFRESH, keep_changes=True)
        user = await repo.get(token.user_id) if token is not None and verdict == "rotate" else None
        if token is None or user is None or user.disabled:
            raise DomainError("unauthorized", _BAD_REFRESH)
        await repo.mark_refresh_token_used(presented, now)
        # The new token inherits the family's expiry: a session has an absolute lifetime
        # however often it is refreshed.
        return await self.issue_tokens(ctx, repo, user, now=now, expires_at=token.expires_at, family_id=token.family_id)

    async def logout(self, cmd: Logout, ctx: HandlerContext) -> None:
        repo = UserRepository(ctx.session, self._cipher)
        token = await repo.refresh_token_for_update(hash_refresh_token(cmd.refresh_token))
        # An unknown token is not an error: the session is over either way, and the
        # answer must not tell a guesser which tokens exist.
        if token is not None:
            await self._revoke(ctx, repo, token.user_id, "logout", datetime.now(UTC), session_id=token.family_id)

    async def logout_all(self, cmd: LogoutAll, ctx: HandlerContext) -> None:
        actor = ctx.require_actor()
        repo = UserRepository(ctx.session, self._cipher)
        await self._revoke(ctx, repo, actor.user_id, "logout_all", datetime.now(UTC))

    async def _revoke(
        self,
        ctx: HandlerContext,
        repo: UserRepository,
        user_id: uuid.UUID,
        reason: RevocationReason,
        now: datetime,
        *,
        session_id: uuid.UUID | None = None,
    ) -> None:
        """End a session (or all of the user's) and void its access tokens everywhere at once."""
        revoked = TokensRevoked(user_id=user_id, session_id=session_id, not_before=now, reason=reason)
        await repo.revoke(revoked, keep_for=revocation_window(self._settings.access_token_ttl_seconds))
        await ctx.emit(TOKENS_REVOKED, revoked)

    async def get_revocations(self, query: GetRevocations, ctx: HandlerContext) -> Revocations:
        since = datetime.now(UTC) - revocation_window(self._settings.access_token_ttl_seconds)
        items = await UserRepository(ctx.session, self._cipher).revocations_since(since)
        return Revocations(items=tuple(items))

    async def change_password(self, cmd: ChangePassword, ctx: HandlerContext) -> None:
        actor = ctx.require_actor()
        repo = UserRepository(ctx.session, self._cipher)
        # Only for oneself (it needs the current password); anyone else's account is not found.
        user = await repo.get(cmd.user_id) if cmd.user_id == actor.user_id else None
        if user is None:
            raise not_found("user")
        current = user.password_hash or self._dummy_hash
        matches = await asyncio.to_thread(self._hasher.verify, cmd.current_password, current)
        if user.password_hash is None or not matches:
            # Not the owner's proof of knowing it: a refusal (403), not a malformed request.
            raise DomainError(
                "forbidden",
                "current_password is incorrect",
                (FieldError(field="current_password", message="is incorrect"),),
            )
        if cmd.new_password == cmd.current_password:
            raise invalid("new_password", "must differ from the current password")
        if problem := password_problem(cmd.new_password, email=user.email, username=user.username):
            raise invalid("new_password", problem)
        now = datetime.now(UTC)
        new_hash = await asyncio.to_thread(self._hasher.hash, cmd.new_password)
        await repo.save(replace(user, password_hash=new_hash, updated_at=now))
        # Whoever knew the old password may hold a session: end them all.
        await self._revoke(ctx, repo, user.user_id, "password_changed", now)
        await ctx.emit(PASSWORD_CHANGED, PasswordChanged(user_id=user.user_id, changed_at=now))

    async def issue_tokens(
        self,
        ctx: HandlerContext,
        repo: UserRepository,
        user: User,
        *,
        now: datetime,
        expires_at: datetime,
        family_id: uuid.UUID | None = None,
    ) -> LoginResult:
        """A new session (login, third-party sign-in: no `family_id`) or the next token of one."""
        token, token_hash = new_refresh_token()
        session_id = await repo.add_refresh_token(
            token_hash, user_id=user.user_id, issued_at=now, expires_at=expires_at, family_id=family_id
        )
        access_token = await self._keys.access_token(
            ctx.session, user_id=user.user_id, role=user.role, session_id=session_id
        )
        return LoginResult(
            access_token=access_token,
            expires_in=self._settings.access_token_ttl_seconds,
            refresh_token=token,
            user=user.view(),
        )

    async def get_user(self, cmd: GetUser, ctx: HandlerContext) -> UserView:
        repo = UserRepository(ctx.session, self._cipher)
        actor = await _current_actor(repo, ctx.require_actor())
        user = await _visible_user(repo, cmd.user_id or actor.user_id, actor)
        if user.user_id != actor.user_id:  # an admin reading someone's personal data
            await repo.audit(actor, "user.read", target_id=user.user_id, details={}, envelope=ctx.envelope)
        return user.view()

    async def update_user(self, cmd: UpdateUser, ctx: HandlerContext) -> UserView:
        repo = UserRepository(ctx.session, self._cipher)
        actor = await _current_actor(repo, ctx.require_actor())
        changes = cmd.model_dump(include=cmd.model_fields_set - {"user_id"})
        now = datetime.now(UTC)
        try:
            refuse_admin_fields(changes, actor.role)
            user = await _visible_user(repo, cmd.user_id, actor)
            if "address" in changes:
                changes["address"] = cmd.address
            decided = decide_update(user, changes, actor.user_id, actor.role, now)
        except UpdateRefused as exc:
            raise invalid(exc.field, exc.detail) if exc.field else DomainError(exc.code, exc.detail) from None
        if decided.new_username is not None and await repo.taken(username=decided.new_username):
            raise _conflict({"username"})
        if decided.event is not None:
            try:
                await repo.save(decided.user)
            except IntegrityError:
                raise _conflict({"username"}) from None
            if decided.revoke is not None:
                await self._revoke(ctx, repo, user.user_id, decided.revoke, now)
            await ctx.emit(USER_UPDATED, decided.event)
        if decided.audit is not None:
            await repo.audit(actor, "user.update", target_id=user.user_id, details=decided.audit, envelope=ctx.envelope)
        return decided.user.view()

    async def list_users(self, cmd: ListUsers, ctx: HandlerContext) -> UserPage:
        repo = UserRepository(ctx.session, self._cipher)
        actor = await _current_actor(repo, ctx.require_actor())
        if actor.role != "admin":
            raise DomainError("forbidden", "only an admin may list accounts")
        after = decode_cursor(cmd.cursor) if cmd.cursor else None
        found = await repo.search(q=cmd.q, role=cmd.role, disabled=cmd.disabled, limit=cmd.limit + 1, after=after)
        page = found[: cmd.limit]
        next_cursor = encode_cursor(page[-1].created_at, page[-1].user_id) if len(found) > cmd.limit else None
        # The search text is often someone's email: the audit says a search was made,
        # not for whom, so erasing that person leaves nothing of them here.
        details = {k: v for k, v in cmd.model_dump(exclude={"cursor", "q"}).items() if v is not None}
        details["text_search"] = bool(cmd.q)
        await repo.audit(actor, "users.search", target_id=None, details=details, envelope=ctx.envelope)
        return UserPage(items=tuple(u.view() for u in page), next_cursor=next_cursor)

    async def erase_user(self, cmd: EraseUser, ctx: HandlerContext) -> None:
        repo = UserRepository(ctx.session, self._cipher)
        actor = await _current_actor(repo, ctx.require_actor())
        user = await _visible_user(repo, cmd.user_id, actor)
        if actor.role == "admin" and user.user_id == actor.user_id:
            raise DomainError("conflict", "an admin cannot erase their own account")
        now = datetime.now(UTC)
        await repo.save(user.erased(now))
        await repo.forget_identities(user.user_id)
        await repo.scrub_sent_events(user.user_id)
        await self._revoke(ctx, repo, user.user_id, "erased", now)
        await ctx.emit(USER_ERASED, UserErased(user_id=user.user_id, erased_at=now))
        by = "self" if user.user_id == actor.user_id else "admin"
        await repo.audit(actor, "user.erase", target_id=user.user_id, details={"by": by}, envelope=ctx.envelope)

    async def export_user_data(self, cmd: ExportUserData, ctx: HandlerContext) -> PersonalData:
        repo = UserRepository(ctx.session, self._cipher)
        actor = await _current_actor(repo, ctx.require_actor())
        user = await _visible_user(repo, cmd.user_id, actor)
        data = {"profile": user.view().model_dump(mode="json"), **await repo.personal_records(user.user_id)}
        if user.user_id != actor.user_id:
            await repo.audit(actor, "user.export", target_id=user.user_id, details={}, envelope=ctx.envelope)
        return PersonalData(service="users", data=data)

    async def get_contact(self, query: GetContact, ctx: HandlerContext) -> Contact:
        """Only the notifications service may ask: it reads addresses when it sends, and keeps none."""
        ctx.require_service("notifications")
        user = await UserRepository(ctx.session, self._cipher).get(query.user_id)
        if user is None:
            raise not_found("user")
        return Contact(
            user_id=user.user_id,
            email=user.email,
            username=user.username,
            phone=user.phone,
            erased=user.erased_at is not None,
            disabled=user.disabled,
        )

    async def get_jwks(self, cmd: GetJwks, ctx: HandlerContext) -> Jwks:
        return Jwks(keys=tuple((await self._keys.jwks(ctx.session))["keys"]))


async def _current_actor(repo: UserRepository, actor: Actor) -> Actor:
    """The actor with the role the database gives them now.

    A token keeps the role it was issued with for its lifetime; this service owns the
    accounts, so it need not trust that: a demoted admin is a member here at once, and a
    disabled or erased account can do nothing, even with an unexpired token. (Other
    services drop such tokens within a second or so: kernel/revocations.py.)
    """
    if actor.role not in ACCOUNT_ROLES:  # a partner or a service: no account row
        return actor
    me = await repo.get(actor.user_id)
    if me is None or me.disabled or me.erased_at is not None:
        raise DomainError("unauthorized", "this account can no longer act")
    return replace(actor, role=me.role)


async def _visible_user(repo: UserRepository, user_id: uuid.UUID, actor: Actor) -> User:
    """The account, if the actor may see it. Someone else's account is "not found", not
    "forbidden": an id alone must not tell a prober whether it exists."""
    user = await repo.get(user_id)
    if user is None or not user.visible_to(actor.user_id, actor.role):
        raise not_found("user")
    return user


def _conflict(fields: set[str]) -> DomainError:
    names = sorted(fields)
    return DomainError(
        "conflict",
        f"{' and '.join(names)} already registered",
        tuple(FieldError(field=f, message="already registered") for f in names),
    )
