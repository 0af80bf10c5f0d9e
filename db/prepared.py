"""SQLAlchemy Core statements compiled once and run straight on asyncpg (issue 14).

On the hot path (a saga step, a reservation, a payment) a statement run through an
`AsyncSession` costs about 100-250 µs of CPU in SQLAlchemy's plumbing (coercion, cache
key, greenlet hops, result processing); the same SQL on asyncpg, which prepares and
caches it per connection, costs about 40 µs. So the statement is still written with
SQLAlchemy against the tables in db/tables/, compiled here once at import, and run on
the transaction's asyncpg connection (`ctx.db`).

Rows come back as asyncpg records: `row["column"]`. JSON and JSONB go in and come out as
Python values (serialised here; SQLAlchemy's asyncpg dialect installs the decoders on
every pooled connection). A statement must not need SQLAlchemy at run time: no expanding `IN`
(use `= ANY(:ids)` with a list), no Python-side defaults.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
from sqlalchemy import JSON, Table, bindparam
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.expression import ClauseElement

from db.engine import STATEMENT

_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]


class Prepared:
    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        self._names: Sequence[str] = compiled.positiontup or ()
        # Values SQLAlchemy bound from literals in the statement, and what the caller must give.
        self._fixed = {name: value for name, value in compiled.params.items() if not compiled.binds[name].required}
        self._required = frozenset(name for name in self._names if compiled.binds[name].required)
        # JSON parameters go to the connection's codec as text, as SQLAlchemy's own would.
        self._json = frozenset(name for name in self._names if isinstance(compiled.binds[name].type, JSON))

    def _args(self, params: dict[str, Any]) -> list[Any]:
        missing = self._required - params.keys()
        if missing:
            raise TypeError(f"missing parameters {sorted(missing)} for: {self.sql}")
        merged = {**self._fixed, **params}
        return [json.dumps(merged[name]) if name in self._json else merged[name] for name in self._names]

    async def fetch(self, conn: asyncpg.Connection, **params: Any) -> list[asyncpg.Record]:
        STATEMENT.inc()
        rows: list[asyncpg.Record] = await conn.fetch(self.sql, *self._args(params))
        return rows

    async def fetchrow(self, conn: asyncpg.Connection, **params: Any) -> asyncpg.Record | None:
        STATEMENT.inc()
        row: asyncpg.Record | None = await conn.fetchrow(self.sql, *self._args(params))
        return row

    async def execute(self, conn: asyncpg.Connection, **params: Any) -> str:
        """Run it; the command status (`UPDATE 1`)."""
        STATEMENT.inc()
        status: str = await conn.execute(self.sql, *self._args(params))
        return status

    async def executemany(self, conn: asyncpg.Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Run it once per row of parameters, pipelined (one round trip); no results."""
        if rows:
            STATEMENT.inc()
            await conn.executemany(self.sql, [self._args(params) for params in rows])


def json_value(value: Any) -> Any:
    """A JSON or JSONB column's value: as the pooled connection's codec decoded it, or
    decoded here when it came as text (a connection without the codec)."""
    return json.loads(value) if isinstance(value, str) else value


def bind_columns(table: Table, names: Iterable[str], prefix: str) -> dict[str, BindParameter[Any]]:
    """`{column: :prefix_column}` for a statement's values(): the parameters are named apart
    from the columns, which a compiled INSERT or UPDATE needs when it also binds a value
    for the WHERE clause or reads the column in an expression."""
    return {name: bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in names}
