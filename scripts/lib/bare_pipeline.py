"""A bare order pipeline of the same shape as Agora's, for scripts/bench to measure against.

No framework: aiohttp for HTTP, aio-pika for RabbitMQ, asyncpg for PostgreSQL, pyjwt
for tokens, JSON checked by hand. One role per process, like Agora's edge and workers:

    python -m scripts.lib.bare_pipeline {edge,orders,inventory,payments} --port N

Each serves GET /readyz on its port (the edge also POST /api/orders) once it consumes.
Configured by BARE_AMQP_URL, BARE_DATABASE_URL (libpq form), BARE_PAYMENT_API_URL,
BARE_PAYMENT_API_KEY (the sandbox speaks Stripe's API and checks the key),
BARE_PUBLIC_KEY (the Ed25519 key that verifies every token, PEM), BARE_SERVICE_TOKEN
(what the relays put on commands) and BARE_PREFETCH (16, as AGORA_PREFETCH). Its
tables are in schema `bench_bare` (`create_schema`, `drop_schema`); its exchanges and
queues are named `bare.*` (quorum queues with the arguments of workers/runtime/broker.py).

The shape, for one order that succeeds (issue 14's, as Agora's now). Each numbered step is
one delivery handled in one transaction, which also inserts the inbox row
(workers/runtime/transaction.py) and, in one statement just before the commit, the outbox
rows; right after the commit the process publishes those rows from memory (their
confirms awaited together), and its relay marks them sent in bulk once a second and
publishes leftovers (workers/runtime/outbox.py). Agora's handlers are in
workers/orders/orders/handlers.py (and saga.py), workers/inventory/handlers.py and
workers/payments/handlers.py.

    0. edge: verify the bearer token, validate the body; RPC
       payments.check_payment_token.v1 (issue 18: payments asks the provider, GET
       /v1/tokens/<token>, with no transaction; an unknown token is a 422); RPC
       orders.place_order.v1 (both persistent, confirmed), wait for the reply, answer 202
    1. orders, place_order (verifies the member's token): price from the product
       read model; order, lines, history; out: order_placed, reserve_stock; reply
    2. inventory, reserve_stock (verifies the service token): claim the reservation,
       `UPDATE stock ... WHERE available >= q` (marking the row changed), ledger row,
       reservation reserved; out: stock_reserved
    3. orders, on stock_reserved: saga row (step authorizing); out: authorize_payment
    4. payments, authorize_payment (verifies the service token): claim the payment,
       POST /v1/payment_intents to the sandbox provider, payment row, step row;
       out: payment_authorized
    5. orders, on payment_authorized: saga row (confirmed), history, the sales
       projection's rows; out: order_confirmed, commit_stock, capture_payment
       -- the order is confirmed: scripts/bench measures up to order_confirmed --
    6. inventory, commit_stock (verifies): reservation committed, stock (marked),
       ledger; out: reservation_committed
    7. payments, capture_payment (verifies): lock the payment, POST .../capture, payment
       row, step row; out: payment_captured
    8. orders, on reservation_committed: saga row
    9. orders, on payment_captured: saga row (done)

and, every 0.2 s in inventory, one transaction announces the products marked changed
since: one stock_changed each (workers/inventory/app.py).

Per order, in both: 9 handler commits; 10 messages published from memory after their
commit (order_placed and order_confirmed, which nobody consumes here, are kept by the
unrouted queue) plus two RPC requests and their replies; stock_changed at most once per
product per 0.2 s; 7 token verifications; 3 calls to the provider.

What the bare pipeline leaves out: the failure paths (a refused reservation or payment
leaves the order pending: no compensation, no deadlines, no sweepers, no dead-letter
queues), pydantic models and the card-number scan of every body, the encrypted shipping
address, optimistic version checks (the saga steps are conditional UPDATEs instead),
logs and metrics, and idempotent provider retries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aio_pika
import aiohttp
import asyncpg
import jwt
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SCHEMA = "bench_bare"
COMMANDS = "bare.commands"
EVENTS = "bare.events"
UNROUTED = "bare.unrouted"
ISSUER, AUDIENCE = "agora", "agora-api"
# Order ids from idempotency keys, as the edge makes them (edge/routes/orders.py).
ORDER_KEYS = uuid.UUID("6f1c2b9e-5a34-4c1e-9d2a-0e7b8f3c4d51")
# The arguments of Agora's work queues (workers/runtime/broker.py).
WORK_QUEUE: dict[str, Any] = {
    "x-queue-type": "quorum",
    "x-delivery-limit": 20,
    "x-dead-letter-exchange": "bare.dlx",
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
}
RELAY_BATCH = 100
RELAY_SECONDS = 1.0  # as AGORA_OUTBOX_POLL_SECONDS
ANNOUNCE_SECONDS = 0.2  # as workers/inventory/app.py

TABLES = f"""
CREATE SCHEMA {SCHEMA};
SET search_path TO {SCHEMA};
CREATE TABLE products (product_id uuid PRIMARY KEY, price_minor integer NOT NULL, currency text NOT NULL);
CREATE TABLE orders (
    order_id uuid PRIMARY KEY, user_id uuid NOT NULL, request_hash text NOT NULL, currency text NOT NULL,
    total_minor integer NOT NULL, shipping_address jsonb NOT NULL, payment_token text NOT NULL,
    status text NOT NULL, step text NOT NULL, reservation text NOT NULL, payment text NOT NULL,
    version integer NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE order_lines (
    order_id uuid NOT NULL REFERENCES orders, product_id uuid NOT NULL, quantity integer NOT NULL,
    unit_price_minor integer NOT NULL, PRIMARY KEY (order_id, product_id));
CREATE TABLE order_history (
    id bigserial PRIMARY KEY, order_id uuid NOT NULL REFERENCES orders, status text NOT NULL,
    at timestamptz NOT NULL DEFAULT now());
CREATE TABLE stock (
    product_id uuid PRIMARY KEY, available integer NOT NULL CHECK (available >= 0),
    reserved integer NOT NULL CHECK (reserved >= 0), change_unannounced text);
CREATE INDEX ON stock (product_id) WHERE change_unannounced IS NOT NULL;
CREATE TABLE sales (
    order_id uuid NOT NULL, product_id uuid NOT NULL, quantity integer NOT NULL, unit_price_minor integer NOT NULL,
    currency text NOT NULL, confirmed_at timestamptz NOT NULL, PRIMARY KEY (order_id, product_id));
CREATE TABLE reservations (order_id uuid PRIMARY KEY, status text NOT NULL, lines jsonb NOT NULL);
CREATE TABLE stock_ledger (
    id bigserial PRIMARY KEY, product_id uuid NOT NULL, kind text NOT NULL, quantity integer NOT NULL,
    order_id uuid NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE payments (
    order_id uuid PRIMARY KEY, status text NOT NULL, amount_minor integer NOT NULL, currency text NOT NULL,
    authorization_id text);
CREATE TABLE payment_steps (
    id bigserial PRIMARY KEY, order_id uuid NOT NULL, step text NOT NULL, outcome text NOT NULL,
    at timestamptz NOT NULL DEFAULT now());
""" + "".join(
    f"""
CREATE TABLE {service}_inbox (consumer text, message_id uuid, processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id));
CREATE TABLE {service}_outbox (
    id bigserial PRIMARY KEY, message_id uuid NOT NULL UNIQUE, exchange text NOT NULL, routing_key text NOT NULL,
    headers jsonb NOT NULL, body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at timestamptz);
CREATE INDEX ON {service}_outbox (id) WHERE sent_at IS NULL;
"""
    for service in ("orders", "inventory", "payments")
)


async def create_schema(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.execute(TABLES)
    finally:
        await conn.close()


async def drop_schema(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    finally:
        await conn.close()


@functools.cache
def public_key() -> Ed25519PublicKey:
    # Parsed once: parsing costs more than verifying (kernel/tokens.py keeps parsed keys too).
    key = serialization.load_pem_public_key(os.environ["BARE_PUBLIC_KEY"].encode())
    assert isinstance(key, Ed25519PublicKey)
    return key


def verify(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token.removeprefix("Bearer "),
        public_key(),
        algorithms=["EdDSA"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "sub", "iss", "aud"]},
    )
    return claims


async def open_channel() -> tuple[aio_pika.abc.AbstractRobustConnection, AbstractChannel]:
    """A connection and a confirming channel, with every exchange declared."""
    connection = await aio_pika.connect_robust(os.environ["BARE_AMQP_URL"])
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    await channel.set_qos(prefetch_count=int(os.environ.get("BARE_PREFETCH", "16")))
    await channel.declare_exchange(UNROUTED, aio_pika.ExchangeType.FANOUT, durable=True)
    unrouted = await channel.declare_queue(
        UNROUTED, durable=True, arguments={"x-queue-type": "quorum", "x-max-length": 100_000, "x-overflow": "drop-head"}
    )
    await unrouted.bind(UNROUTED)
    await channel.declare_exchange(COMMANDS, aio_pika.ExchangeType.TOPIC, durable=True)
    await channel.declare_exchange(
        EVENTS, aio_pika.ExchangeType.TOPIC, durable=True, arguments={"alternate-exchange": UNROUTED}
    )
    return connection, channel


# --- a service: deliveries in one transaction with inbox and outbox, and its relay ------


class Outbox:
    """The messages one handler sends: kept in memory, written in one statement just
    before its transaction commits, published from memory right after."""

    def __init__(self, service: str, correlation_id: str | None, causation_id: str | None) -> None:
        self._table = f"{SCHEMA}.{service}_outbox"
        self._headers = json.dumps({"correlation_id": correlation_id, "causation_id": causation_id})
        self.rows: list[tuple[uuid.UUID, str, str, str, str]] = []

    async def event(self, routing_key: str, body: dict[str, Any]) -> None:
        self._add(EVENTS, routing_key, body)

    async def command(self, routing_key: str, body: dict[str, Any]) -> None:
        self._add(COMMANDS, routing_key, body)

    def _add(self, exchange: str, routing_key: str, body: dict[str, Any]) -> None:
        self.rows.append((uuid.uuid4(), exchange, routing_key, self._headers, json.dumps(body)))

    async def write(self, conn: asyncpg.Connection) -> None:
        if self.rows:
            await conn.execute(
                f"INSERT INTO {self._table} (message_id, exchange, routing_key, headers, body) "
                "SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[])",
                *(list(column) for column in zip(*self.rows, strict=True)),
            )


Handler = Callable[[asyncpg.Connection, dict[str, Any], Outbox], Awaitable[dict[str, Any] | None]]
Query = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class Service:
    """One bare worker: its queues, each delivery in one transaction, the publish of what
    it wrote right after the commit, and a relay for leftovers."""

    def __init__(self, name: str, channel: AbstractChannel, pool: asyncpg.Pool) -> None:
        self.name = name
        self.channel = channel
        self.pool = pool
        self._slots = asyncio.Semaphore(int(os.environ.get("BARE_PREFETCH", "16")))
        self._exchanges: dict[str, AbstractExchange] = {}
        self._to_mark: list[uuid.UUID] = []

    async def start(self) -> None:
        self._exchanges = {name: await self.channel.get_exchange(name) for name in (COMMANDS, EVENTS)}

    async def consume(self, handler: Handler, exchange: str, routing_key: str, *, verify_token: bool) -> None:
        """Handle `routing_key` from its own queue, `bare.<service>.<handler>`."""
        queue = await self.channel.declare_queue(
            f"bare.{self.name}.{handler.__name__}", durable=True, arguments=WORK_QUEUE
        )
        await queue.bind(exchange, routing_key)

        async def deliver(message: AbstractIncomingMessage) -> None:
            await self._deliver(handler, queue.name, message, verify_token=verify_token)

        await queue.consume(deliver)

    async def _deliver(
        self, handler: Handler, queue: str, message: AbstractIncomingMessage, *, verify_token: bool
    ) -> None:
        async with self._slots:
            try:
                if verify_token:
                    verify(str((message.headers or {}).get("authorization", "")))
                body = json.loads(message.body)
            except (jwt.PyJWTError, ValueError):
                await message.reject()
                return
            out = Outbox(self.name, message.correlation_id, message.message_id)
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    claimed = await conn.fetchval(
                        f"INSERT INTO {SCHEMA}.{self.name}_inbox (consumer, message_id) VALUES ($1, $2) "
                        "ON CONFLICT DO NOTHING RETURNING true",
                        queue,
                        uuid.UUID(message.message_id),
                    )
                    reply = await handler(conn, body, out) if claimed else None
                    await out.write(conn)
            except Exception:
                await asyncio.sleep(0.2)
                await message.nack(requeue=True)
                return
            if reply is not None:
                await self._reply(message, reply)
            await self.publish_written(out.rows)
            await message.ack()

    async def answer(self, query: Query, routing_key: str) -> None:
        """Answer `routing_key` (a query: it verifies the token, reads no table, writes
        nothing) from its own queue, with no transaction."""
        queue = await self.channel.declare_queue(
            f"bare.{self.name}.{query.__name__}", durable=True, arguments=WORK_QUEUE
        )
        await queue.bind(COMMANDS, routing_key)

        async def deliver(message: AbstractIncomingMessage) -> None:
            async with self._slots:
                try:
                    verify(str((message.headers or {}).get("authorization", "")))
                    body = json.loads(message.body)
                except (jwt.PyJWTError, ValueError):
                    await message.reject()
                    return
                try:
                    reply = await query(body)
                except Exception:
                    await asyncio.sleep(0.2)
                    await message.nack(requeue=True)
                    return
                await self._reply(message, reply)
                await message.ack()

        await queue.consume(deliver)

    async def _reply(self, message: AbstractIncomingMessage, reply: dict[str, Any]) -> None:
        if message.reply_to:
            answer = aio_pika.Message(json.dumps(reply).encode(), correlation_id=message.message_id)
            await self.channel.default_exchange.publish(answer, routing_key=message.reply_to)

    async def publish_written(self, rows: list[tuple[uuid.UUID, str, str, str, str]]) -> None:
        """Publish committed rows from memory, their confirms awaited together; a row
        that fails stays unsent for the relay."""
        results = await asyncio.gather(*(self._publish(*row) for row in rows), return_exceptions=True)
        self._to_mark.extend(row[0] for row, result in zip(rows, results, strict=True) if result is None)

    async def _publish(self, message_id: uuid.UUID, exchange: str, routing_key: str, headers: str, body: str) -> None:
        fields = json.loads(headers)
        if exchange == COMMANDS:
            fields["authorization"] = f"Bearer {os.environ['BARE_SERVICE_TOKEN']}"
        message = aio_pika.Message(
            body.encode(),
            message_id=str(message_id),
            correlation_id=fields["correlation_id"],
            headers=fields,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self._exchanges[exchange].publish(message, routing_key=routing_key, mandatory=True)

    async def relay(self) -> None:
        """Every second: mark what was published after its commit as sent (one statement),
        then publish leftovers (unsent rows older than a second) and mark them."""
        while True:
            await asyncio.sleep(RELAY_SECONDS)
            marks, self._to_mark = self._to_mark, []
            try:
                if marks:
                    await self.pool.execute(
                        f"UPDATE {SCHEMA}.{self.name}_outbox SET sent_at = now() WHERE message_id = ANY($1::uuid[])",
                        marks,
                    )
                    marks = []
                while await self._publish_leftovers() == RELAY_BATCH:
                    pass
            except Exception:  # the broker or the database: the rows stay, try again next time
                self._to_mark.extend(marks)

    async def _publish_leftovers(self) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT message_id, exchange, routing_key, headers::text, body::text FROM {SCHEMA}.{self.name}_outbox "
                "WHERE sent_at IS NULL AND created_at < now() - interval '1 second' "
                "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                RELAY_BATCH,
            )
            for row in rows:
                await self._publish(*row)
            await conn.execute(
                f"UPDATE {SCHEMA}.{self.name}_outbox SET sent_at = now() WHERE message_id = ANY($1::uuid[])",
                [row["message_id"] for row in rows],
            )
        return len(rows)


@contextlib.asynccontextmanager
async def service(name: str) -> AsyncIterator[Service]:
    connection, channel = await open_channel()
    prefetch = int(os.environ.get("BARE_PREFETCH", "16"))
    pool = await asyncpg.create_pool(os.environ["BARE_DATABASE_URL"], min_size=2, max_size=prefetch + 2)
    bare = Service(name, channel, pool)
    await bare.start()
    relay = asyncio.create_task(bare.relay())
    try:
        yield bare
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
        await connection.close()
        await pool.close()


# --- orders -------------------------------------------------------------------------------


async def place_order(conn: asyncpg.Connection, cmd: dict[str, Any], out: Outbox) -> dict[str, Any]:
    order_id = uuid.UUID(cmd["order_id"])
    items = {uuid.UUID(item["product_id"]): int(item["quantity"]) for item in cmd["items"]}
    prices = await conn.fetch(
        f"SELECT product_id, price_minor, currency FROM {SCHEMA}.products WHERE product_id = ANY($1::uuid[])",
        list(items),
    )
    total = sum(row["price_minor"] * items[row["product_id"]] for row in prices)
    placed = await conn.fetchval(
        f"INSERT INTO {SCHEMA}.orders (order_id, user_id, request_hash, currency, total_minor, shipping_address, "
        "payment_token, status, step, reservation, payment) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, 'pending', 'reserving', 'requested', 'none') "
        "ON CONFLICT DO NOTHING RETURNING true",
        order_id,
        uuid.UUID(cmd["user_id"]),
        cmd["request_hash"],
        prices[0]["currency"],
        total,
        json.dumps(cmd["shipping_address"]),
        cmd["payment_token"],
    )
    if placed:
        await conn.executemany(
            f"INSERT INTO {SCHEMA}.order_lines (order_id, product_id, quantity, unit_price_minor) "
            "VALUES ($1, $2, $3, $4)",
            [(order_id, row["product_id"], items[row["product_id"]], row["price_minor"]) for row in prices],
        )
        await conn.execute(f"INSERT INTO {SCHEMA}.order_history (order_id, status) VALUES ($1, 'pending')", order_id)
        await out.event("orders.order_placed.v1", {"order_id": str(order_id), "total_minor": total})
        lines = [{"product_id": str(p), "quantity": q} for p, q in sorted(items.items())]
        await out.command("inventory.reserve_stock.v1", {"order_id": str(order_id), "lines": lines})
    return {"order_id": str(order_id), "status": "pending", "total_minor": total}


async def on_stock_reserved(conn: asyncpg.Connection, event: dict[str, Any], out: Outbox) -> None:
    order = await conn.fetchrow(
        f"UPDATE {SCHEMA}.orders SET step = 'authorizing', reservation = 'reserved', payment = 'authorizing', "
        "version = version + 1, updated_at = now() WHERE order_id = $1 AND step = 'reserving' "
        "RETURNING order_id, total_minor, currency, payment_token",
        uuid.UUID(event["order_id"]),
    )
    if order is not None:
        command = {
            "order_id": str(order["order_id"]),
            "idempotency_key": f"{order['order_id']}:authorize",
            "amount_minor": order["total_minor"],
            "currency": order["currency"],
            "payment_token": order["payment_token"],
        }
        await out.command("payments.authorize_payment.v1", command)


async def on_payment_authorized(conn: asyncpg.Connection, event: dict[str, Any], out: Outbox) -> None:
    order = await conn.fetchrow(
        f"UPDATE {SCHEMA}.orders SET status = 'confirmed', step = 'completing', reservation = 'committing', "
        "payment = 'capturing', version = version + 1, updated_at = now() "
        "WHERE order_id = $1 AND step = 'authorizing' RETURNING order_id, user_id",
        uuid.UUID(event["order_id"]),
    )
    if order is not None:
        order_id = str(order["order_id"])
        await conn.execute(
            f"INSERT INTO {SCHEMA}.order_history (order_id, status) VALUES ($1, 'confirmed')", order["order_id"]
        )
        await conn.execute(
            f"INSERT INTO {SCHEMA}.sales SELECT l.order_id, l.product_id, l.quantity, l.unit_price_minor, o.currency, "
            f"now() FROM {SCHEMA}.order_lines l JOIN {SCHEMA}.orders o USING (order_id) WHERE l.order_id = $1",
            order["order_id"],
        )
        await out.event(
            "orders.order_confirmed.v1", {"order_id": order_id, "user_id": str(order["user_id"]), "status": "confirmed"}
        )
        await out.command("inventory.commit_stock.v1", {"order_id": order_id})
        await out.command(
            "payments.capture_payment.v1", {"order_id": order_id, "idempotency_key": f"{order_id}:capture"}
        )


async def on_reservation_committed(conn: asyncpg.Connection, event: dict[str, Any], out: Outbox) -> None:
    await conn.execute(
        f"UPDATE {SCHEMA}.orders SET reservation = 'committed', "
        "step = CASE WHEN payment = 'captured' THEN 'done' ELSE step END, version = version + 1, updated_at = now() "
        "WHERE order_id = $1 AND reservation = 'committing'",
        uuid.UUID(event["order_id"]),
    )


async def on_payment_captured(conn: asyncpg.Connection, event: dict[str, Any], out: Outbox) -> None:
    await conn.execute(
        f"UPDATE {SCHEMA}.orders SET payment = 'captured', "
        "step = CASE WHEN reservation = 'committed' THEN 'done' ELSE step END, version = version + 1, "
        "updated_at = now() WHERE order_id = $1 AND payment = 'capturing'",
        uuid.UUID(event["order_id"]),
    )


# --- inventory ----------------------------------------------------------------------------


class _Short(Exception):
    """A line has not enough stock: the savepoint rolls every line back."""


async def reserve_stock(conn: asyncpg.Connection, cmd: dict[str, Any], out: Outbox) -> None:
    order_id = uuid.UUID(cmd["order_id"])
    claimed = await conn.fetchval(
        f"INSERT INTO {SCHEMA}.reservations (order_id, status, lines) VALUES ($1, 'failed', $2::jsonb) "
        "ON CONFLICT DO NOTHING RETURNING true",
        order_id,
        json.dumps(cmd["lines"]),
    )
    if not claimed:
        return
    status = "reserved"
    try:
        async with conn.transaction():
            await _move(conn, order_id, cmd["lines"], "reserve")
    except _Short:
        status = "failed"
    await conn.execute(f"UPDATE {SCHEMA}.reservations SET status = $2 WHERE order_id = $1", order_id, status)
    event = "stock_reserved" if status == "reserved" else "reservation_failed"
    await out.event(f"inventory.{event}.v1", {**cmd, "status": status})


async def commit_stock(conn: asyncpg.Connection, cmd: dict[str, Any], out: Outbox) -> None:
    order_id = uuid.UUID(cmd["order_id"])
    lines = await conn.fetchval(
        f"UPDATE {SCHEMA}.reservations SET status = 'committed' WHERE order_id = $1 AND status = 'reserved' "
        "RETURNING lines",
        order_id,
    )
    if lines is not None:
        await _move(conn, order_id, json.loads(lines), "commit")
        await out.event("inventory.reservation_committed.v1", {"order_id": cmd["order_id"], "status": "committed"})


async def _move(conn: asyncpg.Connection, order_id: uuid.UUID, lines: list[Any], kind: str) -> None:
    """Reserve or sell each line's quantity (lines are sorted: rows lock in one order), with a ledger row."""
    change = (
        "available = available - $2, reserved = reserved + $2, change_unannounced = $3 "
        "WHERE product_id = $1 AND available >= $2"
        if kind == "reserve"
        else "reserved = reserved - $2, change_unannounced = $3 WHERE product_id = $1"
    )
    for line in lines:
        product_id, quantity = uuid.UUID(line["product_id"]), int(line["quantity"])
        row = await conn.fetchrow(
            f"UPDATE {SCHEMA}.stock SET {change} RETURNING available, reserved", product_id, quantity, kind
        )
        if row is None:
            raise _Short
        await conn.execute(
            f"INSERT INTO {SCHEMA}.stock_ledger (product_id, kind, quantity, order_id) VALUES ($1, $2, $3, $4)",
            product_id,
            kind,
            quantity,
            order_id,
        )


async def announce_stock_changes(bare: Service) -> None:
    """Every 0.2 s: one stock_changed per product moved since, as Agora's inventory does."""
    while True:
        await asyncio.sleep(ANNOUNCE_SECONDS)
        out = Outbox(bare.name, str(uuid.uuid4()), None)
        try:
            await _announce(bare, out)
        except Exception:  # the database: the marks stay for the next turn
            continue
        await bare.publish_written(out.rows)


async def _announce(bare: Service, out: Outbox) -> None:
    async with bare.pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            f"WITH due AS (SELECT product_id, change_unannounced AS change FROM {SCHEMA}.stock "
            "WHERE change_unannounced IS NOT NULL ORDER BY product_id LIMIT 100 FOR UPDATE SKIP LOCKED) "
            f"UPDATE {SCHEMA}.stock s SET change_unannounced = NULL FROM due WHERE s.product_id = due.product_id "
            "RETURNING s.product_id, s.available, s.reserved, due.change"
        )
        for row in rows:
            await out.event(
                "inventory.stock_changed.v1",
                {
                    "product_id": str(row["product_id"]),
                    "available": row["available"],
                    "reserved": row["reserved"],
                    "reason": row["change"],
                },
            )
        await out.write(conn)


