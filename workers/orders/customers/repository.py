"""The customers read model: each account's email (sealed) and username, from the users
service's events, so an order keeps who placed it without asking the users service on
the way (architecture §1).

Events may arrive out of order and more than once: a row keeps the time of the newest
event applied (`updated_at`) and an older username never overwrites a newer one; a
rename that overtakes its registration leaves a row without an email, which the
registration completes. Erasure deletes the row, and is final: an event about an erased
account that arrives late (the account is in `closed_accounts` as erased) writes nothing.

The row also keeps a blind index of the email (`email_index`: a keyed hash, see
`FieldCipher.blind_index`), so the dashboard finds a customer's orders by email without
opening every sealed address; `index_emails` fills it for rows sealed before it existed or
under a key that has since been rotated.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import case, exists, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.orders import OrderCustomer
from db.sealed import CUSTOMER_EMAIL
from db.tables.orders import closed_accounts, customers
from kernel.crypto import FieldCipher, Sealed


def known_customer(
    cipher: FieldCipher, user_id: UUID, email_enc: str | None, key_id: str | None, username: str | None
) -> OrderCustomer | None:
    """The customer a read-model row describes; None without a row, or before its email is known."""
    if email_enc is None or key_id is None or username is None:
        return None
    email = cipher.open(Sealed(email_enc, key_id), CUSTOMER_EMAIL.context(user_id))
    return OrderCustomer(email=email, name=username)


def normal_email(email: str) -> str:
    """What the blind index hashes: an email compared as people type it (case and spaces aside)."""
    return email.strip().casefold()


def email_indexes(cipher: FieldCipher, email: str) -> list[str]:
    """The digests an email's row may carry, one per configured data key."""
    return cipher.blind_indexes(normal_email(email), CUSTOMER_EMAIL.purpose)


class CustomerRepository:
    def __init__(self, session: AsyncSession, cipher: FieldCipher) -> None:
        self._session = session
        self._cipher = cipher

    async def registered(self, user_id: UUID, email: str, username: str, at: datetime) -> None:
        sealed = self._cipher.seal(email, CUSTOMER_EMAIL.context(user_id))
        index = self._cipher.blind_index(normal_email(email), CUSTOMER_EMAIL.purpose)
        c = customers.c
        await self._upsert(
            {
                "user_id": user_id,
                "email_enc": sealed.ciphertext,
                "email_key_id": sealed.key_id,
                "email_index": index.ciphertext,
                "email_index_key_id": index.key_id,
                "username": username,
            },
            at,
            lambda new: {
                "email_enc": new.email_enc,
                "email_key_id": new.email_key_id,
                "email_index": new.email_index,
                "email_index_key_id": new.email_index_key_id,
                "username": case((c.updated_at <= new.updated_at, new.username), else_=c.username),
                "updated_at": func.greatest(c.updated_at, new.updated_at),
            },
        )

    async def renamed(self, user_id: UUID, username: str, at: datetime) -> None:
        await self._upsert(
            {
                "user_id": user_id,
                "email_enc": None,
                "email_key_id": None,
                "email_index": None,
                "email_index_key_id": None,
                "username": username,
            },
            at,
            lambda new: {"username": new.username, "updated_at": new.updated_at},
            newer_only=True,
        )

    async def forget(self, user_id: UUID) -> None:
        await self._session.execute(customers.delete().where(customers.c.user_id == user_id))

    async def get(self, user_id: UUID) -> OrderCustomer | None:
        row = (await self._session.execute(select(customers).where(customers.c.user_id == user_id))).first()
        if row is None:
            return None
        return known_customer(self._cipher, user_id, row.email_enc, row.email_key_id, row.username)

    async def index_emails(self, limit: int) -> int:
        """Index up to `limit` emails not indexed under the current key (rows another replica
        holds are skipped); how many."""
        c = customers.c
        current = self._cipher.current_key_id
        rows = await self._session.execute(
            select(c.user_id, c.email_enc, c.email_key_id)
            .where(
                c.email_enc.is_not(None),
                or_(c.email_index.is_(None), c.email_index_key_id != current),
            )
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        count = 0
        for row in rows:
            email = self._cipher.open(Sealed(row.email_enc, row.email_key_id), CUSTOMER_EMAIL.context(row.user_id))
            index = self._cipher.blind_index(normal_email(email), CUSTOMER_EMAIL.purpose)
            await self._session.execute(
                update(customers)
                .where(c.user_id == row.user_id)
                .values(email_index=index.ciphertext, email_index_key_id=index.key_id)
            )
            count += 1
        return count

    async def _upsert(
        self,
        values: dict[str, Any],
        at: datetime,
        changes: Callable[[Any], dict[str, Any]],
        *,
        newer_only: bool = False,
    ) -> None:
        """Insert the row, or set what `changes` makes of the row offered (`excluded`); nothing
        for an erased account."""
        erased = exists().where(closed_accounts.c.user_id == values["user_id"], closed_accounts.c.reason == "erased")
        columns = {**values, "updated_at": at}
        rows = select(*(literal(v, type_=customers.c[k].type).label(k) for k, v in columns.items())).where(~erased)
        statement = insert(customers).from_select(list(columns), rows)
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[customers.c.user_id],
                set_=changes(statement.excluded),
                where=customers.c.updated_at <= statement.excluded.updated_at if newer_only else None,
            )
        )
