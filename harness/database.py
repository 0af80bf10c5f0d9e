"""A fresh database for a run: every service schema dropped, then migrated from nothing."""

from __future__ import annotations

import asyncio
import subprocess

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from db.tables.base import SCHEMAS
from harness.environment import ROOT, SLOT


def reset_database(env: dict[str, str]) -> None:
    """Drop every service schema of `env`'s database (creating a slot's database first)
    and run `agora db upgrade`, as an operator would."""

    async def drop() -> None:
        if SLOT:
            await create_database(env["AGORA_DATABASE_URL"])
        engine = create_async_engine(env["AGORA_DATABASE_URL"])
        async with engine.begin() as conn:
            for schema in SCHEMAS:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await conn.execute(text("DROP TABLE IF EXISTS public.alembic_version"))
        await engine.dispose()

    asyncio.run(drop())
    subprocess.run([str(ROOT / ".venv/bin/agora"), "db", "upgrade"], env=env, check=True, cwd=ROOT)


async def create_database(url: str) -> None:
    """A slot's own database (scripts/test creates only agora_test)."""
    name = make_url(url).database
    engine = create_async_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        if not await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
