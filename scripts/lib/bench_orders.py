"""Orders placed over HTTP until confirmed: Agora, then a bare pipeline of the same shape (run it with scripts/bench).

Each pipeline gets `--members` members and `--products` products with ample stock,
prepared first, then `--concurrency` lanes that each place an order (POST
/api/orders, an Idempotency-Key, one line, tok_visa) and wait for its
`orders.order_confirmed.v1` event, from a queue of our own bound to the pipeline's
events exchange; then the next order, for `--seconds` (after `--warmup` seconds
unmeasured). Latency is from the POST to the event; the rate is confirmed orders
over the time until the last lane finished. The figures are printed, never asserted.

Agora runs as deployed, one process each: the edge, the users, inventory, orders and
payments workers, with the settings' own saga deadlines rather than the test suite's
short ones. The catalog and notifications workers, which follow stock changes and
order events, are not on an order's way to confirmed and are not started: those
events go to the unrouted queue, as the bare pipeline's do. The bare pipeline
(scripts/lib/bare_pipeline.py, whose docstring lists both pipelines' hops and
commits) runs after Agora's processes are stopped, one process per role too,
against the same RabbitMQ, PostgreSQL and sandbox payment provider.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

import aio_pika
import aiohttp
import asyncpg
import jwt
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agora.settings import Settings
from contracts.orders import ORDER_CANCELLED, ORDER_CONFIRMED
from contracts.topology import EVENTS_EXCHANGE
from db.engine import asyncpg_dsn
from scripts.lib import bare_pipeline
from scripts.lib.benchlib import LATENCY_HEADER, for_duration, latency_columns, latency_figures, machine
from tests import support
from tests.bus import list_product
from tests.conftest import _reset_database, create_admin, login, make_seller, register

ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
STOCK = 10_000_000
# An order not confirmed this long after it was placed counts as lost.
WITHIN = 60.0
AGORA_WORKERS = ("users", "inventory", "orders", "payments")
# The test environment has these on a test's time scale; the bench runs the settings'
# defaults, as a deployment does. (Fast password hashing and lax rate limits stay:
# they only make preparing the members quicker.)
REALISTIC = (
    "saga_reserve_deadline_seconds",
    "saga_payment_deadline_seconds",
    "saga_retry_seconds",
    "saga_sweep_seconds",
    "payment_api_timeout_seconds",
    "jwks_refresh_seconds",
    "signing_key_activation_seconds",
    "rpc_timeout_seconds",
)
BARE_ROLES = ("orders", "inventory", "payments", "edge")
BARE_PORT_BASE = support.WORKER_PORT_BASE + 20


@dataclass
class Shop:
    """What a pipeline is ordered from."""

    base_url: str
    events_exchange: str
    orders_table: str
    tokens: list[str]
    products: list[str]


@dataclass
class Figures:
    pipeline: str
    latencies: list[float]  # of the confirmed orders
    failed: int  # refused, cancelled, or not confirmed within WITHIN
    elapsed: float
    completed: str = ""

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.elapsed

    def row(self) -> str:
        return f"{self.pipeline:<10} {len(self.latencies):>7} {self.failed:>6} {self.per_second:>8.1f} " + (
            latency_columns(self.latencies) if self.latencies else "none confirmed"
        )


class Confirmations:
    """Order events as they arrive, by order id (an event may beat the 202 that names it)."""

    def __init__(self) -> None:
        self._arrived: dict[str, str] = {}
        self._waiting: dict[str, asyncio.Future[str]] = {}

    async def listen(self, connection: AbstractRobustConnection, exchange: str) -> None:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for spec in (ORDER_CONFIRMED, ORDER_CANCELLED):
            await queue.bind(exchange, spec.routing_key)
        await queue.consume(self._on_event, no_ack=True)

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        event = json.loads(message.body)
        future = self._waiting.pop(event["order_id"], None)
        if future is None:
            self._arrived[event["order_id"]] = event["status"]
        elif not future.done():
            future.set_result(event["status"])

    async def status(self, order_id: str) -> str:
        """`confirmed` or `cancelled` once the event comes; `lost` if none comes in time."""
        if order_id in self._arrived:
            return self._arrived.pop(order_id)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[order_id] = future
        try:
            return await asyncio.wait_for(future, WITHIN)
        except TimeoutError:
            return "lost"
        finally:
            self._waiting.pop(order_id, None)


async def measure(pipeline: str, shop: Shop, env: dict[str, str], args: argparse.Namespace) -> Figures:
    dsn = asyncpg_dsn(env["AGORA_DATABASE_URL"])
    connection = await aio_pika.connect_robust(env["AGORA_AMQP_URL"])
    confirmations = Confirmations()
    await confirmations.listen(connection, shop.events_exchange)
    async with aiohttp.ClientSession(shop.base_url) as http:

        async def order() -> bool:
            body = {
                "items": [{"product_id": random.choice(shop.products), "quantity": 1}],
                "shipping_address": ADDRESS,
                "payment_token": "tok_visa",
            }
            headers = {"Authorization": f"Bearer {random.choice(shop.tokens)}", "Idempotency-Key": str(uuid.uuid4())}
            async with http.post("/api/orders", json=body, headers=headers) as resp:
                if resp.status != 202:
                    return False
                order_id = (await resp.json())["order_id"]
            return await confirmations.status(order_id) == "confirmed"

        # Connections, pools, key sets, query plans.
        await for_duration(order, args.concurrency, args.warmup)
        results, latencies, elapsed = await for_duration(order, args.concurrency, args.seconds)
    await connection.close()
    confirmed = [latency for ok, latency in zip(results, latencies, strict=True) if ok]
    done, of = await completed(dsn, shop.orders_table)
    return Figures(pipeline, confirmed, len(results) - len(confirmed), elapsed, f"{done} of {of}")


async def completed(dsn: str, table: str) -> tuple[int, int]:
    """Of the confirmed orders, how many finished their saga (stock committed, payment
    captured), given some seconds for the last ones: the whole shape ran, not only its first half."""
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(40):
            done, confirmed = await conn.fetchrow(
                f"SELECT count(*) FILTER (WHERE step = 'done'), count(*) FROM {table} WHERE status = 'confirmed'"
            )
            if done == confirmed:
                break
            await asyncio.sleep(0.5)
        return int(done), int(confirmed)
    finally:
        await conn.close()


# --- Agora --------------------------------------------------------------------------------


def bench_env() -> dict[str, str]:
    env = support.test_env()
    env.update({f"AGORA_{name.upper()}": str(Settings.model_fields[name].default) for name in REALISTIC})
    return env


async def agora_shop(env: dict[str, str], args: argparse.Namespace) -> Shop:
    """Members registered and signed in, products listed and priced, all over the public paths."""
    base_url = f"http://127.0.0.1:{support.HTTP_PORT}"
    connection = await aio_pika.connect_robust(env["AGORA_AMQP_URL"])
    async with aiohttp.ClientSession(base_url) as http:
        admin_body = create_admin(env)
        admin = await login(http, admin_body["email"], admin_body["password"])
        seller_id = (await make_seller(http, admin))["user"]["user_id"]
        products = [await list_product(connection, http, seller_id, stock=STOCK) for _ in range(args.products)]
        tokens = []
        for _ in range(args.members):
            member = await register(http)
            tokens.append((await login(http, member["email"], member["password"]))["access_token"])
    await connection.close()
    await _priced(asyncpg_dsn(env["AGORA_DATABASE_URL"]), products)
    return Shop(base_url, EVENTS_EXCHANGE, "orders.orders", tokens, products)


async def _priced(dsn: str, products: list[str]) -> None:
    """Wait until the orders service's product read model has every product."""
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(300):
            known = await conn.fetchval(
                "SELECT count(*) FROM orders.products WHERE product_id = ANY($1::uuid[])", products
            )
            if known == len(products):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("the orders service never heard of the products")
    finally:
        await conn.close()


