"""Search latency over a large catalog (run it with scripts/bench_search).

Seeds `--products` products (the demo catalog through the API, the rest in bulk, as
`agora seed --products N` does), waits until the catalog's events are handled (so the
workers are idle), then runs each kind of search `--requests` times at `--concurrency`
requests in flight through the edge (HTTP → RPC → catalog worker → PostgreSQL), and
the same queries straight against PostgreSQL (the catalog's own query functions, one
connection, no RPC), and prints latency percentiles. The figures are printed, never
asserted.

The edge's cache is bypassed: before each request the benchmark bumps the listings'
generation in Redis (what a product event does), and requests in flight together
differ in `limit` (20-27 for searches, 3-10 for suggestions), so every request is a
cache miss that reaches the catalog worker, never a hit nor a wait on another's load.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from redis.asyncio import Redis
from sqlalchemy import text

from contracts.catalog import SearchProducts, SuggestProducts
from db.engine import make_engine
from edge.cache import ReadCache
from harness.accounts import create_admin
from harness.broker import queue_info, reset_vhost
from harness.database import reset_database
from harness.environment import DATABASE, HTTP_PORT, ROOT, SERVICES_ENV, SLOT, VHOST, test_env
from harness.processes import Process, edge, running, worker
from kernel.settings import SERVICES
from scripts.lib.accounting import pid_from_file, tree_cpu_seconds
from scripts.lib.benchlib import LATENCY_HEADER, latency_columns, machine, timed
from workers.catalog.search import search_products, suggest_products

SEARCH = "/api/products"
SUGGEST = "/api/products/suggest"
# name → (path, query). The first seven are the issue's; the others for comparison.
QUERIES: dict[str, tuple[str, dict[str, str]]] = {
    "browse newest": (SEARCH, {}),
    "category + price": (
        SEARCH,
        {"category": "electronics", "currency": "USD", "min_price": "20", "max_price": "400", "sort": "price_asc"},
    ),
    "one word": (SEARCH, {"q": "lamp"}),
    "two words": (SEARCH, {"q": "wireless headphones"}),
    "a typo": (SEARCH, {"q": "headphnes"}),
    "words + filters": (
        SEARCH,
        {"q": "portable kettle", "in_stock": "true", "currency": "USD", "min_price": "10", "max_price": "500"},
    ),
    "autocomplete": (SUGGEST, {"q": "wireless hea"}),
    "transposition": (SEARCH, {"q": "lmap"}),
    "phrase -excl": (SEARCH, {"q": '"desk lamp" -walnut'}),
    "words, price order": (SEARCH, {"q": "chair", "sort": "price_desc", "currency": "USD"}),
    "rare words": (SEARCH, {"q": "kettlebell vandelay"}),
    "autocomplete typo": (SUGGEST, {"q": "wirelss hea"}),
}
_LANES = 8


def _line(name: str, latencies: list[float], elapsed: float | None = None) -> str:
    rate = f"{len(latencies) / elapsed:>9.0f}" if elapsed else f"{'':>9}"
    return f"{name:<20} {len(latencies):>6} {rate} {latency_columns(latencies)}"


def _distinct(path: str, params: dict[str, str], i: int) -> dict[str, str]:
    """The `i`-th request's parameters: a `limit` no request in flight with it has."""
    base = 3 if path == SUGGEST else 20
    return {**params, "limit": str(base + i % _LANES)}


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


class _Cpu:
    """CPU time per request of each process in the path (from /proc), to show where the
    time at the edge goes. PostgreSQL's is the whole server's (its idle workers' too)."""

    def __init__(self, edge_process: Process, catalog: Process) -> None:
        run_dir = Path(SERVICES_ENV["AGORA_RUN_DIR"])
        assert edge_process.proc is not None and catalog.proc is not None
        self.pids = {
            "edge": edge_process.proc.pid,
            "catalog": catalog.proc.pid,
            "rabbitmq": pid_from_file(run_dir / "rabbitmq" / "rabbitmq.pid"),
            "postgres": pid_from_file(run_dir / "postgres" / "data" / "postmaster.pid"),
            "redis": pid_from_file(run_dir / "redis" / "redis.pid"),
        }
        self.rows: list[str] = []

    def now(self) -> dict[str, float]:
        own = os.times()
        return {**{n: tree_cpu_seconds(p) for n, p in self.pids.items()}, "client": own.user + own.system}

    def add(self, name: str, before: dict[str, float], requests: int) -> None:
        after = self.now()
        per = {n: 1000 * (after[n] - before[n]) / requests for n in before}
        self.rows.append(f"{name:<20} " + " ".join(f"{per[n]:>8.2f}" for n in before))

    def print(self) -> None:
        print(f"\n{'CPU ms per request':<20} " + " ".join(f"{n:>8}" for n in [*self.pids, "client"]))
        print("\n".join(self.rows))