# --- payments -----------------------------------------------------------------------------


class Payments:
    """The two payment steps, over one HTTP client to the provider."""

    def __init__(self, provider: aiohttp.ClientSession) -> None:
        self.provider = provider

    async def authorize_payment(self, conn: asyncpg.Connection, cmd: dict[str, Any], out: Outbox) -> None:
        order_id = uuid.UUID(cmd["order_id"])
        claimed = await conn.fetchval(
            f"INSERT INTO {SCHEMA}.payments (order_id, status, amount_minor, currency) "
            "VALUES ($1, 'requested', $2, $3) ON CONFLICT DO NOTHING RETURNING true",
            order_id,
            cmd["amount_minor"],
            cmd["currency"],
        )
        if not claimed:
            return
        body = {  # Stripe's PaymentIntents API, form-encoded, as the sandbox speaks it
            "amount": str(cmd["amount_minor"]),
            "currency": cmd["currency"].lower(),
            "confirm": "true",
            "capture_method": "manual",
            "payment_method_types[0]": "card",
            "payment_method_data[type]": "card",
            "payment_method_data[card][token]": cmd["payment_token"],
            "metadata[order_id]": cmd["order_id"],
        }
        answer = await self._call("/v1/payment_intents", body, cmd["idempotency_key"])
        await self._record(conn, order_id, "authorize", "authorized", answer["id"])
        await out.event("payments.payment_authorized.v1", {"order_id": cmd["order_id"], "outcome": "authorized"})

    async def capture_payment(self, conn: asyncpg.Connection, cmd: dict[str, Any], out: Outbox) -> None:
        order_id = uuid.UUID(cmd["order_id"])
        authorization = await conn.fetchval(
            f"SELECT authorization_id FROM {SCHEMA}.payments WHERE order_id = $1 AND status = 'authorized' FOR UPDATE",
            order_id,
        )
        if authorization is None:
            return
        await self._call(f"/v1/payment_intents/{authorization}/capture", {}, cmd["idempotency_key"])
        await self._record(conn, order_id, "capture", "captured", authorization)
        await out.event("payments.payment_captured.v1", {"order_id": cmd["order_id"], "outcome": "captured"})

    async def check_payment_token(self, query: dict[str, Any]) -> dict[str, Any]:
        token = str(query["payment_token"])
        headers = {"Authorization": f"Bearer {os.environ['BARE_PAYMENT_API_KEY']}"}
        async with self.provider.get(f"/v1/tokens/{quote(token, safe='')}", headers=headers) as resp:
            if resp.status != 404:
                resp.raise_for_status()
            await resp.read()
            return {"payment_token": token, "known": resp.status != 404}

    async def _call(self, path: str, body: dict[str, str], idempotency_key: str) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key, "Authorization": f"Bearer {os.environ['BARE_PAYMENT_API_KEY']}"}
        async with self.provider.post(path, data=body, headers=headers) as resp:
            resp.raise_for_status()  # the bare pipeline has no failure path: the delivery is retried
            answer: dict[str, Any] = await resp.json()
            return answer

    @staticmethod
    async def _record(
        conn: asyncpg.Connection, order_id: uuid.UUID, step: str, outcome: str, authorization: str
    ) -> None:
        await conn.execute(
            f"UPDATE {SCHEMA}.payments SET status = $2, authorization_id = $3 WHERE order_id = $1",
            order_id,
            outcome,
            authorization,
        )
        await conn.execute(
            f"INSERT INTO {SCHEMA}.payment_steps (order_id, step, outcome) VALUES ($1, $2, $3)",
            order_id,
            step,
            outcome,
        )


