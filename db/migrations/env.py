"""Alembic environment: async engine from AGORA_DATABASE_URL, all service schemas."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from db.engine import make_engine
from db.tables.base import SCHEMAS
from db.tables.every_schema import ALL_METADATA
from kernel.settings import get_settings

target_metadata = list(ALL_METADATA)


def _ours(name: str | None, type_: str, parent_names: object) -> bool:
    # Only the service schemas are Agora's; alembic's own version table lives in public.
    return type_ != "schema" or name in SCHEMAS


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_schemas=True,
        include_name=_ours,
        version_table_schema="public",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    url = context.config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = make_engine(url, pool_size=1, application_name="agora-migrate")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


asyncio.run(_main())
