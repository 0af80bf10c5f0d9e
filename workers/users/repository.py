"""Loading and saving users; phone and address are sealed (AES-256-GCM) on the way in."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import Envelope
from contracts.users import Address, TokensRevoked
from db.sealed import USER_ADDRESS, USER_PHONE
from db.tables.users import audit_log, identities, refresh_tokens, token_revocations, users, users_outbox
from kernel.crypto import FieldCipher, Sealed
from kernel.tokens import Actor
from workers.users.model import RefreshToken, User


class UserRepository:
    def __init__(self, session: AsyncSession, cipher: FieldCipher) -> None:
        self._session = session
        self._cipher = cipher

    async def get(self, user_id: UUID) -> User | None:
        row = (await self._session.execute(select(users).where(users.c.user_id == user_id))).first()
        return self._to_user(row) if row else None

    async def by_email(self, email: str) -> User | None:
        row = (await self._session.execute(select(users).where(func.lower(users.c.email) == email.lower()))).first()
        return self._to_user(row) if row else None

    async def taken(self, *, email: str | None = None, username: str | None = None) -> set[str]:
        """Which of email/username already belong to an account (case-insensitive)."""
        found: set[str] = set()
        if email and await self._session.scalar(select(func.count()).where(func.lower(users.c.email) == email.lower())):
            found.add("email")
        if username and await self._session.scalar(
            select(func.count()).where(func.lower(users.c.username) == username.lower())
        ):
            found.add("username")
        return found

    async def search(
        self,
        *,
        q: str | None,
        role: str | None,
        disabled: bool | None,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> list[User]:
        """Accounts, newest first, after the cursor position `after`."""
        stmt = select(users).where(users.c.erased_at.is_(None))
        if q:
            pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            stmt = stmt.where(
                or_(
                    func.lower(users.c.email).like(pattern, escape="\\"),
                    func.lower(users.c.username).like(pattern, escape="\\"),
                )
            )
        if role:
            stmt = stmt.where(users.c.role == role)
        if disabled is not None:
            stmt = stmt.where(users.c.disabled_at.is_not(None) if disabled else users.c.disabled_at.is_(None))
        if after is not None:
            stmt = stmt.where(tuple_(users.c.created_at, users.c.user_id) < tuple_(*after))
        stmt = stmt.order_by(users.c.created_at.desc(), users.c.user_id.desc()).limit(limit)
        return [self._to_user(row) for row in (await self._session.execute(stmt)).all()]

    async def audit(
        self,
        actor: Actor | None,
        action: str,
        *,
        target_id: UUID | None,
        details: dict[str, Any],
        envelope: Envelope | None = None,
    ) -> None:
        """One line in the audit log, in the same transaction as what it records.

        No actor: an operator at the command line (`agora users create-admin`).
        """
        await self._session.execute(
            audit_log.insert().values(
                actor_id=actor.user_id if actor else None,
                actor_role=actor.role if actor else "operator",
                action=action,
                target_id=target_id,
                details=details,
                correlation_id=envelope.correlation_id if envelope else None,
            )
        )

    async def add(self, user: User) -> None:
        await self._session.execute(users.insert().values(**self._to_row(user)))

    async def save(self, user: User) -> None:
        await self._session.execute(users.update().where(users.c.user_id == user.user_id).values(**self._to_row(user)))

    async def add_refresh_token(
        self,
        token_hash: str,
        *,
        user_id: UUID,
        issued_at: datetime,
        expires_at: datetime,
        family_id: UUID | None = None,
    ) -> UUID:
        """A refresh token: the first of a new family (a login) or the next of one; the family."""
        family_id = family_id or uuid4()
        await self._session.execute(
            refresh_tokens.insert().values(
                token_hash=token_hash,
                family_id=family_id,
                user_id=user_id,
                issued_at=issued_at,
                expires_at=expires_at,
            )
        )
        return family_id

    async def refresh_token_for_update(self, token_hash: str) -> RefreshToken | None:
        """The token's row, locked: two concurrent refreshes with one token serialize."""
        t = refresh_tokens
        row = (
            await self._session.execute(
                select(t.c.family_id, t.c.user_id, t.c.expires_at, t.c.used_at, t.c.revoked_at)
                .where(t.c.token_hash == token_hash)
                .with_for_update()
            )
        ).first()
        return RefreshToken(**row._mapping) if row else None

    async def mark_refresh_token_used(self, token_hash: str, now: datetime) -> None:
        await self._session.execute(
            refresh_tokens.update().where(refresh_tokens.c.token_hash == token_hash).values(used_at=now)
        )

    async def revoke_family(self, family_id: UUID, now: datetime) -> None:
        t = refresh_tokens
        await self._session.execute(
            t.update().where(t.c.family_id == family_id, t.c.revoked_at.is_(None)).values(revoked_at=now)
        )

    async def revoke_all_sessions(self, user_id: UUID, now: datetime) -> None:
        t = refresh_tokens
        await self._session.execute(
            t.update().where(t.c.user_id == user_id, t.c.revoked_at.is_(None)).values(revoked_at=now)
        )

    async def revoke(self, revoked: TokensRevoked, *, keep_for: timedelta) -> None:
        """End the session (or every session of the user) and remember that its access
        tokens are void for as long as one can live (older marks go). The caller emits
        `revoked` as `users.tokens_revoked.v1`, so verifiers drop the tokens at once."""
        if revoked.session_id is not None:
            await self.revoke_family(revoked.session_id, revoked.not_before)
        else:
            await self.revoke_all_sessions(revoked.user_id, revoked.not_before)
        await remember_revocation(self._session, revoked, keep_for=keep_for)

    async def revocations_since(self, since: datetime) -> list[TokensRevoked]:
        t = token_revocations
        rows = await self._session.execute(
            select(t.c.user_id, t.c.session_id, t.c.not_before, t.c.reason).where(t.c.not_before >= since)
        )
        return [TokensRevoked.model_validate(row._mapping) for row in rows]

    async def personal_records(self, user_id: UUID) -> dict[str, list[dict[str, Any]]]:
        """What else this service holds about a user: linked identities, sessions, audit lines."""
        t = refresh_tokens
        queries = {
            "identities": select(identities.c.provider, identities.c.subject, identities.c.created_at).where(
                identities.c.user_id == user_id
            ),
            "sessions": select(t.c.family_id, t.c.issued_at, t.c.expires_at, t.c.used_at, t.c.revoked_at)
            .where(t.c.user_id == user_id)
            .order_by(t.c.issued_at),
            "audit_log": select(audit_log.c.at, audit_log.c.actor_role, audit_log.c.action, audit_log.c.details)
            .where(audit_log.c.target_id == user_id)
            .order_by(audit_log.c.id),
            "audit_log_as_actor": select(audit_log.c.at, audit_log.c.action, audit_log.c.target_id, audit_log.c.details)
            .where(audit_log.c.actor_id == user_id)
            .order_by(audit_log.c.id),
        }
        return {
            name: [dict(row._mapping) for row in (await self._session.execute(query)).all()]
            for name, query in queries.items()
        }

    async def scrub_sent_events(self, user_id: UUID) -> None:
        """Published events about the user keep only its id: the outbox is no archive of
        personal data. (Unsent ones still go out; consumers erase on users.user_erased.)"""
        o = users_outbox
        await self._session.execute(
            o.update()
            .where(o.c.sent_at.is_not(None), o.c.body["user_id"].astext == str(user_id))
            .values(body=func.jsonb_build_object("user_id", str(user_id), "erased", True))
        )

    async def forget_identities(self, user_id: UUID) -> None:
        await self._session.execute(identities.delete().where(identities.c.user_id == user_id))

    async def by_identity(self, provider: str, subject: str) -> User | None:
        """The account a provider identity (issuer's `sub`) is linked to."""
        linked = select(identities.c.user_id).where(identities.c.provider == provider, identities.c.subject == subject)
        row = (await self._session.execute(select(users).where(users.c.user_id.in_(linked)))).first()
        return self._to_user(row) if row else None

    async def link_identity(self, provider: str, subject: str, user_id: UUID, now: datetime) -> None:
        await self._session.execute(
            identities.insert().values(provider=provider, subject=subject, user_id=user_id, created_at=now)
        )

    def _to_row(self, user: User) -> dict[str, Any]:
        phone = self._cipher.seal(user.phone, USER_PHONE.context(user.user_id)) if user.phone else None
        address = (
            self._cipher.seal(user.address.model_dump_json(), USER_ADDRESS.context(user.user_id))
            if user.address
            else None
        )
        return {
            "user_id": user.user_id,
            "email": user.email,
            "username": user.username,
            "password_hash": user.password_hash,
            "role": user.role,
            "phone_enc": phone.ciphertext if phone else None,
            "phone_key_id": phone.key_id if phone else None,
            "address_enc": address.ciphertext if address else None,
            "address_key_id": address.key_id if address else None,
            "disabled_at": user.disabled_at,
            "erased_at": user.erased_at,
            "created_at": user.created_at,
            "updated_at": user.updated_at,
        }

    def _to_user(self, row: Any) -> User:
        phone = (
            self._cipher.open(Sealed(row.phone_enc, row.phone_key_id), USER_PHONE.context(row.user_id))
            if row.phone_enc
            else None
        )
        address = (
            Address.model_validate_json(
                self._cipher.open(Sealed(row.address_enc, row.address_key_id), USER_ADDRESS.context(row.user_id))
            )
            if row.address_enc
            else None
        )
        return User(
            user_id=row.user_id,
            email=row.email,
            username=row.username,
            role=row.role,
            password_hash=row.password_hash,
            phone=phone,
            address=address,
            created_at=row.created_at,
            updated_at=row.updated_at,
            disabled_at=row.disabled_at,
            erased_at=row.erased_at,
        )


async def remember_revocation(session: AsyncSession, revoked: TokensRevoked, *, keep_for: timedelta) -> None:
    """Keep a revocation while a token it voids can live (older ones go); verifiers load these."""
    t = token_revocations
    await session.execute(t.delete().where(t.c.not_before < revoked.not_before - keep_for))
    await session.execute(t.insert().values(**revoked.model_dump()))