async def _through_the_edge(args: argparse.Namespace, env: dict[str, str], cpu: _Cpu) -> None:
    print(f"\n{'through the edge':<20} {'calls':>6} {'per sec':>9} {LATENCY_HEADER}")
    cache = ReadCache(Redis.from_url(env["AGORA_REDIS_URL"], decode_responses=True))
    async with aiohttp.ClientSession(f"http://127.0.0.1:{HTTP_PORT}") as http:

        def call(path: str, params: dict[str, str]) -> Callable[[], Awaitable[float]]:
            async def one() -> float:
                await cache.invalidate([])  # what a product event does: no listing is cached now
                started = time.perf_counter()
                async with http.get(path, params=params) as resp:
                    assert resp.status == 200, await resp.text()
                    await resp.read()
                return time.perf_counter() - started

            return one

        for path, params in QUERIES.values():  # warm-up: connections, plans, caches
            for i in range(_LANES):
                await call(path, _distinct(path, params, i))()
        for name, (path, params) in QUERIES.items():
            calls = [call(path, _distinct(path, params, i)) for i in range(args.requests)]
            before = cpu.now()
            latencies, _, elapsed = await timed(calls, args.concurrency)
            cpu.add(name, before, args.requests)
            print(_line(name, latencies, elapsed), flush=True)
        # Deep pages: following `next_cursor` ten pages into a broad listing.
        deep: list[float] = []
        starts = (
            {"limit": "20"},
            {"q": "lamp", "limit": "20"},
            {"category": "home", "sort": "price_asc", "currency": "USD", "limit": "20"},
        )
        for params in starts:
            cursor: str | None = None
            for _ in range(10):
                await cache.invalidate([])
                started = time.perf_counter()
                async with http.get(SEARCH, params={**params, **({"cursor": cursor} if cursor else {})}) as r:
                    cursor = (await r.json())["next_cursor"]
                deep.append(time.perf_counter() - started)
                if cursor is None:
                    break
        print(_line("next pages", deep))
    await cache.close()
    cpu.print()


async def _in_postgresql(args: argparse.Namespace, env: dict[str, str]) -> None:
    print(f"\n{'in PostgreSQL':<20} {'calls':>6} {'':>9} {LATENCY_HEADER}")
    engine = make_engine(env["AGORA_DATABASE_URL"], pool_size=1)
    try:
        async with engine.connect() as conn:
            db: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection

            def query(path: str, params: dict[str, str]) -> Callable[[], Awaitable[Any]]:
                if path == SUGGEST:
                    suggestion = SuggestProducts.model_validate(params)
                    return lambda: suggest_products(db, suggestion)
                search = SearchProducts.model_validate(params)
                return lambda: search_products(db, search)

            for name, (path, params) in QUERIES.items():
                run = query(path, params)
                latencies = []
                for _ in itertools.repeat(None, max(20, args.requests // 5)):
                    started = time.perf_counter()
                    async with db.transaction():  # the worker's unit of work is one transaction too
                        await run()
                    latencies.append(time.perf_counter() - started)
                print(_line(name, latencies), flush=True)
    finally:
        await engine.dispose()


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


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
    the_edge = edge(env)
    with running([*workers, the_edge]):
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
        print(
            f"catalog workers: {args.catalog_workers}; {args.concurrency} in flight; load average before: {_load()}",
            flush=True,
        )
        asyncio.run(_through_the_edge(args, env, _Cpu(the_edge, catalog)))
        print(f"load average after the edge runs: {_load()}")
        asyncio.run(_in_postgresql(args, env))


if __name__ == "__main__":
    main()
