"""What a PostgreSQL failover loses, and what synchronous replication costs (run it with
scripts/bench_failover, which starts a fresh scripts/pg-pair).

Agora runs as scripts/bench runs it (the edge and the users, inventory, orders and
payments workers, the settings' own saga deadlines), every process given both database
addresses. Two measurements, printed and never asserted:

1. **The cost.** Orders at `--concurrency` in flight for `--seconds`, with the standby
   asynchronous, then synchronous, `--rounds` times side by side: orders/s, latency from
   the POST to the confirmed event, and CPU per order (both PostgreSQL servers counted).
2. **The loss.** `--kills` times for each mode: orders flow unpaced for `--before`
   seconds, the primary is SIGKILLed, its standby promoted `--detection` seconds later,
   orders flow `--after` seconds more, then the dead node is rebuilt as the new
   primary's standby. For each kill: the transactions the dead primary had committed
   that its standby never received (counted in the dead primary's WAL with pg_waldump,
   from the position the standby last received), the orders a client saw confirmed
   that the promoted database does not hold as confirmed, the accepted orders it does
   not hold at all, the orders that never reached a final state, and the longest time
   without a confirmation.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import aiohttp
import asyncpg

from db.engine import asyncpg_dsn
from harness.broker import reset_vhost
from harness.database import reset_database
from harness.environment import DATABASE, ROOT, SERVICES_ENV, SLOT, VHOST
from harness.processes import Process, edge, payment_sandbox, start_together, worker
from scripts.lib.accounting import Accounting, accounting
from scripts.lib.bench_orders import (
    ADDRESS,
    AGORA_WORKERS,
    LEFT_OUT,
    Confirmations,
    Figures,
    Shop,
    _interrupted,
    agora_shop,
    bench_env,
    measure,
)
from scripts.lib.benchlib import LATENCY_HEADER, machine

PAIR = str(ROOT / "scripts" / "pg-pair")
PG_BINDIR = Path(SERVICES_ENV.get("AGORA_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
SETTLE_SECONDS = 90


def pair(*args: str) -> str:
    return subprocess.run([PAIR, *args], check=True, capture_output=True, text=True).stdout.strip()


def data_dir(node: int) -> Path:
    return ROOT / ".run" / "pg-pair" / f"node{node}" / "postgres" / "data"


def commits_after(node: int, lsn: str) -> int:
    """Transactions committed in `node`'s WAL after `lsn`, on its newest timeline."""
    wal = data_dir(node) / "pg_wal"
    timelines = [int(p.name[:8], 16) for p in wal.iterdir() if re.fullmatch(r"[0-9A-F]{24}", p.name)]
    out = subprocess.run(
        [str(PG_BINDIR / "pg_waldump"), "-p", str(wal), "-t", str(max(timelines)), "-s", lsn],
        capture_output=True,
        text=True,
    ).stdout
    return sum(1 for line in out.splitlines() if "desc: COMMIT" in line)


@dataclass
class Kill:
    mode: str
    lost_commits: int = 0
    confirmed_then_lost: int = 0
    accepted_then_lost: int = 0
    unfinished: int = 0
    orders: int = 0
    longest_gap: float = 0.0
    confirmed_at: list[float] = field(default_factory=list)

    def row(self) -> str:
        return (
            f"{self.mode:<6} {self.orders:>7} {self.lost_commits:>13} {self.confirmed_then_lost:>19} "
            f"{self.accepted_then_lost:>18} {self.unfinished:>10} {self.longest_gap:>12.1f}"
        )


