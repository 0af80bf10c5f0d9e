"""Async engine and session helpers (SQLAlchemy 2 + asyncpg)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

# What scripts/bench divides by the orders: every statement is a round trip (an
# executemany is one pipelined batch), and so are BEGIN and COMMIT or ROLLBACK.
ROUND_TRIPS = Counter("agora_db_round_trips_total", "Round trips to PostgreSQL, by kind", ["kind"])
STATEMENT, BEGIN, END = (ROUND_TRIPS.labels(kind) for kind in ("statement", "begin", "end"))


def count_round_trips(engine: AsyncEngine) -> None:
    """Count the engine's round trips in `agora_db_round_trips_total`. (The asyncpg
    dialect sends BEGIN with a transaction's first statement, so a transaction that
    ran none is counted but cost nothing: there are none on the hot path.)"""

    def statement(*_: Any) -> None:
        STATEMENT.inc()

    # On a connection in autocommit mode (workers/runtime/transaction.py sends its own
    # BEGIN and COMMIT, and counts them) SQLAlchemy's begin and commit send nothing.
    def begin(conn: Connection) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            BEGIN.inc()

    def end(conn: Connection) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            END.inc()

    sync = engine.sync_engine
    event.listen(sync, "before_cursor_execute", statement)
    event.listen(sync, "begin", begin)
    event.listen(sync, "commit", end)
    event.listen(sync, "rollback", end)


def make_engine(url: str, *, pool_size: int = 10, application_name: str = "agora") -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=4,
        # No `SELECT 1` before every checkout (a round trip per delivery): a connection
        # that died (a database restart) fails on use, SQLAlchemy drops the pool's stale
        # connections, and the runtime retries that delivery as a transient failure.
        pool_pre_ping=False,
        # Error messages must not carry bound values: they are emails, hashes, ciphertexts.
        hide_parameters=True,
        connect_args={"server_settings": {"application_name": application_name}},
    )
    count_round_trips(engine)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def asyncpg_dsn(url: str) -> str:
    """The plain libpq form of a SQLAlchemy URL, for a raw asyncpg connection (LISTEN)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)
