"""Write patterns every service uses, written once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_if_new(session: AsyncSession, table: Table, values: dict[str, Any]) -> bool:
    """Insert the row unless one with its primary key exists; True if this call inserted it.

    Two transactions inserting the same key serialize on it: the second waits for the
    first to commit, then gets False. That is what makes "first one wins" safe for
    claims (the inbox), idempotent creates and one-row-per-order records.
    """
    key = next(iter(table.primary_key.columns))
    result = await session.execute(insert(table).values(**values).on_conflict_do_nothing().returning(key))
    return result.first() is not None
