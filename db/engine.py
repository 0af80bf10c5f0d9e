"""Async engine and session helpers (SQLAlchemy 2 + asyncpg)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from prometheus_client import Counter
from sqlalchemy import Connection, event, make_url
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
    """The libpq form of a SQLAlchemy URL, for a raw asyncpg connection. SQLAlchemy's
    several hosts (`/db?host=a:1&host=b:2`, scripts/pg-pair) become libpq's (`a:1,b:2/db`),
    the only form asyncpg reads."""
    parsed = make_url(url)
    query = dict(parsed.query)
    hosts = query.pop("host", None)
    if not hosts:
        return parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    netloc = ",".join([hosts] if isinstance(hosts, str) else hosts)
    credentials = quote(parsed.username or "", safe="") + (
        ":" + quote(parsed.password, safe="") if parsed.password is not None else ""
    )
    tail = f"?{urlencode(query, doseq=True)}" if query else ""
    return f"postgresql://{credentials}@{netloc}/{parsed.database or ''}{tail}"
