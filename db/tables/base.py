"""What every service schema has: its name among `SCHEMAS`, and the same two messaging
tables (outbox and inbox, architecture §3) from `messaging_tables`."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID

SCHEMAS = ("users", "catalog", "inventory", "orders", "payments", "notifications")


def outbox_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes `schema`'s outbox relay."""
    return f"{schema}_outbox"


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    """The transactional outbox and the inbox of one service schema (architecture §3)."""
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("message_id", UUID(as_uuid=True), nullable=False, unique=True),
        Column("exchange", String(100), nullable=False),
        Column("routing_key", String(200), nullable=False),
        Column("headers", JSONB, nullable=False),
        Column("body", JSONB, nullable=False),
        # The time of the insert, not of its transaction's start (now()): a transaction
        # that waited on a provider must not write rows that look old enough for the
        # relay's sweep of leftovers the moment it commits.
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.clock_timestamp()),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        # A row the broker refused waits for its own retry instead of blocking the rest.
        Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("last_error", Text),
        Column("sent_at", DateTime(timezone=True)),
    )
    # The relay only ever looks at unsent rows; a partial index keeps that cheap as
    # the table of sent rows grows.
    Index("ix_outbox_unsent", outbox.c.id, postgresql_where=outbox.c.sent_at.is_(None))
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(200), primary_key=True),
        Column("message_id", UUID(as_uuid=True), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    return outbox, inbox
