"""Third-party sign-in (OpenID Connect): verify, load, decide (model.py), save, emit.

The edge ran the browser flow (edge/oidc.py) and checked the ID token with its nonce.
The token is checked again here, because it crossed the broker, which is not trusted:
only the provider's signature proves who signed in (kernel/oidc.py).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError

from contracts.oidc import IDENTITY_LINKED, IdentityLinked, OidcSignIn
from contracts.users import USER_REGISTERED, LoginResult, UserRegistered
from kernel.crypto import FieldCipher
from kernel.oidc import IdentityClaims, OidcError, Provider, ProviderUnavailable
from kernel.settings import Settings
from workers.runtime.context import HandlerContext
from workers.runtime.errors import DomainError, not_found
from workers.users.handlers import UserHandlers
from workers.users.model import User, federated_verdict, normalize_email, username_from, username_with_suffix
from workers.users.repository import UserRepository

log = logging.getLogger("agora.users.federation")

_ID_TOKEN_NAMESPACE = uuid.UUID("0b6e3f0c-5a43-4c7e-9d0f-2f7a9c1d8e41")

# verdict -> (error code, what the person should do)
_REFUSALS: dict[str, tuple[str, str]] = {
    "disabled": ("unauthorized", "this account cannot sign in"),
    "no_email": (
        "forbidden",
        "the identity provider did not share an email address; allow access to it and try again",
    ),
    "unverified": (
        "forbidden",
        "the identity provider has not verified this email address; verify it there and try again",
    ),
    "unverified_taken": (
        "conflict",
        "an account with this email exists, but the identity provider has not verified the address: "
        "sign in with your password instead",
    ),
}


class FederationHandlers:
    def __init__(
        self, providers: Mapping[str, Provider], users: UserHandlers, cipher: FieldCipher, settings: Settings
    ) -> None:
        self._providers = providers
        # Sessions are issued exactly as at login (refresh-token family and all).
        self._users = users
        self._cipher = cipher
        self._settings = settings

    async def oidc_sign_in(self, cmd: OidcSignIn, ctx: HandlerContext) -> LoginResult:
        claims = await self._verified(cmd)
        # An ID token signs in once: someone who copied one (from a log, a proxy, the
        # broker) cannot sign in with it again while it is still fresh. The inbox
        # table already records "seen once" per (consumer, id); the id here is derived
        # from the token.
        token_id = uuid.uuid5(_ID_TOKEN_NAMESPACE, hashlib.sha256(cmd.id_token.encode()).hexdigest())
        if not await ctx.first_time("users.oidc_id_token", token_id):
            log.warning("security: ID token replayed", extra={"provider": cmd.provider})
            raise DomainError("unauthorized", "the identity provider's ID token was already used")
        repo = UserRepository(ctx.session, self._cipher)
        try:
            async with ctx.session.begin_nested():
                user = await self._account(cmd.provider, claims, repo, ctx)
        except IntegrityError:
            # A concurrent first sign-in with this identity, email or username won the
            # race; its rows are visible now, so deciding again finds them.
            user = await self._account(cmd.provider, claims, repo, ctx)
        now = datetime.now(UTC)
        expires_at = now + timedelta(seconds=self._settings.refresh_token_ttl_seconds)
        await self._users.signed_in(ctx, user, now, "oidc", cmd.client_fingerprint)
        return await self._users.issue_tokens(ctx, repo, user, now=now, expires_at=expires_at)

    async def _verified(self, cmd: OidcSignIn) -> IdentityClaims:
        provider = self._providers.get(cmd.provider)
        if provider is None:
            raise not_found("identity provider")
        try:
            return await provider.verify_id_token(cmd.id_token)
        except OidcError as exc:
            log.warning("security: ID token refused", extra={"provider": cmd.provider, "reason": str(exc)})
            raise DomainError("unauthorized", "the identity provider's ID token is not valid") from None
        except ProviderUnavailable as exc:
            # The edge reached the provider a moment ago: this is this worker's network,
            # and retrying for minutes would outlive the ID token. Answer now.
            log.warning("identity provider unreachable", extra={"provider": cmd.provider, "reason": str(exc)})
            raise DomainError("unavailable", "the identity provider cannot be reached; retry later") from None

    async def _account(self, provider: str, claims: IdentityClaims, repo: UserRepository, ctx: HandlerContext) -> User:
        email = normalize_email(claims.email) if claims.email else None
        linked = await repo.by_identity(provider, claims.subject)
        same_email = await repo.by_email(email) if email and linked is None else None
        verdict = federated_verdict(
            linked=linked, same_email=same_email, email=email, email_verified=claims.email_verified
        )
        now = datetime.now(UTC)
        if verdict == "sign_in" and linked is not None:
            return linked
        if verdict == "link" and same_email is not None:
            await repo.link_identity(provider, claims.subject, same_email.user_id, now)
            await ctx.emit(
                IDENTITY_LINKED, IdentityLinked(user_id=same_email.user_id, provider=provider, linked_at=now)
            )
            log.info(
                "identity linked by verified email", extra={"provider": provider, "user_id": str(same_email.user_id)}
            )
            return same_email
        if verdict == "create" and email is not None:
            user = await self._new_member(email, claims, repo, now)
            await repo.link_identity(provider, claims.subject, user.user_id, now)
            await ctx.emit(
                USER_REGISTERED,
                UserRegistered(
                    user_id=user.user_id, email=email, username=user.username, role="member", registered_at=now
                ),
            )
            log.info(
                "member created by third-party sign-in", extra={"provider": provider, "user_id": str(user.user_id)}
            )
            return user
        if verdict in ("disabled", "unverified_taken"):
            log.warning("security: third-party sign-in refused", extra={"provider": provider, "reason": verdict})
        raise DomainError(*_REFUSALS[verdict])

    async def _new_member(self, email: str, claims: IdentityClaims, repo: UserRepository, now: datetime) -> User:
        base = username_from(claims.preferred_username, email, claims.name)
        username = base
        for _ in range(5):
            if not await repo.taken(username=username):
                break
            username = username_with_suffix(base, secrets.token_hex(2))
        else:
            username = username_with_suffix(base, secrets.token_hex(6))
        user = User(
            user_id=uuid.uuid4(),
            email=email,
            username=username,
            role="member",
            password_hash=None,  # signs in through its identity provider only
            phone=None,
            address=None,
            created_at=now,
            updated_at=now,
        )
        await repo.add(user)
        return user
