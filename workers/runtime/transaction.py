"""The runtime's transactions, in as few round trips as PostgreSQL's protocol allows (issue 14).

A delivery's transaction used to cost BEGIN, the inbox claim, the handler's statements,
one INSERT per outbox row and COMMIT, each a round trip through SQLAlchemy. Here:

- BEGIN and the inbox claim go to the server as one simple-query message (whether the
  claim inserted its row is in the command status: `INSERT 0 1`, or `INSERT 0 0` for a
  message handled before);
- the handler's statements run through a SQLAlchemy session bound to the same
  connection, which is in SQLAlchemy's autocommit mode so that SQLAlchemy sends no
  BEGIN or COMMIT of its own: this module does;
- the transaction's outbox rows and COMMIT go as one more message.

The simple-query protocol takes no parameters, so the claim and the outbox rows are
written as SQL literals: the values are this runtime's own (queue and exchange names,
UUIDs, routing keys) and JSON it serialised itself, quoted by `literal`, which is the
whole of PostgreSQL's quoting rule when `standard_conforming_strings` is on (checked
once per connection: the default since PostgreSQL 9.1).

Whatever happens, a connection is given back outside any transaction: an open one is
rolled back, and a connection that cannot be (a handler cancelled in the middle of a
statement) is invalidated rather than reused. A clean one is kept for the next
transaction (`Connections`) rather than checked back into SQLAlchemy's pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from db.engine import BEGIN, END, STATEMENT
from workers.runtime.failures import causes
from workers.runtime.outbox import Written


class QuotingUnsafe(RuntimeError):
    """The server does not treat backslashes in string literals as plain characters."""


def literal(value: str) -> str:
    """`value` as a PostgreSQL string literal (with standard_conforming_strings on)."""
    if "\x00" in value:
        raise ValueError("a PostgreSQL string cannot hold a NUL character")
    return "'" + value.replace("'", "''") + "'"


def _jsonb(value: Any) -> str:
    return literal(json.dumps(value, separators=(",", ":"))) + "::jsonb"


def claim_sql(inbox: Table, consumer: str, message_id: UUID) -> str:
    values = f"({literal(consumer)}, {literal(str(message_id))})"
    return f"INSERT INTO {inbox.fullname} (consumer, message_id) VALUES {values} ON CONFLICT DO NOTHING"


def outbox_sql(outbox: Table, rows: list[Written]) -> str:
    values = ", ".join(
        f"({literal(str(r.message_id))}, {literal(r.exchange)}, {literal(r.routing_key)}, "
        f"{_jsonb(r.headers)}, {_jsonb(r.body)})"
        for r in rows
    )
    return f"INSERT INTO {outbox.fullname} (message_id, exchange, routing_key, headers, body) VALUES {values}"


class Transaction:
    """One transaction on one pooled connection: `db` is its asyncpg connection (for
    statements compiled once, db/prepared.py), `session` a SQLAlchemy session on the same
    connection, made the first time it is asked for."""

    def __init__(
        self,
        conn: AsyncConnection,
        raw: asyncpg.Connection,
        sessions: async_sessionmaker[AsyncSession],
        inbox: Table,
        outbox: Table,
    ) -> None:
        self.db = raw
        self._conn = conn
        self._sessions = sessions
        self._session: AsyncSession | None = None
        self._inbox = inbox
        self._outbox = outbox

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._sessions(bind=self._conn)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def begin(self, claim: tuple[str, UUID] | None, *, one_snapshot: bool = False) -> bool:
        """BEGIN, with the inbox claim of (consumer, message id) if given; False if that
        message was claimed before (the transaction is then rolled back).

        `one_snapshot`: every statement sees the database as the first one did (REPEATABLE
        READ), for a query whose answer is read in several statements: at READ COMMITTED a
        commit landing between two of them shows half of it (an order's refund refunded,
        its return, changed in the same commit, not yet)."""
        BEGIN.inc()
        begin = "BEGIN ISOLATION LEVEL REPEATABLE READ" if one_snapshot else "BEGIN"
        if claim is None:
            await self.db.execute(begin)
            return True
        status = await self.db.execute(f"{begin}; " + claim_sql(self._inbox, *claim))
        if status.endswith(" 1"):
            return True
        await self.rollback()
        return False

    async def begin_claims(self, consumer: str, message_ids: Sequence[UUID]) -> set[UUID]:
        """BEGIN, then the inbox claims of many messages in one statement (deliveries
        handled together): the ids claimed now; one claimed before is left out. Claimed
        in id order, so two such transactions never wait on each other in a circle."""
        BEGIN.inc()
        await self.db.execute("BEGIN")
        STATEMENT.inc()
        rows = await self.db.fetch(
            f"INSERT INTO {self._inbox.fullname} (consumer, message_id) "
            "SELECT $1, id FROM unnest($2::uuid[]) AS id ORDER BY id ON CONFLICT DO NOTHING RETURNING message_id",
            consumer,
            sorted(set(message_ids)),
        )
        return {row["message_id"] for row in rows}

    async def commit(self, written: list[Written]) -> None:
        """Write the outbox rows and COMMIT, in one message."""
        END.inc()
        await self.db.execute(f"{outbox_sql(self._outbox, written)}; COMMIT" if written else "COMMIT")

    async def rollback(self) -> None:
        END.inc()
        await self.db.execute("ROLLBACK")

    async def claim(self, consumer: str, message_id: UUID) -> bool:
        """The inbox claim inside this transaction: False if it was made before."""
        STATEMENT.inc()
        status: str = await self.db.execute(claim_sql(self._inbox, consumer, message_id))
        return status.endswith(" 1")

    async def claim_alone(self, consumer: str, message_id: UUID) -> None:
        """The inbox claim by itself (after a rollback): a statement is its own transaction."""
        STATEMENT.inc()
        await self.db.execute(claim_sql(self._inbox, consumer, message_id))


class Connections:
    """The runtime's connections, kept open and in autocommit mode between transactions.

    Checking a connection out of SQLAlchemy's pool and back in, switching it to autocommit
    and back, cost a worker more CPU than the round trips of a small transaction (a pool
    checkout, a reset, greenlet hops: 3-6 % of a worker's CPU at 16 orders in flight,
    py-spy). So a connection that ends a transaction clean is kept here for the next (at
    most `keep`; the rest go back to the pool). One that is not clean is not kept. One that
    died while kept (a database restart) is dropped when next taken if the client has
    seen it close; if not, it fails on its first statement, as a pooled one would with no
    pre-ping: a transient failure, retried, and that connection is dropped.
    """

    def __init__(self, engine: AsyncEngine, *, keep: int) -> None:
        self.engine = engine
        self._keep = keep
        self._idle: list[tuple[AsyncConnection, asyncpg.Connection]] = []

    async def take(self) -> tuple[AsyncConnection, asyncpg.Connection]:
        while self._idle:
            conn, raw = self._idle.pop()
            if not raw.is_closed():
                return conn, raw
            await conn.invalidate()  # the server ended it while it was kept, and we have seen it
            await conn.close()
        conn = await self.engine.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            return conn, await _driver_connection(conn)
        except BaseException:
            await conn.close()
            raise

    async def give_back(self, conn: AsyncConnection, raw: asyncpg.Connection, *, failed: bool = False) -> None:
        """Keep `conn` if it is clean and there is room; otherwise close it (back to the pool).

        `failed`: the transaction ended in an exception that may be the connection's own
        (`_connection_suspect`); it is dropped, so a retry does not meet it again."""
        if failed or raw.is_closed():  # the pool must not hand it out again either
            await conn.invalidate()
        elif len(self._idle) < self._keep and not (
            conn.invalidated or conn.in_transaction() or raw.is_in_transaction()
        ):
            self._idle.append((conn, raw))
            return
        await conn.close()

    async def close(self) -> None:
        """Give every kept connection back to the pool (before the engine is disposed),
        and keep none from now on."""
        self._keep = 0
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            with contextlib.suppress(Exception):
                await conn.close()


@contextlib.asynccontextmanager
async def transaction(
    connections: Connections, sessions: async_sessionmaker[AsyncSession], inbox: Table, outbox: Table
) -> AsyncIterator[Transaction]:
    """A connection in SQLAlchemy's autocommit mode; the caller begins and commits
    through the `Transaction`."""
    conn, raw = await connections.take()
    tx = Transaction(conn, raw, sessions, inbox, outbox)
    failed = False
    try:
        yield tx
    except BaseException as exc:
        failed = _connection_suspect(exc)
        raise
    finally:
        try:
            await tx.close()
        finally:
            try:
                await _leave_clean(conn, raw)
            finally:
                await connections.give_back(conn, raw, failed=failed)


async def _driver_connection(conn: AsyncConnection) -> asyncpg.Connection:
    raw: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection
    if raw.get_settings().standard_conforming_strings != "on":
        raise QuotingUnsafe("the runtime needs standard_conforming_strings = on")
    return raw


def _connection_suspect(exc: BaseException) -> bool:
    """Whether an exception may say the connection itself is broken: lost, ended by the
    server (SQLSTATE classes 08 and 57P), or out of step with the server (the server
    ended it while it was idle and its notice came before the socket closed: asyncpg
    then refuses the next statement with an `InternalClientError`), or cancelled in the
    middle of a statement. A refusal, a deadlock or a bad input leaves it as good as ever."""
    for cause in causes(exc):
        if isinstance(
            cause,
            asyncpg.InterfaceError
            | asyncpg.InternalClientError
            | asyncpg.PostgresConnectionError
            | OSError
            | asyncio.CancelledError
            | TimeoutError,
        ):
            return True
        if str(getattr(cause, "sqlstate", "")).startswith(("08", "57P")):
            return True
    return False


async def _leave_clean(conn: AsyncConnection, raw: asyncpg.Connection) -> None:
    """Roll back what is still open; a connection that cannot is not reused (and the
    error that got us here is the one that propagates)."""
    if raw.is_closed() or not raw.is_in_transaction():
        return
    END.inc()
    try:
        await raw.execute("ROLLBACK")
    except Exception:
        await conn.invalidate()
    except BaseException:
        await conn.invalidate()
        raise
