"""Reservation throughput and latency (run it with scripts/bench_reservations).

Three phases against real processes (users and inventory workers, the edge), each at a
fixed concurrency, sending commands as the order saga does (service token, reply queue):

1. spread: `--orders` one-line reservations over `--products` products with ample stock;
2. contended: as many reservations for one product that has stock for half of them
   (checks the outcome too: exactly that many reserved, stock at zero);
3. commit: every reservation of phase 1 committed.

Latency is from publish to reply. For each phase it also prints what one call cost: CPU
ms by process (from /proc: the inventory worker, RabbitMQ, PostgreSQL, this load
generator), the inventory worker's database round trips and transactions (counted in the
process), and messages published and delivered (RabbitMQ's counts). The figures are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import aiohttp

from contracts.inventory import COMMIT_STOCK, RESERVE_STOCK
from harness.accounts import create_admin, login, make_seller
from harness.broker import reset_vhost
from harness.bus import Bus, list_product, service_token
from harness.database import reset_database
from harness.environment import DATABASE, HTTP_PORT, SLOT, VHOST, test_env
from harness.processes import edge, running, worker
from kernel.settings import SERVICES
from scripts.lib.accounting import Accounting, accounting
from scripts.lib.benchlib import latency_columns, machine, timed

Calls = list[Callable[[], Awaitable[dict[str, Any]]]]


async def _run(name: str, calls: Calls, concurrency: int, books: Accounting, costs: list[str]) -> list[dict[str, Any]]:
    before = await books.quiet_snapshot()
    replies, latencies, elapsed = await timed(calls, concurrency)
    await asyncio.sleep(1)  # the events the last calls emitted reach their consumers
    spent = await books.cost_since(before, len(calls))
    print(f"{name:<10} {len(calls):>6} {concurrency:>5} {len(calls) / elapsed:>10.0f} {latency_columns(latencies)}")
    cpu = ", ".join(f"{process} {ms:.2f}" for process, ms in spent.cpu_ms.items())
    delivered = ", ".join(f"{k} {v:.1f}" for k, v in sorted(spent.delivered.items()) if v >= 0.05)
    costs.append(
        f"{name:<10} CPU ms per call: {spent.cpu_total_ms(('load generator',)):.2f} without the load generator "
        f"({cpu}); inventory round trips {sum(spent.round_trips.values()):.2f}, transactions "
        f"{sum(spent.transactions.values()):.2f}; messages {spent.published:.1f} published, "
        f"{sum(spent.delivered.values()):.1f} delivered ({delivered})"
    )
    return replies


async def bench(args: argparse.Namespace, env: dict[str, str], books: Accounting) -> None:
    connection = await aio_pika.connect_robust(env["AGORA_AMQP_URL"])
    async with aiohttp.ClientSession(f"http://127.0.0.1:{HTTP_PORT}") as http, Bus(connection) as bus:
        admin_body = create_admin(env)
        admin = await login(http, admin_body["email"], admin_body["password"])
        seller = await make_seller(http, admin)
        token = await service_token(bus, env)
        seller_id = seller["user"]["user_id"]
        products = [
            await list_product(connection, http, seller_id, stock=args.orders * 2) for _ in range(args.products)
        ]
        scarce = await list_product(connection, http, seller_id, stock=args.orders // 2)

        def reserve(product: str) -> Callable[[], Awaitable[dict[str, Any]]]:
            body = {"order_id": str(uuid.uuid4()), "lines": [{"product_id": product, "quantity": 1}]}
            return lambda: bus.call(RESERVE_STOCK.routing_key, body, token=token, within=120)

        def commit(order_id: str) -> Callable[[], Awaitable[dict[str, Any]]]:
            return lambda: bus.call(COMMIT_STOCK.routing_key, {"order_id": order_id}, token=token, within=120)

        # A short warm-up: connections, token verification keys, query plans.
        await _run_quietly([reserve(products[0]) for _ in range(50)], args.concurrency)
        print(
            f"\n{'phase':<10} {'calls':>6} {'conc':>5} {'per sec':>10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
            f"{'mean ms':>8}"
        )
        costs: list[str] = []
        spread = await _run(
            "spread", [reserve(random.choice(products)) for _ in range(args.orders)], args.concurrency, books, costs
        )
        contended = await _run(
            "contended", [reserve(scarce) for _ in range(args.orders)], args.concurrency, books, costs
        )
        reserved = [r["data"]["order_id"] for r in spread if r["ok"] and r["data"]["status"] == "reserved"]
        await _run("commit", [commit(order_id) for order_id in reserved], args.concurrency, books, costs)
        print("", *costs, sep="\n")

        won = sum(1 for r in contended if r["ok"] and r["data"]["status"] == "reserved")
        async with http.get(f"/api/inventory/{scarce}") as resp:
            left = (await resp.json())["stock"]
        print(
            f"\ncontended: {won} of {args.orders} reserved for {args.orders // 2} units, stock left {left}; "
            f"spread: {len(reserved)} of {args.orders} reserved"
        )
    await connection.close()


async def _run_quietly(calls: list[Callable[[], Awaitable[dict[str, Any]]]], concurrency: int) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        async with semaphore:
            await call()

    await asyncio.gather(*(one(call) for call in calls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2000, help="reservations per phase (default 2000)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (default 64)")
    parser.add_argument("--products", type=int, default=20, help="products in the spread phase (default 20)")
    parser.add_argument("--inventory-workers", type=int, default=1, help="inventory worker processes (default 1)")
    args = parser.parse_args()

    env = test_env()
    print(f"slot {SLOT}: database {DATABASE}, vhost {VHOST}; {machine()}")
    reset_database(env)
    reset_vhost()
    workers = [worker(name, env) for name in SERVICES if name != "catalog"]
    inventory = next(w for w in workers if w.name == "worker-inventory")
    inventory.args += ["--workers", str(args.inventory_workers)]
    with running([*workers, edge(env)]):
        print(f"inventory: {args.inventory_workers} process(es), prefetch {env.get('AGORA_PREFETCH', '16')} each")
        # Every process a reservation costs something: the inventory worker, and the orders
        # worker, which hears every reservation event (and ignores orders it does not know).
        named = {w.name.removeprefix("worker-"): w for w in workers}
        metrics = {"inventory": f"http://127.0.0.1:{inventory.port}/metrics"}
        books = accounting(env, {name: named[name] for name in ("inventory", "orders")}, metrics)
        asyncio.run(bench(args, env, books))


if __name__ == "__main__":
    main()
