"""What a benchmark's work cost, measured rather than read from code: CPU time per
process from the operating system (/proc), messages published and delivered from
RabbitMQ's management API, database transactions and round trips from the processes'
own counters (`agora_db_round_trips_total`, db/engine.py) or, for a process without
them, from PostgreSQL's statistics.

Around the measured work: `cpu()` when it starts and when it ends; `counts()` once the
system is quiet before it and after it (RabbitMQ updates its statistics every few
seconds, so wait `STATISTICS_INTERVAL_SECONDS` of quiet first); `cost(...)` divides the
differences by the units of work (orders).
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import asyncpg

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
