"""What a benchmark's work cost, measured rather than read from code: CPU time per
process from the operating system (/proc), messages published and delivered from
RabbitMQ's management API, database transactions and round trips from the processes'
own counters (`agora_db_round_trips_total`, db/engine.py) or, for a process without
them, from PostgreSQL's statistics.

Around the measured work: `quiet_snapshot()` once the work before it is done, and
`cost_since(snapshot, units)` once it is done itself. CPU is read at once; RabbitMQ
updates its statistics every few seconds, so its counts are read after
`STATISTICS_INTERVAL_SECONDS` of quiet. `accounting(...)` names the processes of a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import asyncpg

from db.engine import asyncpg_dsn
from harness.environment import MANAGEMENT_URL, SERVICES_ENV, VHOST
from harness.processes import Process

_TICKS = os.sysconf("SC_CLK_TCK")
# RabbitMQ's management statistics are collected every 5 s by default.
STATISTICS_INTERVAL_SECONDS = 5.5


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state is [0], ppid [1])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def tree_cpu_seconds(root: int) -> float:
    """CPU time of `root` and all its descendants, living or exited and reaped: each
    living process's own time plus what its reaped children used (cutime, cstime)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry))
    total = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        fields = _stat(pid)
        if fields is None:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        todo.extend(parents.get(pid, ()))
    return total / _TICKS


def pid_from_file(path: Path) -> int:
    return int(path.read_text().split()[0])


@dataclass
class Counts:
    published: int  # messages published into the vhost
    delivered: Counter[str]  # by consuming service (the queue's prefix)
    round_trips: Counter[str]  # by process, and "<process> transactions"
    database_transactions: int  # committed and rolled back, as PostgreSQL counts them


@dataclass(frozen=True)
class Snapshot:
    counts: Counts
    cpu: dict[str, float]


