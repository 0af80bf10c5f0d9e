"""Loading and saving users; phone and address are sealed (AES-256-GCM) on the way in."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agora.crypto import FieldCipher, Sealed
from contracts.users import Address
from db.tables import refresh_tokens, users
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
    ) -> None:
        """A refresh token: the first of a new family (a login) or the next of one."""
        await self._session.execute(
            refresh_tokens.insert().values(
                token_hash=token_hash,
                family_id=family_id or uuid4(),
                user_id=user_id,
                issued_at=issued_at,
                expires_at=expires_at,
            )
        )

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

    def _to_row(self, user: User) -> dict[str, Any]:
        phone = self._cipher.seal(user.phone, f"users.phone:{user.user_id}") if user.phone else None
        address = (
            self._cipher.seal(user.address.model_dump_json(), f"users.address:{user.user_id}") if user.address else None
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
            "created_at": user.created_at,
            "updated_at": user.updated_at,
        }

    def _to_user(self, row: Any) -> User:
        phone = (
            self._cipher.open(Sealed(row.phone_enc, row.phone_key_id), f"users.phone:{row.user_id}")
            if row.phone_enc
            else None
        )
        address = (
            Address.model_validate_json(
                self._cipher.open(Sealed(row.address_enc, row.address_key_id), f"users.address:{row.user_id}")
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
            disabled=row.disabled_at is not None,
        )
