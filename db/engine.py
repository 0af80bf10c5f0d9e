"""Async engine and session helpers (SQLAlchemy 2 + asyncpg)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def make_engine(url: str, *, pool_size: int = 10, application_name: str = "agora") -> AsyncEngine:
    return create_async_engine(
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


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def asyncpg_dsn(url: str) -> str:
    """The plain libpq form of a SQLAlchemy URL, for a raw asyncpg connection (LISTEN)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)
