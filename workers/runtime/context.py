"""What a handler gets besides its message (`HandlerContext`), and the one unit of work
every piece of work runs in: a delivery, a background job's batch, an operator's command.

A unit of work is one transaction: the handler's statements (`ctx.db` for prepared
statements, `ctx.session` for SQLAlchemy), and the events and commands it emits or
sends, written to its service's outbox with the COMMIT. Whoever runs the unit publishes
those rows afterwards: a worker at once, from memory (`WorkerService.unit_of_work`); an
operator's command leaves them to the service's relay, which picks up rows nobody
published within AGORA_OUTBOX_POLL_SECONDS.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.base import Contract
from contracts.envelope import Envelope
from contracts.topology import COMMANDS_EXCHANGE, EVENTS_EXCHANGE, CommandSpec, EventSpec
from db.engine import make_engine, make_sessionmaker
from db.tables.every_schema import MESSAGING
from kernel.settings import Settings
from kernel.tokens import Actor
from workers.runtime import outbox
from workers.runtime.errors import DomainError
from workers.runtime.identity import IdentityUnavailable, ServiceIdentity, service_scope
from workers.runtime.transaction import Connections, Transaction, transaction


@dataclass
class HandlerContext:
    """A handler's transaction, the envelope of what it handles, and who asked.

    `identity` is the service's own (it signs the commands `send` writes); a unit of
    work without one (an operator's command) may emit events but not send commands.
    `transaction` is None for a query registered with `database=False`.
    """

    transaction: Transaction | None
    envelope: Envelope
    actor: Actor | None
    identity: ServiceIdentity | None
    # False for a unit of work outside a delivery, whose envelope is its own and never
    # sent: what it emits then carries an envelope of its own, caused by nothing.
    delivered: bool = True
    # The outbox rows of this transaction, written with its COMMIT and published from
    # memory once it has committed.
    written: list[outbox.Written] = field(default_factory=list)

    @property
    def session(self) -> AsyncSession:
        """A SQLAlchemy session in this transaction."""
        return self._transaction().session

    @property
    def db(self) -> asyncpg.Connection:
        """This transaction's asyncpg connection, for statements compiled once (db/prepared.py)."""
        return self._transaction().db

    async def emit(self, spec: EventSpec, payload: Contract) -> None:
        """Record an event in the outbox, in this transaction (written at its end)."""
        self._enqueue(EVENTS_EXCHANGE, spec.routing_key, payload.model_dump(mode="json"))

    async def send(self, spec: CommandSpec, payload: Contract) -> None:
        """Record a command to another service in the outbox, in this transaction.

        It carries this worker's service identity: the relay adds the token when it
        publishes the row, so the token is fresh however long the row waited.
        """
        if self.identity is None:
            raise IdentityUnavailable("no service identity to send commands with (set AGORA_SERVICE_SECRET)")
        self._enqueue(COMMANDS_EXCHANGE, spec.routing_key, payload.model_dump(mode="json", exclude_unset=True))

    async def first_time(self, consumer: str, key: UUID) -> bool:
        """True if `consumer` has not seen `key` before, recorded in this transaction (the
        inbox table, as a delivery's claim is): for things that must happen once, such as
        an ID token signing in."""
        return await self._transaction().claim(consumer, key)

    def _transaction(self) -> Transaction:
        if self.transaction is None:
            raise RuntimeError("this handler was registered with database=False: it has no transaction")
        return self.transaction

    def _enqueue(self, exchange: str, routing_key: str, body: dict[str, Any]) -> None:
        # Caused by the message being handled, and correlated with what caused that.
        envelope = (
            Envelope.new(correlation_id=self.envelope.correlation_id, causation_id=str(self.envelope.message_id))
            if self.delivered
            else Envelope.new()
        )
        self.written.append(outbox.prepare(exchange=exchange, routing_key=routing_key, body=body, envelope=envelope))

    def require_actor(self) -> Actor:
        if self.actor is None:
            raise DomainError("unauthorized", "this command needs an authenticated actor")
        return self.actor

    def require_saga_actor(self, what: str) -> Actor:
        """For saga steps (reserve stock, move money): another Agora service, or an admin by hand."""
        actor = self.require_actor()
        if not may_take_saga_steps(actor.role):
            raise DomainError("forbidden", f"{what} are taken by Agora's services (or an admin)")
        return actor

    def require_service(self, *names: str) -> Actor:
        """For service-only queries: one of the named Agora services (its service token's scope)."""
        actor = self.require_actor()
        if actor.role != "service" or not any(service_scope(name) in actor.scopes for name in names):
            raise DomainError("forbidden", f"only Agora's {' or '.join(names)} service may ask this")
        return actor


def may_take_saga_steps(role: str) -> bool:
    return role in ("service", "admin")


@contextlib.asynccontextmanager
async def unit(
    connections: Connections,
    sessions: async_sessionmaker[AsyncSession],
    service: str,
    identity: ServiceIdentity | None,
) -> AsyncIterator[HandlerContext]:
    """One unit of work outside a delivery in `service`'s schema: committed with its
    outbox rows when the block ends, rolled back if it raises. (A delivery's own unit,
    with its inbox claim and refusals, is `WorkerService._execute`.)"""
    outbox_table, inbox_table = MESSAGING[service]
    async with transaction(connections, sessions, inbox_table, outbox_table) as tx:
        await tx.begin(None)
        ctx = HandlerContext(transaction=tx, envelope=Envelope.new(), actor=None, identity=identity, delivered=False)
        yield ctx
        await tx.commit(ctx.written)


@contextlib.asynccontextmanager
async def operator_unit_of_work(settings: Settings, service: str) -> AsyncIterator[HandlerContext]:
    """An operator's command (the first admin, a partner, bulk demo products) as one unit
    of work in `service`'s schema, on a connection of its own. Its events are published
    by the service's relay (see the module's docstring)."""
    engine = make_engine(settings.database_url, pool_size=1, application_name=f"agora-cli-{service}")
    try:
        async with unit(Connections(engine, keep=0), make_sessionmaker(engine), service, None) as ctx:
            yield ctx
    finally:
        await engine.dispose()
