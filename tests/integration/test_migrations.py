"""The migrations build exactly the schema that `db/tables/` describes."""

from __future__ import annotations

import subprocess

from harness import environment
from harness.stack import Stack


def test_migrated_database_matches_the_table_definitions(stack: Stack) -> None:
    result = subprocess.run(
        [str(environment.ROOT / ".venv/bin/alembic"), "-c", "db/alembic.ini", "check"],
        env=stack.env,
        cwd=environment.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr
