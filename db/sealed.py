"""Every encrypted column in every schema, and re-encrypting them under a new data key.

Each sealed value is bound (AES-GCM associated data) to a context naming its column
and row; the contexts are made here so that the code that writes a value and the
rotation that rewrites it cannot disagree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables.orders import customers, orders
from db.tables.users import signing_keys, users
from kernel.crypto import FieldCipher, Sealed

log = logging.getLogger("agora.datakeys")

_BATCH = 500


@dataclass(frozen=True)
class SealedColumn:
    table: Table
    key: str  # the row's primary key column
    value: str  # the ciphertext column
    key_id: str  # the column naming the data key that sealed it
    purpose: str

    def context(self, row_key: Any) -> str:
        return f"{self.purpose}:{row_key}"


USER_PHONE = SealedColumn(users, "user_id", "phone_enc", "phone_key_id", "users.phone")
USER_ADDRESS = SealedColumn(users, "user_id", "address_enc", "address_key_id", "users.address")
SIGNING_KEY = SealedColumn(signing_keys, "kid", "private_key_enc", "private_key_key_id", "signing_key")
ORDER_ADDRESS = SealedColumn(
    orders, "order_id", "shipping_address_enc", "shipping_address_key_id", "orders.shipping_address"
)

ORDER_CUSTOMER = SealedColumn(orders, "order_id", "customer_enc", "customer_key_id", "orders.customer")
CUSTOMER_EMAIL = SealedColumn(customers, "user_id", "email_enc", "email_key_id", "orders.customer_email")

SEALED_COLUMNS = (USER_PHONE, USER_ADDRESS, SIGNING_KEY, ORDER_ADDRESS, ORDER_CUSTOMER, CUSTOMER_EMAIL)


async def reseal_all(engine: AsyncEngine, cipher: FieldCipher) -> dict[str, int]:
    """Re-encrypt every value not sealed with the current key; returns counts per column.

    Batches of rows are locked `SKIP LOCKED` and rewritten in their own transaction,
    so a running platform keeps working and a second run (or an interrupted one)
    simply carries on with what is left.
    """
    counts: dict[str, int] = {}
    for column in SEALED_COLUMNS:
        t = column.table
        key, value, key_id = t.c[column.key], t.c[column.value], t.c[column.key_id]
        done = 0
        while True:
            async with engine.begin() as conn:
                rows = (
                    await conn.execute(
                        select(key, value, key_id)
                        .where(value.is_not(None), key_id != cipher.current_key_id)
                        .limit(_BATCH)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
                for row_key, ciphertext, old_kid in rows:
                    plaintext = cipher.open(Sealed(ciphertext, old_kid), column.context(row_key))
                    sealed = cipher.seal(plaintext, column.context(row_key))
                    await conn.execute(
                        update(t).where(key == row_key).values({value: sealed.ciphertext, key_id: sealed.key_id})
                    )
            done += len(rows)
            if len(rows) < _BATCH:
                break
        counts[f"{t.schema}.{t.name}.{column.value}"] = done
    return counts


async def still_sealed_under_old_keys(engine: AsyncEngine, cipher: FieldCipher) -> int:
    """Values not under the current key: rows another transaction held during `reseal_all`,
    or written meanwhile by a process not yet restarted with the new key id."""
    total = 0
    async with engine.connect() as conn:
        for column in SEALED_COLUMNS:
            t = column.table
            stale = t.c[column.value].is_not(None) & (t.c[column.key_id] != cipher.current_key_id)
            total += int(await conn.scalar(select(func.count()).select_from(t).where(stale)) or 0)
    return total
