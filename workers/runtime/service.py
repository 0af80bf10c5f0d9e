"""WorkerService: the one place that turns a broker delivery into a handler call.

For every delivery it reads the envelope, validates the body against the contract,
verifies the actor, runs the handler in one transaction with the inbox claim and any
outbox rows, replies if asked, and then acks. What it does on failure:

- bad input (no message id, unparseable or invalid body, a card number anywhere in
  the body, missing or forged actor, a partner token whose scopes do not allow this
  command): reply with an error if a
  reply is expected, then reject → `<queue>.dlq` at once;
- a `DomainError`: the handler's writes are rolled back (the inbox claim stays), the
  error reply is sent, and the message is acked (it was handled);
- `RetryLater` (the handler expects a failure to pass, say a mail relay down): rolled
  back, and a copy goes to a delay queue that returns it to the work queue after
  about the time asked (contracts/topology.py); after `delivery_limit` such retries,
  or on `GiveUp`, the message is dead-lettered;
- any other failure is classified once, in workers/runtime/failures.py: a transient one
  (database or broker connection lost, serialization failure, deadlock, lock timeout)
  is nacked with requeue after a backoff, and the quorum queue's delivery limit
  dead-letters it if it keeps failing; a permanent one (a data, constraint or
  program-limit error in PostgreSQL, a validation error inside the handler) is answered
  and dead-lettered at once; an unexpected one (a bug, the handler's time limit) is tried
  once more through a delay queue, and dead-lettered if it fails again the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

from aio_pika.abc import AbstractIncomingMessage
from faststream import AckPolicy
from faststream.asgi import AsgiFastStream
from faststream.rabbit import RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.subscriber.usecase import RabbitSubscriber
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from pydantic import BaseModel, ValidationError

from contracts.base import Contract, secret_fields
from contracts.envelope import AUTHORIZATION, Envelope, EnvelopeError
from contracts.errors import ErrorReply, Reply, field_errors
from contracts.partners import scope_allows
from contracts.topology import (
    COMMANDS_EXCHANGE,
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTERED_AT_HEADER,
    DELAY_HEADER,
    DIRECT_REPLY_TO,
    EDGE_REPLY_QUEUE_PREFIX,
    EVENTS_EXCHANGE,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REDACTED_HEADER,
    RETRIES_HEADER,
    CommandSpec,
    EventSpec,
    broker_user,
    dead_letter_queue,
    delay_tier,
)
from contracts.users import GET_JWKS, GET_REVOCATIONS, GetJwks, GetRevocations, Revocations, TokensRevoked
from db.engine import make_engine, make_sessionmaker
from db.tables.every_schema import MESSAGING
from kernel.cards import contains_card_number
from kernel.logging import configure_logging, correlation_id_var, message_id_var
from kernel.redaction import redact_body, redact_headers
from kernel.revocations import RevocationFeed, RevocationList, RevocationsFetcher
from kernel.settings import Settings, get_settings
from kernel.tokens import LEEWAY_SECONDS, Actor, InvalidToken, JwksFetcher, TokenVerifier
from workers.runtime import outbox
from workers.runtime.broker import (
    DEFAULT_EXCHANGE,
    commands_exchange,
    dead_letter_exchange,
    declare_topology,
    delay_exchange,
    delete_retired_queues,
    events_exchange,
    make_broker,
    publish_direct,
    request,
    work_queue,
)
from workers.runtime.context import HandlerContext, unit
from workers.runtime.errors import DomainError, GiveUp, RetryLater
from workers.runtime.failures import classify
from workers.runtime.health import health_routes
from workers.runtime.identity import (
    IdentityUnavailable,
    ServiceIdentity,
    TokenSource,
    bus_token_source,
)
from workers.runtime.together import Together
from workers.runtime.transaction import Connections, Transaction, transaction

log = logging.getLogger("agora.worker")

DEAD_LETTERED = Counter("agora_dead_lettered_total", "Messages rejected to a dead-letter queue", ["queue", "reason"])
HANDLED = Counter("agora_handled_total", "Messages handled, by outcome", ["queue", "outcome"])
DELIVERY_SECONDS = Histogram(
    "agora_delivery_seconds", "From a delivery's arrival to its acknowledgement (or rejection)", ["queue"]
)
# Deliveries handled together (`WorkerService.command(many=...)`): per batch, whether it was
# handled together or fell back to one at a time, and how many deliveries it held.
BATCHES = Counter("agora_batches_total", "Batches of deliveries handled together, by outcome", ["queue", "outcome"])
BATCHED = Counter("agora_batched_deliveries_total", "Deliveries in batches, by outcome", ["queue", "outcome"])
# Alert when a dead-letter queue nears its bound (AGORA_DEAD_LETTER_MAX_LENGTH): past it
# the oldest dead letters are dropped (docs/operations.md).
DEAD_LETTER_DEPTH = Gauge(
    "agora_dead_letter_queue_depth", "Messages in a dead-letter queue", ["queue"], multiprocess_mode="max"
)
DEAD_LETTER_LIMIT = Gauge(
    "agora_dead_letter_queue_limit", "The most a dead-letter queue keeps", multiprocess_mode="max"
)

Handler = Callable[[Any, HandlerContext], Awaitable[BaseModel | None]]
# Commands that arrived together, each with its own context on one shared transaction:
# a result for each, in order (see `WorkerService.command`).
ManyHandler = Callable[[Sequence[tuple[Any, HandlerContext]]], Awaitable[Sequence[BaseModel | None]]]
# What handling a delivery came to: its reply (None: none to send) and the outbox rows it committed.
Outcome = tuple[Reply | None, list[outbox.Written]]
# One batch of a background job (a sweeper): does at most `limit` items in the unit of
# work it is given and says how many it did. It runs in every replica, so it claims its
# rows with SKIP LOCKED.
Batch = Callable[[HandlerContext, int], Awaitable[int]]

_EXCHANGES = {e.name: e for e in (commands_exchange, events_exchange)}
# Dead-letter reasons that mean someone may be probing: logged as security events.
_SECURITY_REASONS = frozenset({"missing_actor", "bad_actor", "scope_denied", "bad_reply_to", "wrong_publisher"})
# Refusals worth a security log line, by how loud: someone else's object is "not found".
_REFUSALS = {"forbidden": logging.WARNING, "not_found": logging.INFO}
# The fingerprint of an unexpected failure, carried by the retry: the same again is final.
FAILURE_HEADER = "agora-failure"


def one_after_another(handler: Handler, *, key: Callable[[Any], Any]) -> ManyHandler:
    """`handler` for each message of a batch in turn, on the batch's one transaction: for
    handlers whose messages each change rows of their own (a saga step of one order),
    where handling them together saves a transaction's bookkeeping per message (BEGIN
    with the inbox claim, COMMIT with the outbox rows).

    The messages go in the order of `key` (the row each changes first: an order's id),
    arrival order among equals: two batches, or a batch and a single delivery, then take
    those rows' locks in one order and never wait on each other in a circle. (A deadlock
    through other rows is still possible; PostgreSQL breaks it, and the batch that lost
    is handled one message at a time.)"""

    async def many(messages: Sequence[tuple[Any, HandlerContext]]) -> list[BaseModel | None]:
        results: dict[int, BaseModel | None] = {}
        for i in sorted(range(len(messages)), key=lambda i: key(messages[i][0])):
            payload, ctx = messages[i]
            results[i] = await handler(payload, ctx)
        return [results[i] for i in range(len(messages))]

    return many


class HandlerTimedOut(Exception):
    """A handler ran past AGORA_HANDLER_TIMEOUT_SECONDS; its transaction is rolled back."""


class _Refusal(Exception):
    """A handler's `DomainError` on its way out of the transaction, to roll it back."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class _Delivery:
    """A delivery read, validated and verified, waiting to be handled with others."""

    payload: Contract
    envelope: Envelope
    actor: Actor | None


