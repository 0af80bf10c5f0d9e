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

from contracts.orders import ORDER_CANCELLED, ORDER_CONFIRMED
from contracts.topology import EVENTS_EXCHANGE
from db.engine import asyncpg_dsn
from harness.accounts import create_admin, login, make_seller, register
from harness.broker import reset_vhost
from harness.bus import list_product
from harness.database import reset_database
from harness.environment import (
    DATABASE,
    HTTP_PORT,
    ROOT,
    SLOT,
    VHOST,
    WORKER_PORT_BASE,
    test_env,
)
from harness.processes import Process, edge, payment_sandbox, start_together, worker
from kernel.settings import Settings
from scripts.lib import bare_pipeline
from scripts.lib.accounting import Accounting, Cost, accounting
from scripts.lib.benchlib import LATENCY_HEADER, for_duration, latency_columns, latency_figures, machine

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
# Processes whose CPU is shown but not added to a pipeline's cost.
LEFT_OUT = ("payment sandbox", "load generator")
BARE_PORT_BASE = WORKER_PORT_BASE + 20


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
    concurrency: int
    latencies: list[float]  # of the confirmed orders
    failed: int  # refused, cancelled, or not confirmed within WITHIN
    elapsed: float
    completed: str
    cost: Cost

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.elapsed

    def row(self) -> str:
        return (
            f"{self.pipeline:<10} {self.concurrency:>5} {len(self.latencies):>7} {self.failed:>6} "
            f"{self.per_second:>8.1f} {self.cost.cpu_total_ms(LEFT_OUT):>7.1f} "
            + (latency_columns(self.latencies) if self.latencies else "none confirmed")
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


async def measure(
    pipeline: str, shop: Shop, env: dict[str, str], concurrency: int, args: argparse.Namespace, books: Accounting
) -> Figures:
    """Orders at `concurrency` in flight for `args.seconds`, after `args.warmup`; what they
    cost is counted between two quiet moments (all earlier orders completed)."""
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
        await for_duration(order, concurrency, args.warmup)
        await completed(dsn, shop.orders_table)
        before = await books.quiet_snapshot()
        results, latencies, elapsed = await for_duration(order, concurrency, args.seconds)
    await connection.close()
    confirmed = [latency for ok, latency in zip(results, latencies, strict=True) if ok]
    done, of = await completed(dsn, shop.orders_table)
    spent = await books.cost_since(before, len(results))
    return Figures(pipeline, concurrency, confirmed, len(results) - len(confirmed), elapsed, f"{done} of {of}", spent)


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
    env = test_env()
    env.update({f"AGORA_{name.upper()}": str(Settings.model_fields[name].default) for name in REALISTIC})
    return env


async def agora_shop(env: dict[str, str], args: argparse.Namespace) -> Shop:
    """Members registered and signed in, products listed and priced, all over the public paths."""
    base_url = f"http://127.0.0.1:{HTTP_PORT}"
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


async def bench_agora(env: dict[str, str], args: argparse.Namespace, processes: dict[str, Process]) -> list[Figures]:
    metrics = {name: f"http://127.0.0.1:{p.port}/metrics" for name, p in processes.items() if name in AGORA_WORKERS}
    books = accounting(env, processes, metrics)
    shop = await agora_shop(env, args)
    return [await measure("agora", shop, env, c, args, books) for c in args.concurrency]


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


def bare_processes(env: dict[str, str], key: Ed25519PrivateKey) -> list[Process]:
    public_key = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bare_env = {
        **env,
        "BARE_AMQP_URL": env["AGORA_AMQP_URL"],
        "BARE_DATABASE_URL": asyncpg_dsn(env["AGORA_DATABASE_URL"]),
        "BARE_PAYMENT_API_URL": env["AGORA_PAYMENT_API_URL"],
        "BARE_PAYMENT_API_KEY": env["AGORA_STRIPE_SECRET_KEY"],
        "BARE_PUBLIC_KEY": public_key.decode(),
        "BARE_SERVICE_TOKEN": token(key, uuid.uuid4(), "service"),
    }
    python = str(ROOT / ".venv/bin/python")
    return [
        Process(
            f"bare-{role}",
            [python, "-m", "scripts.lib.bare_pipeline", role, "--port", str(BARE_PORT_BASE + i)],
            BARE_PORT_BASE + i,
            bare_env,
        )
        for i, role in enumerate(BARE_ROLES)
    ]


async def bench_bare(
    env: dict[str, str], key: Ed25519PrivateKey, args: argparse.Namespace, processes: dict[str, Process]
) -> list[Figures]:
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
    books = accounting(env, processes, {})
    return [await measure("bare", shop, env, c, args, books) for c in args.concurrency]


# --- the run ------------------------------------------------------------------------------


def report(agora: list[Figures], bare: list[Figures]) -> None:
    columns = f"{'pipeline':<10} {'lanes':>5} {'orders':>7} {'failed':>6} {'per sec':>8} {'CPU ms':>7}"
    print(f"\n{columns} {LATENCY_HEADER}")
    for a, b in zip(agora, bare, strict=True):
        print(a.row())
        print(b.row())
        if a.latencies and b.latencies:
            latency = (x / y for x, y in zip(latency_figures(a.latencies), latency_figures(b.latencies), strict=True))
            ratios = " ".join(f"{r:>7.2f}x" for r in latency)
            cpu = a.cost.cpu_total_ms(LEFT_OUT) / b.cost.cpu_total_ms(LEFT_OUT)
            rate = a.per_second / b.per_second
            print(f"{'agora/bare':<10} {'':>5} {'':>7} {'':>6} {rate:>7.2f}x {cpu:>6.2f}x {ratios}")
    for figures in (*agora, *bare):
        print(f"\n{figures.pipeline}, {figures.concurrency} in flight, {figures.cost.units} orders:")
        print(f"  completed (stock committed, payment captured) of the confirmed orders: {figures.completed}")
        print("\n".join(figures.cost.lines(LEFT_OUT)))


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the same clean-up as Ctrl-C


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="measured time per run (default 20)")
    parser.add_argument("--warmup", type=float, default=5, help="unmeasured time first (default 5)")
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 4, 16, 64],
        help="orders in flight, one run each (default 1,4,16,64)",
    )
    parser.add_argument("--members", type=int, default=32, help="members placing orders (default 32)")
    parser.add_argument("--products", type=int, default=10, help="products ordered from (default 10)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupted)

    env = bench_env()
    print(f"slot {SLOT}: database {DATABASE}, vhost {VHOST}; {machine()}")
    print(
        f"{', '.join(map(str, args.concurrency))} orders in flight, each for {args.seconds:g} s "
        f"(after {args.warmup:g} s of warm-up), "
        f"{args.members} members, {args.products} products"
    )
    reset_database(env)
    reset_vhost()
    dsn = asyncpg_dsn(env["AGORA_DATABASE_URL"])
    key = Ed25519PrivateKey.generate()
    sandbox = payment_sandbox(env)
    agora = {**{name: worker(name, env) for name in AGORA_WORKERS}, "edge": edge(env)}
    bare = dict(zip(BARE_ROLES, bare_processes(env, key), strict=True))
    try:
        sandbox.start()
        start_together(list(agora.values()))
        agora_figures = asyncio.run(bench_agora(env, args, {**agora, "payment sandbox": sandbox}))
        for process in agora.values():
            process.stop()
        asyncio.run(bare_pipeline.create_schema(dsn))
        start_together(list(bare.values()))
        bare_figures = asyncio.run(bench_bare(env, key, args, {**bare, "payment sandbox": sandbox}))
    finally:
        for process in [*agora.values(), *bare.values(), sandbox]:
            process.stop()
        asyncio.run(bare_pipeline.drop_schema(dsn))
    report(agora_figures, bare_figures)


if __name__ == "__main__":
    main()
