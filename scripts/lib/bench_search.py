"""Search latency over a large catalog (run it with scripts/bench_search).

Seeds `--products` products (the demo catalog through the API, the rest in bulk, as
`agora seed --products N` does), waits until the catalog's events are handled (so the
workers are idle), then runs each kind of search `--requests` times at `--concurrency`
requests in flight through the edge (HTTP → RPC → catalog worker → PostgreSQL), and
the same queries straight against PostgreSQL (the catalog's own query function,
one connection), and prints latency percentiles. The figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable

import aiohttp
from sqlalchemy import text

from contracts.catalog import SearchProducts
from db.engine import make_engine, make_sessionmaker
from harness.accounts import create_admin
from harness.broker import queue_info, reset_vhost
from harness.database import reset_database
from harness.environment import DATABASE, HTTP_PORT, ROOT, SLOT, VHOST, test_env
from harness.processes import edge, running, worker
from kernel.settings import SERVICES
from scripts.lib.benchlib import LATENCY_HEADER, latency_columns, machine, timed
from workers.catalog.search import search_products

QUERIES: dict[str, dict[str, str]] = {
    "browse newest": {"limit": "20"},
    "category tree": {"category": "electronics", "sort": "price_asc", "limit": "20"},
    "one word": {"q": "lamp", "limit": "20"},
    "two words": {"q": "wireless headphones", "limit": "20"},
    "typo": {"q": "headphnes", "limit": "20"},
    "phrase -excl": {"q": '"desk lamp" -walnut', "limit": "20"},
    "q + filters": {"q": "kettle", "in_stock": "true", "min_price": "10", "max_price": "500", "limit": "20"},
    "q + price sort": {"q": "chair", "sort": "price_desc", "limit": "20"},
    "rare word": {"q": "kettlebell vandelay", "limit": "20"},
}


_HEADER = LATENCY_HEADER


def _line(name: str, latencies: list[float], elapsed: float | None = None) -> str:
    rate = f"{len(latencies) / elapsed:>9.0f}" if elapsed else f"{'':>9}"
    return f"{name:<16} {len(latencies):>6} {rate} {latency_columns(latencies)}"


async def _wait_until_idle(env: dict[str, str], within: float) -> None:
    """Until the bulk products' events went round (outbox sent, stock queues drained)."""
    engine = make_engine(env["AGORA_DATABASE_URL"], pool_size=1)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                unsent = await conn.scalar(
                    text(
                        "SELECT (SELECT count(*) FROM catalog.outbox WHERE sent_at IS NULL)"
                        " + (SELECT count(*) FROM inventory.outbox WHERE sent_at IS NULL)"
                    )
                )
            queued = sum(
                int(str(queue_info(q).get("messages", 0)))
                for q in ("inventory.on_catalog_product_created_v1", "catalog.on_inventory_stock_changed_v1")
            )
            if not unsent and not queued:
                return
            print(f"  waiting for events: {unsent} unsent outbox rows, {queued} queued deliveries", flush=True)
            await asyncio.sleep(5)
        print("  (gave up waiting: the figures below ran beside event handling)")
    finally:
        await engine.dispose()


async def bench(args: argparse.Namespace, env: dict[str, str]) -> None:
    print(f"\n{'through the edge':<16} {'calls':>6} {'per sec':>9} {_HEADER}")
    async with aiohttp.ClientSession(f"http://127.0.0.1:{HTTP_PORT}") as http:

        def call(params: dict[str, str]) -> Callable[[], Awaitable[None]]:
            async def one() -> None:
                async with http.get("/api/products", params=params) as resp:
                    assert resp.status == 200, await resp.text()
                    await resp.read()

            return one

        for params in QUERIES.values():  # warm-up: connections, plans, caches
            for _ in range(5):
                await call(params)()
        for name, params in QUERIES.items():
            _, latencies, elapsed = await timed([call(params) for _ in range(args.requests)], args.concurrency)
            print(_line(name, latencies, elapsed))
        # Deep pages: following `next_cursor` ten pages into a broad listing.
        deep: list[float] = []
        for params in ({"limit": "20"}, {"q": "lamp", "limit": "20"}, {"category": "home", "sort": "price_asc"}):
            cursor: str | None = None
            for _ in range(10):
                started = time.perf_counter()
                async with http.get("/api/products", params={**params, **({"cursor": cursor} if cursor else {})}) as r:
                    cursor = (await r.json())["next_cursor"]
                deep.append(time.perf_counter() - started)
                if cursor is None:
                    break
        print(_line("next pages", deep))

    print(f"\n{'in PostgreSQL':<16} {'calls':>6} {'':>9} {_HEADER}")
    engine = make_engine(env["AGORA_DATABASE_URL"], pool_size=1)
    sessions = make_sessionmaker(engine)
    try:
        for name, params in QUERIES.items():
            query = SearchProducts.model_validate(params)
            latencies = []
            for _ in range(max(20, args.requests // 5)):
                started = time.perf_counter()
                async with sessions() as session:
                    await search_products(session, query)
                latencies.append(time.perf_counter() - started)
            print(_line(name, latencies))
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=100_000, help="catalog size (default 100000)")
    parser.add_argument("--requests", type=int, default=300, help="requests per kind of search (default 300)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument("--catalog-workers", type=int, default=1, help="catalog worker processes (default 1)")
    parser.add_argument("--wait", type=float, default=900, help="seconds to wait for event handling (default 900)")
    parser.add_argument("--reuse", action="store_true", help="keep the slot's database (already seeded)")
    args = parser.parse_args()

    env = test_env()
    print(f"slot {SLOT}: database {DATABASE}, vhost {VHOST}; {machine()}")
    if not args.reuse:
        reset_database(env)
        reset_vhost()
    workers = [worker(name, env) for name in SERVICES]
    catalog = next(w for w in workers if w.name == "worker-catalog")
    catalog.args += ["--workers", str(args.catalog_workers)]
    with running([*workers, edge(env)]):
        operator = create_admin(env)
        as_admin = {"AGORA_ADMIN_EMAIL": operator["email"], "AGORA_ADMIN_PASSWORD": operator["password"]}
        started = time.perf_counter()
        seeded = subprocess.run(
            [str(ROOT / ".venv/bin/agora"), "seed", "--products", str(args.products)],
            env={**env, **as_admin},
            cwd=ROOT,
            timeout=3600,
        )
        if seeded.returncode:
            raise SystemExit("seeding failed")
        print(f"seeded {args.products} products in {time.perf_counter() - started:.0f} s")
        asyncio.run(_wait_until_idle(env, args.wait))
        asyncio.run(bench(args, env))


if __name__ == "__main__":
    main()