async def bench_agora(env: dict[str, str], args: argparse.Namespace) -> Figures:
    return await measure("agora", await agora_shop(env, args), env, args)


# --- the bare pipeline --------------------------------------------------------------------


def token(key: Ed25519PrivateKey, subject: uuid.UUID, role: str) -> str:
    """An access token like the users service's (workers/users/keys.py), from our own key."""
    now = datetime.now(UTC)
    claims = {
        "iss": bare_pipeline.ISSUER,
        "aud": bare_pipeline.AUDIENCE,
        "sub": str(subject),
        "role": role,
        "iat": now,
        "exp": now + timedelta(hours=1),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "bare"})


def bare_processes(env: dict[str, str], key: Ed25519PrivateKey) -> list[support.Process]:
    public_key = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bare_env = {
        **env,
        "BARE_AMQP_URL": env["AGORA_AMQP_URL"],
        "BARE_DATABASE_URL": asyncpg_dsn(env["AGORA_DATABASE_URL"]),
        "BARE_PAYMENT_API_URL": env["AGORA_PAYMENT_API_URL"],
        "BARE_PUBLIC_KEY": public_key.decode(),
        "BARE_SERVICE_TOKEN": token(key, uuid.uuid4(), "service"),
    }
    python = str(support.ROOT / ".venv/bin/python")
    return [
        support.Process(
            f"bare-{role}",
            [python, "-m", "scripts.lib.bare_pipeline", role, "--port", str(BARE_PORT_BASE + i)],
            BARE_PORT_BASE + i,
            bare_env,
        )
        for i, role in enumerate(BARE_ROLES)
    ]