class BadMessage(Exception):
    """Input no retry can fix: dead-letter it."""

    def __init__(self, reason: str, reply: ErrorReply) -> None:
        super().__init__(reply.detail)
        self.reason = reason
        self.reply = reply


def _gave_up(detail: str) -> BadMessage:
    return BadMessage("gave_up", ErrorReply(code="unavailable", detail=detail))


def reply_queue_allowed(reply_to: str) -> bool:
    """Replies go only to RabbitMQ's direct reply-to (partners, workers asking each other)
    or an edge's own reply queue: a `reply_to` naming any other queue (a dead-letter
    queue, another worker's work queue) would make this worker publish into it."""
    return reply_to.startswith((DIRECT_REPLY_TO, EDGE_REPLY_QUEUE_PREFIX))


class WorkerService:
    def __init__(
        self,
        name: str,
        *,
        jwks: JwksFetcher | None = None,
        revocations: RevocationsFetcher | None = None,
        on_startup: Sequence[Callable[[WorkerService], Awaitable[None]]] = (),
        on_shutdown: Sequence[Callable[[WorkerService], Awaitable[None]]] = (),
        settings: Settings | None = None,
        service_token: TokenSource | None = None,
    ) -> None:
        """`jwks` reads the public token-signing keys and `revocations` the token
        revocations in force (the users worker reads its own); by default both are
        asked of the users service over the bus.

        `service_token` mints this worker's service token itself (only the users
        worker, which holds the signing key, can); otherwise the token is asked for
        over the bus with credentials derived from AGORA_SERVICE_SECRET."""
        self.name = name
        self.settings = settings or get_settings()
        configure_logging(name, self.settings.log_level)
        self.broker: RabbitBroker = make_broker(self.settings, app_id=name, registry=REGISTRY)
        # At most `prefetch` handlers run at once in this process, whatever the number
        # of queues, and each can have a database connection without waiting.
        self._handler_slots = asyncio.Semaphore(self.settings.prefetch)
        self.engine = make_engine(
            self.settings.database_url, pool_size=self.settings.prefetch + 2, application_name=f"agora-{name}"
        )
        self.sessions = make_sessionmaker(self.engine)
        # Every handler slot's connection stays open between deliveries (see `Connections`).
        self.connections = Connections(self.engine, keep=self.settings.prefetch)
        self.outbox_table, self.inbox_table = MESSAGING[name]
        self.revocations = RevocationList(
            revocations or self._revocations_over_bus,
            window_seconds=self.settings.access_token_ttl_seconds + LEEWAY_SECONDS,
        )
        self._revocation_feed = RevocationFeed(self.settings.amqp_url, self.revocations)
        self.verifier = TokenVerifier(
            jwks or self._jwks_over_bus,
            issuer=self.settings.jwt_issuer,
            audience=self.settings.jwt_audience,
            max_age=self.settings.jwks_refresh_seconds,
            revocations=self.revocations,
        )
        if self.settings.env == "production" and not self.settings.service_secret:
            # Without it no worker gets a service token, and no saga step can be sent.
            raise RuntimeError("AGORA_SERVICE_SECRET must be set in production")
        if service_token is None and self.settings.service_secret:
            service_token = bus_token_source(self.broker, self.settings, name)
        self.identity = ServiceIdentity(name, service_token) if service_token is not None else None
        self.relay = outbox.OutboxRelay(
            service=name,
            engine=self.engine,
            outbox=self.outbox_table,
            publish=self._publish_outbox_row,
            poll_seconds=self.settings.outbox_poll_seconds,
        )
        self._queues: list[RabbitQueue] = []
        # Commands handled together when they arrive together, by queue (see `command`).
        self._together: dict[str, Together[_Delivery, Outcome | None]] = {}
        # Queries that read no table: handled without a transaction (see `command`).
        self._without_database: set[str] = set()
        # The broker user whose events each event queue takes (see `_publisher_checked`).
        self._publishers: dict[str, str] = {}
        self.broker_user = unquote(urlsplit(self.settings.amqp_url).username or "")
        self.consuming = False
        self._startup_hooks = list(on_startup)
        # Run after the last handler finished: release what handlers used (HTTP clients).
        self._shutdown_hooks = list(on_shutdown)
        self._relay_task: asyncio.Task[None] | None = None
        self._jobs: list[tuple[str, Batch, float, int]] = []
        self._job_tasks: list[asyncio.Task[None]] = []
        self._jobs_stopping = asyncio.Event()
        self.app = AsgiFastStream(
            self.broker,
            asgi_routes=health_routes(self),
            logger=logging.getLogger("faststream"),
            on_startup=[self._on_startup],
            after_startup=[self._after_startup],
            on_shutdown=[self._on_shutdown],
            after_shutdown=[self._after_shutdown],
        )

    # --- wiring -------------------------------------------------------------------------

    def command(
        self, spec: CommandSpec, handler: Handler, *, many: ManyHandler | None = None, database: bool = True
    ) -> None:
        """Consume `spec` from the commands exchange on its own queue.

        With `many`, deliveries that arrive together (up to the prefetch) are handled in
        one transaction: one inbox claim for them all, `many` called with each command
        and a context of its own (its envelope, actor and outbox rows) on that shared
        transaction, one COMMIT. `many` must decide exactly as `handler` would one
        command after another, and raise rather than refuse: if the batch fails in any
        way it is rolled back and each delivery is handled alone by `handler`, with every
        failure path of a single delivery. Worth it where commands contend for the same
        rows (a hot product's reservations take its row lock once per batch).

        With `database=False`, a query that reads no table (it asks an outside service)
        runs with no connection and no transaction (`ctx.transaction` is None): the
        BEGIN and COMMIT around it would be its only round trips.
        """
        if not database:
            if spec.kind != "query" or many is not None:
                raise ValueError(f"{spec.queue}: only a query handled alone can do without the database")
            self._without_database.add(spec.queue)
        self._subscribe(spec, handler, commands_exchange, spec.routing_key, many)

    def event(self, spec: EventSpec, handler: Handler, *, many: ManyHandler | None = None) -> None:
        """Consume another service's event on this service's own queue for it.

        The queue is `<this service>.on_<service>_<event>_v<N>`: each subscribing
        service gets every event once (and its replicas share that queue). The delivery
        is handled like a command that needs no actor and expects no reply: validated,
        deduplicated by the inbox, one transaction, dead-lettered if it is bad; `many`
        as for `command`.
        """
        subscription = CommandSpec(
            self.name,
            f"on_{spec.service}_{spec.name}",
            spec.version,
            spec.payload,
            None,
            summary=f"{self.name} reacts to {spec.routing_key}",
        )
        self._publishers[subscription.queue] = broker_user(spec.service)
        self._subscribe(subscription, handler, events_exchange, spec.routing_key, many)

    def background(self, name: str, batch: Batch, *, every: float, batch_size: int) -> None:
        """Every `every` seconds while this process consumes, run `batch` in a unit of work
        of its own, again and again while it does a full `batch_size` (a backlog), so
        one transaction never holds many rows.

        Every replica runs it, so a batch must be safe to run concurrently (claim rows
        with `FOR UPDATE SKIP LOCKED`). A failure is logged and the job runs again at
        its next turn; shutdown waits for a batch in progress, before the relay's last one.
        """
        self._jobs.append((name, batch, every, batch_size))

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[HandlerContext]:
        """Work outside a delivery (a start-up step, a background batch): one transaction,
        and the outbox rows it wrote published right after its commit, exactly as a
        delivery's are."""
        async with unit(self.connections, self.sessions, self.name, self.identity) as ctx:
            yield ctx
        if ctx.written and self.settings.outbox_relay:
            await self.relay.publish_written(ctx.written)

    async def ask(self, spec: CommandSpec, payload: Contract) -> Reply:
        """Ask another service a question as this service (its service token) and wait
        for the answer (for handlers that need one now, such as a recipient's address)."""
        if self.identity is None:
            raise IdentityUnavailable(f"{self.name} has no service identity (set AGORA_SERVICE_SECRET)")
        return await request(
            self.broker,
            spec,
            payload,
            within=self.settings.rpc_timeout_seconds,
            authorization=await self.identity.authorization(),
        )

    def _transaction(self) -> contextlib.AbstractAsyncContextManager[Transaction]:
        return transaction(self.connections, self.sessions, self.inbox_table, self.outbox_table)

    async def _measure_dead_letters(self) -> None:
        """How full each of this worker's dead-letter queues is (a passive declare counts)."""
        DEAD_LETTER_LIMIT.set(self.settings.dead_letter_max_length)
        if not await self.broker.ping(timeout=2.0):
            return  # the broker is away: nothing to count, and not worth a traceback a second
        for queue in self._queues:
            name = dead_letter_queue(queue.name)
            # FastStream keeps the queue object it declared once: declare it again (passively)
            # for a fresh count.
            queue_object = await self.broker.declare_queue(RabbitQueue(name, declare=False))
            DEAD_LETTER_DEPTH.labels(name).set((await queue_object.declare()).message_count or 0)

    async def _every(self, name: str, every: float, turn: Callable[[], Awaitable[None]]) -> None:
        while not self._jobs_stopping.is_set():
            try:
                await turn()
            except Exception:
                log.exception("background job failed; it runs again at its next turn", extra={"job": name})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._jobs_stopping.wait(), timeout=every)

    async def _batches(self, batch: Batch, batch_size: int) -> None:
        """One turn of a background job: batches until one is not full (or we stop)."""
        while not self._jobs_stopping.is_set():
            async with self.unit_of_work() as ctx:
                done = await batch(ctx, batch_size)
            if done < batch_size:
                return

    def _subscribe(
        self,
        spec: CommandSpec,
        handler: Handler,
        exchange: RabbitExchange,
        routing_key: str,
        many: ManyHandler | None = None,
    ) -> None:
        queue = work_queue(spec.queue, self.settings, routing_key=routing_key)
        self._queues.append(queue)
        if many is not None:
            if spec.kind != "command":
                raise ValueError(f"{spec.queue}: only commands and events are handled together (they have an inbox)")
            self._together[spec.queue] = Together(
                functools.partial(self._execute_many, spec, many), limit=self.settings.prefetch
            )

        subscriber = self.broker.subscriber(
            queue, exchange, ack_policy=AckPolicy.MANUAL, no_reply=True, title=spec.queue, description=spec.summary
        )

        @subscriber
        async def consume(message: Any) -> None:
            """Registered for FastStream's lifecycle and the AsyncAPI document; deliveries
            reach `_deliver` instead (below)."""
            raise RuntimeError(f"{spec.queue}: deliveries go to WorkerService._deliver")

        # FastStream's own path for each message (its context scopes, middlewares and
        # dependency injection) cost about 9 % of a worker's CPU (py-spy, issue 14), for
        # nothing the runtime uses: it validates, acknowledges, logs and counts each
        # delivery itself. The subscriber's start() hands aio-pika its `consume`; this one
        # does what FastStream's does around the handler (see `_deliver`) and no more.
        subscriber.consume = functools.partial(self._deliver, subscriber, spec, handler)  # type: ignore[method-assign]

    # --- lifecycle ----------------------------------------------------------------------

    async def _on_startup(self) -> None:
        # uvicorn installed its own plain-text log handlers after our import-time
        # set-up; take them back so every line from here on is JSON.
        configure_logging(self.name, self.settings.log_level)
        # Everything that can fail is declared here, in the start-up hook: FastStream's
        # ASGI app reports "started" to uvicorn *before* it starts the subscribers, so
        # a failure there would leave a process that serves /healthz but consumes
        # nothing. A failure here makes the process exit. Dead-letter queues must also
        # exist before the first consumer can reject into them.
        await self.broker.connect()
        await declare_topology(self.broker, self._queues)
        await delete_retired_queues(self.broker, self.name, self.settings)
        for hook in self._startup_hooks:
            await hook(self)
        await self._revocation_feed.start()

    async def _after_startup(self) -> None:
        self.consuming = True
        self._job_tasks = [
            asyncio.create_task(
                self._every(name, every, functools.partial(self._batches, batch, size)), name=f"{self.name}-{name}"
            )
            for name, batch, every, size in self._jobs
        ]
        self._job_tasks.append(
            asyncio.create_task(
                self._every("dead-letter-depth", self.settings.dead_letter_scan_seconds, self._measure_dead_letters),
                name=f"{self.name}-dead-letter-depth",
            )
        )
        if not self.settings.outbox_relay:
            log.warning("outbox relay disabled (AGORA_OUTBOX_RELAY=false): events stay unsent here")
            return
        self._relay_task = asyncio.create_task(self.relay.run(), name=f"{self.name}-outbox-relay")

    async def _on_shutdown(self) -> None:
        # FastStream runs this hook *before* it stops the broker. Stop consuming here
        # and let in-flight handlers finish (each waits up to the graceful timeout),
        # so the relay's last batch carries the events they committed.
        self.consuming = False
        await asyncio.gather(*(sub.stop() for sub in self.broker.subscribers))
        self._jobs_stopping.set()
        if self._job_tasks:
            _, late = await asyncio.wait(self._job_tasks, timeout=self.settings.graceful_timeout_seconds)
            for task in late:  # its transaction rolls back; another replica or the next start redoes it
                task.cancel()
        self.relay.stop()
        if self._relay_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._relay_task, timeout=self.settings.graceful_timeout_seconds)
            try:
                await self.relay.flush_marks()
                await self.relay.publish_batch()
            except Exception:  # left for another replica or the next start: nothing is lost
                log.warning("final outbox batch not published", exc_info=True)

    async def _jwks_over_bus(self) -> dict[str, Any]:
        reply = await request(self.broker, GET_JWKS, GetJwks(), within=self.settings.rpc_timeout_seconds)
        if not reply.ok or reply.data is None:
            raise RuntimeError(f"the users service gave no keys: {reply.error}")
        return reply.data

    async def _revocations_over_bus(self) -> list[TokensRevoked]:
        reply = await request(self.broker, GET_REVOCATIONS, GetRevocations(), within=self.settings.rpc_timeout_seconds)
        if not reply.ok or reply.data is None:
            raise RuntimeError(f"the users service gave no revocations: {reply.error}")
        return list(Revocations.model_validate(reply.data).items)

    async def _after_shutdown(self) -> None:
        with contextlib.suppress(Exception):
            await self._revocation_feed.stop()
        for hook in self._shutdown_hooks:
            with contextlib.suppress(Exception):
                await hook(self)
        await self.close_database()

    async def close_database(self) -> None:
        """Close every database connection (the last thing a worker does)."""
        await self.connections.close()
        await self.engine.dispose()

    async def _publish_outbox_row(self, row: Any) -> None:
        headers = dict(row.headers)
        if row.exchange == COMMANDS_EXCHANGE:
            # Stamped now, not when the row was written: see workers/runtime/identity.py.
            if self.identity is None:
                raise IdentityUnavailable(f"{self.name} has no service identity (set AGORA_SERVICE_SECRET)")
            headers[AUTHORIZATION] = await self.identity.authorization()
        await publish_direct(
            self.broker,
            _EXCHANGES[row.exchange],
            row.routing_key,
            outbox.body_bytes(row),
            persist=True,
            mandatory=True,
            confirm_seconds=10,
            message_id=str(row.message_id),
            correlation_id=row.headers.get("correlation_id"),
            headers=headers,
            # RabbitMQ refuses a user_id that is not this connection's user: consumers
            # of the event can trust it names the service that published it.
            user_id=self.broker_user or None,
        )

    # --- one delivery -------------------------------------------------------------------

    async def _deliver(
        self, subscriber: RabbitSubscriber, spec: CommandSpec, handler: Handler, message: AbstractIncomingMessage
    ) -> None:
        """A delivery from aio-pika, taken as FastStream's own `consume` takes it: not once
        the subscriber is stopping (left unacknowledged, it goes back to the queue when
        the channel closes), and held in the subscriber's lock, which FastStream's
        graceful stop waits on."""
        if not subscriber.running:
            return
        started = time.perf_counter()
        try:
            with subscriber.lock:
                await self._consume(spec, handler, message)
        except Exception:  # settling it failed (the channel is gone): the broker delivers it again
            log.exception("delivery not settled", extra={"queue": spec.queue})
        finally:
            DELIVERY_SECONDS.labels(spec.queue).observe(time.perf_counter() - started)

    async def _consume(self, spec: CommandSpec, handler: Handler, message: AbstractIncomingMessage) -> None:
        envelope: Envelope | None = None
        try:
            envelope = self._envelope(message.headers or {}, message.message_id, message.correlation_id)
            correlation_id_var.set(envelope.correlation_id)
            message_id_var.set(str(envelope.message_id))
            self._publisher_checked(spec, message.exchange, message.user_id)
            if message.reply_to and not reply_queue_allowed(message.reply_to):
                raise BadMessage(
                    "bad_reply_to",
                    ErrorReply(code="validation_failed", detail="reply_to must be amq.rabbitmq.reply-to"),
                )
            payload = self._parse(spec, message.body)
            actor = await self._actor(spec, envelope)
            reply, written = await self._handle(spec, handler, _Delivery(payload, envelope, actor))
        except BadMessage as bad:
            await self._dead_letter(message, spec, bad, envelope)
            return
        except RetryLater as later:
            await self._delay(message, spec, later, envelope)
            return
        except GiveUp as gave_up:
            await self._dead_letter(message, spec, _gave_up(str(gave_up)), envelope)
            return
        except Exception as exc:
            # Every path must settle the delivery, or it would hold a prefetch slot forever.
            await self._failed(message, spec, exc, envelope)
            return
        if written and self.settings.outbox_relay:
            # Committed: publish what it wrote now, from memory (the relay sweeps up
            # whatever fails here, or what a crash right now would leave). Before the
            # reply: whoever is told "done" may count on the events being out (a demoted
            # admin's revocation reaches the edge before the demotion's 200 does).
            await self.relay.publish_written(written)
        if reply is not None:
            await self._reply(message, envelope, reply)
        HANDLED.labels(spec.queue, "ok" if reply is None or reply.ok else "domain_error").inc()
        await message.ack()

    async def _failed(
        self, message: AbstractIncomingMessage, spec: CommandSpec, exc: Exception, envelope: Envelope | None
    ) -> None:
        failure = classify(exc)
        if failure.kind == "transient":
            await self._retry_later(message, spec)
            return
        seen_before = (message.headers or {}).get(FAILURE_HEADER) == failure.fingerprint
        if failure.kind == "permanent" or seen_before:
            log.error(
                "handling failed and no retry can help",
                exc_info=exc,
                extra={"queue": spec.queue, "reason": failure.reason},
            )
            HANDLED.labels(spec.queue, "failed").inc()
            await self._dead_letter(message, spec, BadMessage(failure.reason, failure.reply), envelope)
            return
        log.error("handling failed unexpectedly; trying once more", exc_info=exc, extra={"queue": spec.queue})
        later = RetryLater("unexpected failure", after=1)
        await self._delay(message, spec, later, envelope, headers={FAILURE_HEADER: failure.fingerprint})

    async def _retry_later(self, message: AbstractIncomingMessage, spec: CommandSpec) -> None:
        """Requeue after a backoff. On the last delivery the queue's limit allows, the
        message is dead-lettered here instead (redacted), not by the broker (as it is)."""
        attempt = int(str((message.headers or {}).get("x-delivery-count") or 0))
        if attempt >= self.settings.delivery_limit:
            await self._dead_letter(message, spec, _gave_up(f"still failing after {attempt + 1} deliveries"))
            return
        log.exception("handling failed; will be redelivered", extra={"queue": spec.queue, "attempt": attempt})
        HANDLED.labels(spec.queue, "retry").inc()
        await self._requeue(message, attempt)

    async def _copy(
        self,
        message: AbstractIncomingMessage,
        exchange: RabbitExchange,
        queue: str,
        *,
        body: bytes,
        headers: dict[str, Any],
    ) -> None:
        """A copy of this delivery to `exchange` under its queue's name (a delayed retry, a
        redacted dead letter): persistent, confirmed, and an error if nothing took it."""
        await self.broker.publish(
            body,
            exchange=exchange,
            routing_key=queue,
            persist=True,
            mandatory=True,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            reply_to=message.reply_to,
            headers=headers,
            content_type=message.content_type,
            timeout=10,
        )

    async def _requeue(self, message: AbstractIncomingMessage, attempt: int) -> None:
        await asyncio.sleep(min(0.2 * 2**attempt, self.settings.retry_backoff_cap_seconds))
        await message.nack(requeue=True)

    async def _delay(
        self,
        message: AbstractIncomingMessage,
        spec: CommandSpec,
        later: RetryLater,
        envelope: Envelope | None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Handle the message again later: a copy waits in a delay queue, this one is acked.

        Publish first, then ack: a crash in between leaves both, and the handler's own
        idempotency (the inbox, its records) makes the second a no-op.
        """
        # The broker's own headers (x-death, x-delivery-count) describe this hop only.
        kept = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
        retries = int(str(kept.get(RETRIES_HEADER) or 0)) + 1
        if retries > self.settings.delivery_limit:
            await self._dead_letter(message, spec, _gave_up(f"still failing after {retries - 1} retries"), envelope)
            return
        tier = delay_tier(later.after)
        try:
            await self._copy(
                message,
                delay_exchange,
                spec.queue,
                body=message.body,
                headers={**kept, **(headers or {}), RETRIES_HEADER: retries, DELAY_HEADER: str(tier)},
            )
        except Exception:
            await self._retry_later(message, spec)  # the broker is struggling: plain redelivery
            return
        log.info(
            "handling deferred",
            extra={"queue": spec.queue, "reason": str(later), "retry": retries, "after_seconds": tier},
        )
        HANDLED.labels(spec.queue, "deferred").inc()
        await message.ack()

    def _publisher_checked(self, spec: CommandSpec, exchange: str | None, user_id: str | None) -> None:
        """An event straight from `agora.events` must carry its owning service's broker user
        as `user_id`, which RabbitMQ checks against the publishing connection: anyone else
        (a partner, a compromised edge) cannot make this worker act on a forged event.
        A delayed retry or a replayed dead letter comes back through `agora.retry`, which
        only Agora's own processes may write to."""
        expected = self._publishers.get(spec.queue)
        if expected is not None and exchange == EVENTS_EXCHANGE and user_id != expected:
            raise BadMessage(
                "wrong_publisher",
                ErrorReply(code="forbidden", detail=f"{spec.queue} takes events published by {expected} only"),
            )

    @staticmethod
    def _envelope(headers: dict[str, Any], message_id: str | None, correlation_id: str | None) -> Envelope:
        try:
            return Envelope.from_message(headers, message_id=message_id, correlation_id=correlation_id)
        except EnvelopeError as exc:
            raise BadMessage("bad_envelope", ErrorReply(code="validation_failed", detail=str(exc))) from exc

    def _parse(self, spec: CommandSpec, body: bytes) -> Contract:
        try:
            payload = spec.payload.model_validate_json(body)
        except ValidationError as exc:
            errors = field_errors(exc)
            detail = (
                "body is not valid JSON"
                if errors and errors[0].message.startswith("Invalid JSON")
                else "body failed validation"
            )
            raise BadMessage(
                "invalid_body", ErrorReply(code="validation_failed", detail=detail, errors=errors)
            ) from exc
        # Agora stores no card data: a body holding a card number is bad input from any
        # sender (a partner, a forged message), never retried. Valid JSON by now.
        if contains_card_number(json.loads(body)):
            raise BadMessage(
                "card_data",
                ErrorReply(code="validation_failed", detail="the body contains what looks like a card number"),
            )
        return payload

    async def _actor(self, spec: CommandSpec, envelope: Envelope) -> Actor | None:
        """The verified actor; None only for a command that needs none and carries none.

        A token that is present is verified even where no actor is required: a forged
        or expired one is refused, and a partner's scopes are enforced on every command.
        """
        token = (envelope.authorization or "").removeprefix("Bearer ").strip()
        if not token:
            if not spec.requires_actor:
                return None
            raise BadMessage("missing_actor", ErrorReply(code="unauthorized", detail="authorization header missing"))
        try:
            actor = await self.verifier.verify(token)
        except InvalidToken as exc:
            log.warning("security: rejected actor token", extra={"queue": spec.queue, "reason": str(exc)})
            raise BadMessage("bad_actor", ErrorReply(code="unauthorized", detail="invalid or expired token")) from exc
        # Partners are held to their scopes here, not only by their RabbitMQ topic
        # permissions: the broker is not trusted, and a token can travel.
        if actor.role == "partner" and not scope_allows(actor.scopes, spec.routing_key):
            log.warning(
                "security: partner token used outside its scopes",
                extra={"queue": spec.queue, "client_id": str(actor.user_id), "scopes": sorted(actor.scopes)},
            )
            raise BadMessage(
                "scope_denied", ErrorReply(code="forbidden", detail="the token's scopes do not allow this command")
            )
        return actor

    async def _handle(self, spec: CommandSpec, handler: Handler, delivery: _Delivery) -> Outcome:
        together = self._together.get(spec.queue)
        if together is not None:
            outcome = await together.submit(delivery)
            if outcome is not None:
                return outcome
        return await self._execute(spec, handler, delivery.payload, delivery.envelope, delivery.actor)

    async def _execute_many(
        self, spec: CommandSpec, many: ManyHandler, deliveries: list[_Delivery]
    ) -> list[Outcome | None]:
        """Deliveries of one queue in one transaction (see `command`); None for each if
        that failed: each is then handled alone. A delivery that came by itself goes the
        single way at once (its BEGIN and inbox claim are one round trip there, two here)."""
        if len(deliveries) == 1:
            return [None]
        try:
            outcomes = await self._run_many(spec, many, deliveries)
        except Exception as exc:
            # A refusal is the handler's to give, one command at a time; anything else is
            # worth a traceback (and is then met again, or not, by each command alone).
            refused = isinstance(exc, DomainError)
            log.log(
                logging.INFO if refused else logging.WARNING,
                "handling together failed; handling one by one",
                exc_info=not refused,
                extra={"queue": spec.queue, "count": len(deliveries), "reason": str(exc)},
            )
            BATCHES.labels(spec.queue, "alone").inc()
            BATCHED.labels(spec.queue, "alone").inc(len(deliveries))
            return [None] * len(deliveries)
        BATCHES.labels(spec.queue, "together").inc()
        BATCHED.labels(spec.queue, "together").inc(len(deliveries))
        return outcomes

    async def _run_many(
        self, spec: CommandSpec, many: ManyHandler, deliveries: list[_Delivery]
    ) -> list[Outcome | None]:
        async with self._handler_slots, self._transaction() as tx:
            claimed = await tx.begin_claims(spec.queue, [d.envelope.message_id for d in deliveries])
            first: dict[UUID, int] = {}  # a message delivered twice in one batch is handled once
            for i, delivery in enumerate(deliveries):
                if delivery.envelope.message_id in claimed:
                    first.setdefault(delivery.envelope.message_id, i)
            contexts = {
                i: HandlerContext(
                    transaction=tx, envelope=deliveries[i].envelope, actor=deliveries[i].actor, identity=self.identity
                )
                for i in first.values()
            }
            results: Sequence[BaseModel | None] = []
            if contexts:
                async with asyncio.timeout(self.settings.handler_timeout_seconds):
                    results = await many([(deliveries[i].payload, ctx) for i, ctx in contexts.items()])
                if len(results) != len(contexts):
                    raise RuntimeError(f"{spec.queue}: {len(results)} results for {len(contexts)} commands")
            await tx.commit([row for ctx in contexts.values() for row in ctx.written])
        outcomes: list[Outcome | None] = [(None, [])] * len(deliveries)  # duplicates: acked without a reply
        for (i, ctx), result in zip(contexts.items(), results, strict=True):  # lengths checked above
            data = result.model_dump(mode="json") if result is not None else None
            outcomes[i] = (Reply(ok=True, data=data), ctx.written)
        if len(contexts) < len(deliveries):
            log.info(
                "duplicate deliveries ignored", extra={"queue": spec.queue, "count": len(deliveries) - len(contexts)}
            )
        return outcomes

    async def _execute(
        self, spec: CommandSpec, handler: Handler, payload: Contract, envelope: Envelope, actor: Actor | None
    ) -> Outcome:
        """The handler in one transaction; its reply, and the outbox rows it committed.

        No savepoint around the handler (two round trips on every delivery): a refusal is
        rare, so it rolls back the whole transaction, inbox claim included, and the claim
        alone is then written in a transaction of its own, so a redelivery is still a
        no-op. A refusal that must leave a trace (`keep_changes`) commits instead.
        """
        if spec.queue in self._without_database:
            return await self._execute_without_database(spec, handler, payload, envelope, actor)
        claim = (spec.queue, envelope.message_id) if spec.kind == "command" else None
        async with self._handler_slots, self._transaction() as tx:
            if not await tx.begin(claim, one_snapshot=spec.kind == "query"):
                # Replies are not kept (they may hold personal data or tokens), so a
                # duplicate is acknowledged without one.
                log.info("duplicate delivery ignored", extra={"queue": spec.queue})
                return None, []
            ctx = HandlerContext(transaction=tx, envelope=envelope, actor=actor, identity=self.identity)
            try:
                result = await self._run_handler(spec, handler, payload, ctx)
            except _Refusal as refusal:  # roll everything back, then keep the inbox claim alone
                await tx.rollback()
                if claim is not None:
                    await tx.claim_alone(*claim)
                return self._answer(spec, actor, refusal.error, [])
            await tx.commit(ctx.written)
        # A refusal that keeps its writes: they are committed.
        return self._answer(spec, actor, result, ctx.written)

    def _answer(
        self,
        spec: CommandSpec,
        actor: Actor | None,
        result: BaseModel | DomainError | None,
        written: list[outbox.Written],
    ) -> Outcome:
        """The reply to a handler's result or refusal, with the outbox rows committed."""
        if isinstance(result, DomainError):
            self._log_refusal(spec, actor, result)
            return Reply(ok=False, error=result.reply), written
        data = result.model_dump(mode="json") if result is not None else None
        return Reply(ok=True, data=data), written

    async def _execute_without_database(
        self, spec: CommandSpec, handler: Handler, payload: Contract, envelope: Envelope, actor: Actor | None
    ) -> Outcome:
        """A query that reads no table (`command(..., database=False)`): its reply alone."""
        ctx = HandlerContext(transaction=None, envelope=envelope, actor=actor, identity=self.identity)
        async with self._handler_slots:
            try:
                result = await self._run_handler(spec, handler, payload, ctx)
            except _Refusal as refusal:
                result = refusal.error
        if ctx.written:
            raise RuntimeError(f"{spec.queue}: a query without the database cannot emit or send")
        return self._answer(spec, actor, result, [])

    async def _run_handler(
        self, spec: CommandSpec, handler: Handler, payload: Contract, ctx: HandlerContext
    ) -> BaseModel | DomainError | None:
        """The handler's result; a refusal that keeps its writes is returned, any other
        raised as `_Refusal` (so the transaction rolls back)."""
        limit = asyncio.timeout(self.settings.handler_timeout_seconds)
        try:
            async with limit:
                return await handler(payload, ctx)
        except TimeoutError:
            if not limit.expired():
                raise  # a timeout of the handler's own (a connection): transient
            raise HandlerTimedOut(f"{spec.queue}: over {self.settings.handler_timeout_seconds:g} s") from None
        except DomainError as err:
            if err.keep_changes:
                return err
            raise _Refusal(err) from None

    @staticmethod
    def _log_refusal(spec: CommandSpec, actor: Actor | None, err: DomainError) -> None:
        if actor is not None and err.reply.code in _REFUSALS:
            # An actor asking for what is not theirs (a 404 or 403 at the edge) may be
            # probing: one line each, as the edge logs its own refusals.
            log.log(
                _REFUSALS[err.reply.code],
                "security: refused",
                extra={"queue": spec.queue, "code": err.reply.code, "actor": str(actor.user_id), "role": actor.role},
            )

    async def _reply(self, message: AbstractIncomingMessage, envelope: Envelope, reply: Reply) -> None:
        reply_to = message.reply_to
        if not reply_to or not reply_queue_allowed(reply_to):
            return
        try:
            await publish_direct(
                self.broker,
                DEFAULT_EXCHANGE,
                reply_to,
                reply.model_dump_json().encode(),
                persist=False,
                # The caller's reply queue may be gone (it timed out, restarted):
                # a reply is best-effort, the state change is already committed.
                mandatory=False,
                confirm_seconds=5,
                correlation_id=envelope.correlation_id,
                headers={"causation_id": str(envelope.message_id)},
            )
        except Exception:
            log.warning("could not send reply", exc_info=True)

    async def _dead_letter(
        self, message: AbstractIncomingMessage, spec: CommandSpec, bad: BadMessage, envelope: Envelope | None = None
    ) -> None:
        log.warning(
            "security: message dead-lettered" if bad.reason in _SECURITY_REASONS else "message dead-lettered",
            extra={
                "queue": spec.queue,
                "reason": bad.reason,
                "detail": bad.reply.detail,
                "raw_message_id": message.message_id,
            },
        )
        DEAD_LETTERED.labels(spec.queue, bad.reason).inc()
        if envelope is not None:
            await self._reply(message, envelope, Reply(ok=False, error=bad.reply))
        headers = dict(message.headers or {})
        body = redact_body(message.body, secret_fields(spec.payload))
        if body == message.body and redact_headers(headers) == headers:
            await message.reject(requeue=False)  # the broker moves it, as it is, to `<queue>.dlq`
            return
        # A dead letter must not keep a password, a token or a card number: a redacted
        # copy goes to `<queue>.dlq` (confirmed), then the original is acknowledged.
        kept = {k: v for k, v in redact_headers(headers).items() if not k.startswith("x-")}
        try:
            await self._copy(
                message,
                dead_letter_exchange,
                spec.queue,
                body=body,
                headers={
                    **kept,
                    DEAD_LETTER_REASON_HEADER: bad.reason,
                    REDACTED_HEADER: True,
                    # What the broker's x-death would have said, for the dead-letter tools.
                    ORIGINAL_EXCHANGE_HEADER: message.exchange or "",
                    ORIGINAL_ROUTING_KEY_HEADER: message.routing_key or "",
                    DEAD_LETTERED_AT_HEADER: datetime.now(UTC).isoformat(),
                },
            )
        except Exception:
            log.warning("could not dead-letter a redacted copy; trying again", exc_info=True)
            await self._requeue(message, int(str(headers.get("x-delivery-count") or 0)))
            return
        await message.ack()
