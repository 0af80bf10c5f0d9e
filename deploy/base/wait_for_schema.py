"""Wait until the database schema is at the migration head this image ships.

Run as the init container of every worker pod (deploy/base/worker-pod.yaml): a pod of a
new version starts consuming only after the migration Job (`agora db upgrade`, jobs.yaml)
has brought the schema to the revision its code expects, while the old version's pods
keep serving. A schema at a revision this image does not know was migrated by a newer
version (a rollback): the pod starts, since migrations must keep the previous version
working anyway. It needs only the image itself: Alembic's scripts ship in the wheel.
"""

import asyncio
import sys
import time
from pathlib import Path

import asyncpg
from alembic.script import ScriptDirectory

import db
from db.engine import asyncpg_dsn
from kernel.settings import get_settings

POLL_SECONDS = 3.0


async def current_revisions(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn, timeout=5, server_settings={"application_name": "agora-wait-for-schema"})
    try:
        if await conn.fetchval("SELECT to_regclass('public.alembic_version')") is None:
            return set()
        return {row["version_num"] for row in await conn.fetch("SELECT version_num FROM public.alembic_version")}
    finally:
        await conn.close()


def main() -> int:
    scripts = ScriptDirectory(str(Path(db.__file__).parent / "migrations"))
    heads = set(scripts.get_heads())
    known = {revision.revision for revision in scripts.walk_revisions()}
    dsn = asyncpg_dsn(get_settings().database_url)
    started = time.monotonic()
    while True:
        try:
            current = asyncio.run(current_revisions(dsn))
        except (OSError, asyncpg.PostgresError) as exc:
            print(f"database not reachable yet: {type(exc).__name__}", flush=True)
            current = set()
        if current == heads:
            print(f"schema at {sorted(heads)}: starting", flush=True)
            return 0
        if current and not current <= known:
            print(f"schema at {sorted(current)}, newer than this image's {sorted(heads)}: starting", flush=True)
            return 0
        waited = time.monotonic() - started
        print(f"schema at {sorted(current) or 'nothing'}, waiting for {sorted(heads)} ({waited:.0f} s)", flush=True)
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