async def bench_bare(env: dict[str, str], key: Ed25519PrivateKey, args: argparse.Namespace) -> Figures:
    products = [uuid.uuid4() for _ in range(args.products)]
    conn = await asyncpg.connect(asyncpg_dsn(env["AGORA_DATABASE_URL"]))
    try:
        schema = bare_pipeline.SCHEMA
        await conn.executemany(f"INSERT INTO {schema}.products VALUES ($1, 1999, 'USD')", [(p,) for p in products])
        await conn.executemany(f"INSERT INTO {schema}.stock VALUES ($1, $2, 0)", [(p, STOCK) for p in products])
    finally:
        await conn.close()
    shop = Shop(
        f"http://127.0.0.1:{BARE_PORT_BASE + BARE_ROLES.index('edge')}",
        bare_pipeline.EVENTS,
        f"{bare_pipeline.SCHEMA}.orders",
        [token(key, uuid.uuid4(), "member") for _ in range(args.members)],
        [str(p) for p in products],
    )
    return await measure("bare", shop, env, args)


# --- the run ------------------------------------------------------------------------------


def start(processes: list[support.Process]) -> None:
    """Start them together; the last (an edge) once the others are ready."""
    for process in processes[:-1]:
        process.start(wait=False)
    for process in processes[:-1]:
        process.wait_ready()
    processes[-1].start()


def report(agora: Figures, bare: Figures) -> None:
    print(f"\n{'pipeline':<10} {'orders':>7} {'failed':>6} {'per sec':>8} {LATENCY_HEADER}")
    print(agora.row())
    print(bare.row())
    if agora.latencies and bare.latencies:
        latency = (
            a / b for a, b in zip(latency_figures(agora.latencies), latency_figures(bare.latencies), strict=True)
        )
        ratios = " ".join(f"{r:>7.2f}x" for r in latency)
        print(f"{'agora/bare':<10} {'':>7} {'':>6} {agora.per_second / bare.per_second:>7.2f}x {ratios}")
    print(
        f"\ncompleted (stock committed, payment captured) of the confirmed orders: "
        f"agora {agora.completed}, bare {bare.completed}"
    )


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the same clean-up as Ctrl-C


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30, help="measured time per pipeline (default 30)")
    parser.add_argument("--warmup", type=float, default=5, help="unmeasured time first (default 5)")
    parser.add_argument("--concurrency", type=int, default=16, help="orders in flight (default 16)")
    parser.add_argument("--members", type=int, default=32, help="members placing orders (default 32)")
    parser.add_argument("--products", type=int, default=10, help="products ordered from (default 10)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupted)

    env = bench_env()
    print(f"slot {support.SLOT}: database {support.DATABASE}, vhost {support.VHOST}; {machine()}")
    print(
        f"{args.concurrency} orders in flight for {args.seconds:g} s (after {args.warmup:g} s of warm-up), "
        f"{args.members} members, {args.products} products"
    )
    _reset_database(env)
    support.reset_vhost()
    dsn = asyncpg_dsn(env["AGORA_DATABASE_URL"])
    key = Ed25519PrivateKey.generate()
    sandbox = support.payment_sandbox(env)
    agora = [*(support.worker(name, env) for name in AGORA_WORKERS), support.edge(env)]
    bare = bare_processes(env, key)
    try:
        sandbox.start()
        start(agora)
        agora_figures = asyncio.run(bench_agora(env, args))
        for process in agora:
            process.stop()
        asyncio.run(bare_pipeline.create_schema(dsn))
        start(bare)
        bare_figures = asyncio.run(bench_bare(env, key, args))
    finally:
        for process in [*agora, *bare, sandbox]:
            process.stop()
        asyncio.run(bare_pipeline.drop_schema(dsn))
    report(agora_figures, bare_figures)


if __name__ == "__main__":
    main()