async def failover(shop: Shop, env: dict[str, str], mode: str, args: argparse.Namespace) -> Kill:
    """Orders through one SIGKILL of the primary and its standby's promotion."""
    kill = Kill(mode)
    pair("sync", "on" if mode == "sync" else "off")
    primary = int(pair("primary"))
    standby = 3 - primary
    accepted: list[str] = []
    confirmed: list[str] = []
    began = time.monotonic()
    stop = asyncio.Event()
    connection = await aio_pika.connect_robust(env["AGORA_AMQP_URL"])
    confirmations = Confirmations()
    await confirmations.listen(connection, shop.events_exchange)

    async def lane(http: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            body = {
                "items": [{"product_id": random.choice(shop.products), "quantity": 1}],
                "shipping_address": ADDRESS,
                "payment_token": "tok_visa",
            }
            headers = {"Authorization": f"Bearer {random.choice(shop.tokens)}", "Idempotency-Key": str(uuid.uuid4())}
            while True:  # the same key until the edge accepts it
                try:
                    async with http.post("/api/orders", json=body, headers=headers) as resp:
                        if resp.status == 202:
                            order_id = str((await resp.json())["order_id"])
                            break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.2)
            accepted.append(order_id)
            if await confirmations.status(order_id) == "confirmed":
                confirmed.append(order_id)
                kill.confirmed_at.append(time.monotonic() - began)

    async with aiohttp.ClientSession(shop.base_url, timeout=aiohttp.ClientTimeout(total=30)) as http:
        lanes = [asyncio.create_task(lane(http)) for _ in range(args.concurrency)]
        await asyncio.sleep(args.before)
        killed_at = time.monotonic() - began
        await asyncio.to_thread(pair, "kill", str(primary))
        received = await asyncio.to_thread(pair, "received", str(standby))
        await asyncio.sleep(args.detection)
        await asyncio.to_thread(pair, "promote", str(standby))
        await asyncio.sleep(args.after)
        stop.set()
        await asyncio.gather(*lanes)
    await connection.close()
    kill.lost_commits = commits_after(primary, received)
    kill.orders = len(accepted)
    marks = sorted(t for t in kill.confirmed_at if t >= killed_at)
    kill.longest_gap = max((b - a for a, b in zip([killed_at, *marks], marks, strict=False)), default=args.after)

    conn = await asyncpg.connect(asyncpg_dsn(env["AGORA_DATABASE_URL"]))
    try:
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            rows = await conn.fetch(
                "SELECT order_id::text AS id, status, step FROM orders.orders WHERE order_id = ANY($1::uuid[])",
                accepted,
            )
            unfinished = [r for r in rows if r["status"] not in ("confirmed", "cancelled") or r["step"] != "done"]
            if not unfinished or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
    finally:
        await conn.close()
    status = {r["id"]: r["status"] for r in rows}
    kill.unfinished = len(unfinished)
    kill.accepted_then_lost = sum(1 for o in accepted if o not in status)
    kill.confirmed_then_lost = sum(1 for o in confirmed if status.get(o) != "confirmed")
    await asyncio.to_thread(pair, "rejoin", str(primary))
    return kill


def books(processes: dict[str, Process], env: dict[str, str]) -> Accounting:
    """bench_orders' books, with both servers of the pair."""
    metrics = {name: f"http://127.0.0.1:{p.port}/metrics" for name, p in processes.items() if name in AGORA_WORKERS}
    primary = int(pair("primary"))
    servers = {"postgres": data_dir(primary), "postgres standby": data_dir(3 - primary)}
    return accounting(env, processes, metrics, {name: d / "postmaster.pid" for name, d in servers.items()})


async def bench(env: dict[str, str], args: argparse.Namespace, processes: dict[str, Process]) -> None:
    shop = await agora_shop(env, args)
    accounts = books(processes, env)
    costs: list[Figures] = []
    for _ in range(args.rounds):
        for mode in ("async", "sync"):
            pair("sync", "on" if mode == "sync" else "off")
            costs.append(await measure(mode, shop, env, args.concurrency, args, accounts))
    print(f"\n{'standby':<10} {'lanes':>5} {'orders':>7} {'failed':>6} {'per sec':>8} {'CPU ms':>7} {LATENCY_HEADER}")
    for figures in costs:
        print(figures.row())
    for figures in costs[:2]:
        print(f"\n{figures.pipeline}, {figures.concurrency} in flight, {figures.cost.units} orders:")
        print("\n".join(figures.cost.lines(LEFT_OUT)))
    kills = [await failover(shop, env, mode, args) for _ in range(args.kills) for mode in ("async", "sync")]
    print(
        f"\nfailovers: {args.concurrency} in flight, the primary SIGKILLed after {args.before:g} s, "
        f"its standby promoted {args.detection:g} s later"
    )
    print(
        f"{'mode':<6} {'orders':>7} {'lost commits':>13} {'confirmed, then lost':>19} "
        f"{'accepted, then lost':>18} {'unfinished':>10} {'longest gap':>12}"
    )
    for kill in kills:
        print(kill.row())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=16, help="orders in flight (default 16)")
    parser.add_argument("--seconds", type=float, default=20, help="measured time per cost run (default 20)")
    parser.add_argument("--warmup", type=float, default=5, help="unmeasured time before each (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="async and sync cost runs, side by side (default 2)")
    parser.add_argument("--kills", type=int, default=3, help="failovers per mode (default 3)")
    parser.add_argument("--before", type=float, default=8, help="seconds of orders before a kill (default 8)")
    parser.add_argument("--detection", type=float, default=2, help="seconds from a kill to the promotion (default 2)")
    parser.add_argument("--after", type=float, default=8, help="seconds of orders after it (default 8)")
    parser.add_argument("--members", type=int, default=32, help="members placing orders (default 32)")
    parser.add_argument("--products", type=int, default=10, help="products ordered from (default 10)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupted)

    env = bench_env()
    print(f"slot {SLOT}: database {DATABASE} on scripts/pg-pair, vhost {VHOST}; {machine()}")
    reset_database(env)
    reset_vhost()
    sandbox = payment_sandbox(env)
    agora = {**{name: worker(name, env) for name in AGORA_WORKERS}, "edge": edge(env)}
    try:
        sandbox.start()
        start_together(list(agora.values()))
        asyncio.run(bench(env, args, {**agora, "payment sandbox": sandbox}))
    finally:
        for process in [*agora.values(), sandbox]:
            process.stop()


if __name__ == "__main__":
    main()