# --- the edge -----------------------------------------------------------------------------


class Rpc:
    """Commands with a reply queue, one future per command, matched on its message id.

    Not a copy of edge/bus.py's client: the bare pipeline's own minimal RPC (its `bare.*`
    exchange, replies matched on `correlation_id`, no envelope, no reconnecting), kept
    framework-free like the rest of the pipeline it measures against.
    """

    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._replies = ""

    async def start(self) -> None:
        queue = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.consume(self._on_reply, no_ack=True)
        self._replies = queue.name
        self._commands = await self._channel.get_exchange(COMMANDS)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._waiting.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(json.loads(message.body))

    async def call(self, routing_key: str, body: dict[str, Any], authorization: str) -> dict[str, Any]:
        message_id = str(uuid.uuid4())
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        message = aio_pika.Message(
            json.dumps(body).encode(),
            message_id=message_id,
            correlation_id=message_id,
            reply_to=self._replies,
            headers={"authorization": authorization},
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            async with asyncio.timeout(10):
                await self._commands.publish(message, routing_key=routing_key, mandatory=True)
                return await future
        finally:
            self._waiting.pop(message_id, None)


RPC_KEY = web.AppKey("rpc", Rpc)


def _order_body(body: Any) -> dict[str, Any]:
    """The fields an order needs, checked by hand; ValueError (or KeyError, TypeError) if not."""
    items = body["items"]
    if not isinstance(items, list) or not 1 <= len(items) <= 50:
        raise ValueError("items")
    for item in items:
        uuid.UUID(item["product_id"])
        if not isinstance(item["quantity"], int) or not 1 <= item["quantity"] <= 99:
            raise ValueError("quantity")
    address = body["shipping_address"]
    if not all(isinstance(address[f], str) and address[f] for f in ("line1", "city", "postal_code", "country")):
        raise ValueError("shipping_address")
    if not isinstance(body["payment_token"], str):
        raise ValueError("payment_token")
    return {"items": items, "shipping_address": address, "payment_token": body["payment_token"]}


async def post_order(request: web.Request) -> web.Response:
    authorization = request.headers.get("Authorization", "")
    try:
        claims = verify(authorization)
    except jwt.PyJWTError:
        return web.json_response({"title": "unauthorized"}, status=401)
    try:
        body = _order_body(await request.json())
    except (ValueError, KeyError, TypeError):
        return web.json_response({"title": "validation failed"}, status=422)
    key = request.headers.get("Idempotency-Key") or str(uuid.uuid4())
    command = {
        **body,
        "order_id": str(uuid.uuid5(ORDER_KEYS, f"{claims['sub']}:{key}")),
        "user_id": claims["sub"],
        "request_hash": hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest(),
    }
    rpc = request.app[RPC_KEY]
    check = await rpc.call("payments.check_payment_token.v1", {"payment_token": body["payment_token"]}, authorization)
    if check["known"] is False:
        return web.json_response({"title": "unknown payment token"}, status=422)
    reply = await rpc.call("orders.place_order.v1", command, authorization)
    return web.json_response(reply, status=202)


# --- the processes ------------------------------------------------------------------------


async def edge(app: web.Application) -> AsyncIterator[None]:
    connection, channel = await open_channel()
    rpc = Rpc(channel)
    await rpc.start()
    app[RPC_KEY] = rpc
    yield
    await connection.close()


async def orders(app: web.Application) -> AsyncIterator[None]:
    async with service("orders") as bare:
        await bare.consume(place_order, COMMANDS, "orders.place_order.v1", verify_token=True)
        await bare.consume(on_stock_reserved, EVENTS, "inventory.stock_reserved.v1", verify_token=False)
        await bare.consume(on_payment_authorized, EVENTS, "payments.payment_authorized.v1", verify_token=False)
        await bare.consume(on_reservation_committed, EVENTS, "inventory.reservation_committed.v1", verify_token=False)
        await bare.consume(on_payment_captured, EVENTS, "payments.payment_captured.v1", verify_token=False)
        yield


async def inventory(app: web.Application) -> AsyncIterator[None]:
    async with service("inventory") as bare:
        await bare.consume(reserve_stock, COMMANDS, "inventory.reserve_stock.v1", verify_token=True)
        await bare.consume(commit_stock, COMMANDS, "inventory.commit_stock.v1", verify_token=True)
        announcer = asyncio.create_task(announce_stock_changes(bare))
        yield
        announcer.cancel()
        await asyncio.gather(announcer, return_exceptions=True)


async def payments(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(os.environ["BARE_PAYMENT_API_URL"], timeout=timeout) as provider,
        service("payments") as bare,
    ):
        steps = Payments(provider)
        await bare.consume(steps.authorize_payment, COMMANDS, "payments.authorize_payment.v1", verify_token=True)
        await bare.consume(steps.capture_payment, COMMANDS, "payments.capture_payment.v1", verify_token=True)
        await bare.answer(steps.check_payment_token, "payments.check_payment_token.v1")
        yield


ROLES = {"edge": edge, "orders": orders, "inventory": inventory, "payments": payments}


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=sorted(ROLES))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/readyz", ready)
    if args.role == "edge":
        app.router.add_post("/api/orders", post_order)
    # Set up before the port opens, so /readyz answers only once the role consumes.
    app.cleanup_ctx.append(ROLES[args.role])
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