@dataclass
class Accounting:
    """How to read the figures: the processes by name (their root pid) and where to ask."""

    processes: dict[str, int]
    management_url: str  # http://user:password@host:port
    vhost: str
    dsn: str  # the database (libpq form)
    metrics_urls: dict[str, str] = field(default_factory=dict)  # process name → its /metrics

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far, by process name (this process itself: without its children)."""
        own = os.times()
        return {
            name: own.user + own.system if pid == os.getpid() else tree_cpu_seconds(pid)
            for name, pid in self.processes.items()
        }

    async def quiet_snapshot(self) -> Snapshot:
        """The figures so far, once RabbitMQ's statistics have caught up with the work
        before (call it when that work is done)."""
        await asyncio.sleep(STATISTICS_INTERVAL_SECONDS)
        return Snapshot(await self.counts(), self.cpu())

    async def cost_since(self, before: Snapshot, units: int) -> Cost:
        """What the work since `before` cost per unit (call it when the work is done): CPU
        read now, counts once RabbitMQ's statistics have caught up."""
        cpu = self.cpu()
        await asyncio.sleep(STATISTICS_INTERVAL_SECONDS)
        return cost(before.cpu, cpu, before.counts, await self.counts(), units)

    async def counts(self) -> Counts:
        conn = await asyncpg.connect(self.dsn)
        try:
            transactions = await conn.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
            )
        finally:
            await conn.close()
        return Counts(
            published=self._published(),
            delivered=self._delivered(),
            round_trips=self._round_trips(),
            database_transactions=int(transactions),
        )

    def _management(self, path: str) -> object:
        match = re.match(r"(https?://)([^:@/]+):([^@/]+)@(.+)", self.management_url)
        assert match, "the management URL carries its credentials"
        scheme, user, password, rest = match.groups()
        request = urllib.request.Request(f"{scheme}{rest}/api{path}")
        manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        manager.add_password(None, f"{scheme}{rest}", user, password)
        opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(manager))
        with opener.open(request, timeout=30) as response:
            return json.loads(response.read())

    def _published(self) -> int:
        info = self._management(f"/vhosts/{quote(self.vhost, safe='')}")
        assert isinstance(info, dict)
        return int((info.get("message_stats") or {}).get("publish", 0))

    def _delivered(self) -> Counter[str]:
        queues = self._management(f"/queues/{quote(self.vhost, safe='')}?columns=name,message_stats")
        assert isinstance(queues, list)
        delivered: Counter[str] = Counter()
        for queue in queues:
            stats = queue.get("message_stats") or {}
            delivered[queue["name"].split(".", 1)[0]] += int(stats.get("deliver_get", 0))
        return delivered

    def _round_trips(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for name, url in self.metrics_urls.items():
            with urllib.request.urlopen(url, timeout=10) as response:
                for line in response.read().decode().splitlines():
                    if line.startswith("agora_db_round_trips_total{"):
                        kind = re.search(r'kind="([^"]+)"', line)
                        value = float(line.rsplit(" ", 1)[1])
                        counts[name] += int(value)
                        if kind and kind.group(1) == "begin":
                            counts[f"{name} transactions"] += int(value)
        return counts


@dataclass
class Cost:
    """Per unit of work (an order), between two snapshots."""

    units: int
    cpu_ms: dict[str, float]
    published: float
    delivered: dict[str, float]
    round_trips: dict[str, float]
    transactions: dict[str, float]
    database_transactions: float

    def cpu_total_ms(self, left_out: tuple[str, ...]) -> float:
        """CPU per order of every process but those `left_out` (a load generator, a sandbox)."""
        return sum(ms for name, ms in self.cpu_ms.items() if name not in left_out)

    def lines(self, left_out: tuple[str, ...]) -> list[str]:
        """The cost as printed lines; the CPU total leaves out the processes `left_out`."""
        out = []
        cpu = ", ".join(f"{name} {ms:.1f}" for name, ms in self.cpu_ms.items())
        total = self.cpu_total_ms(left_out)
        out.append(f"  CPU ms per order: {total:.1f} without {' and '.join(left_out)} ({cpu})")
        delivered = ", ".join(f"{k} {v:.1f}" for k, v in sorted(self.delivered.items()) if v >= 0.05)
        out.append(
            f"  messages per order: {self.published:.1f} published, "
            f"{sum(self.delivered.values()):.1f} delivered ({delivered})"
        )
        out.append(f"  PostgreSQL transactions per order: {self.database_transactions:.1f}")
        if self.round_trips:
            trips = ", ".join(f"{k} {v:.1f}" for k, v in self.round_trips.items())
            txns = ", ".join(f"{k} {v:.1f}" for k, v in self.transactions.items())
            out.append(f"  database round trips per order: {sum(self.round_trips.values()):.1f} ({trips})")
            out.append(f"  worker transactions per order: {sum(self.transactions.values()):.1f} ({txns})")
        return out


def cost(cpu_before: dict[str, float], cpu_after: dict[str, float], before: Counts, after: Counts, units: int) -> Cost:
    n = max(units, 1)
    processes = [k for k in after.round_trips if not k.endswith(" transactions")]
    return Cost(
        units=units,
        cpu_ms={k: 1000 * (cpu_after[k] - cpu_before.get(k, 0.0)) / n for k in cpu_after},
        published=(after.published - before.published) / n,
        delivered={k: (after.delivered[k] - before.delivered[k]) / n for k in after.delivered},
        round_trips={k: (after.round_trips[k] - before.round_trips[k]) / n for k in processes},
        transactions={
            k: (after.round_trips[f"{k} transactions"] - before.round_trips[f"{k} transactions"]) / n for k in processes
        },
        database_transactions=(after.database_transactions - before.database_transactions) / n,
    )


def accounting(
    env: dict[str, str],
    processes: dict[str, Process],
    metrics: dict[str, str],
    databases: dict[str, Path] | None = None,
) -> Accounting:
    """The books of one run: its processes (`metrics`: the /metrics of those that count
    their round trips), the broker, the database (`databases`: each server's name and
    postmaster.pid, the suite's one server by default) and this load generator."""
    run_dir = Path(SERVICES_ENV["AGORA_RUN_DIR"])
    pids = {name: p.proc.pid for name, p in processes.items() if p.proc is not None}
    pids["rabbitmq"] = pid_from_file(run_dir / "rabbitmq" / "rabbitmq.pid")
    for name, pid_file in (databases or {"postgres": run_dir / "postgres" / "data" / "postmaster.pid"}).items():
        pids[name] = pid_from_file(pid_file)
    pids["load generator"] = os.getpid()
    return Accounting(pids, MANAGEMENT_URL, VHOST, asyncpg_dsn(env["AGORA_DATABASE_URL"]), metrics)
