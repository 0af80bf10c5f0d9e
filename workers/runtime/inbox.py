"""Inbox deduplication: a redelivered message becomes a no-op (architecture §3).

The row is inserted in the handler's own transaction, so "processed" and "its effects
committed" are one fact. Two concurrent deliveries of one message serialize on the
primary key: the second waits for the first to commit, then sees the conflict.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from db.writes import insert_if_new


async def claim(session: AsyncSession, inbox: Table, consumer: str, message_id: UUID) -> bool:
    """True if this consumer has not processed this message before."""
    return await insert_if_new(session, inbox, {"consumer": consumer, "message_id": message_id})
