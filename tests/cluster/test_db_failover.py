"""Orders through the loss of the PostgreSQL primary (issue 16): Agora against the
primary and standby of scripts/pg-pair, every process given both addresses (the driver
takes the one that accepts writes), a steady stream of orders while the primary is
SIGKILLed and its standby promoted, twice.

Replication is synchronous: a commit is acknowledged once the standby has it, so a
promoted standby holds every transaction any process was told had committed. (With
asynchronous replication the last ones may be lost: scripts/bench_failover measures
how many, and what synchronous replication costs.) The timeline: node 1 the primary;
it is killed, and node 2 is promoted two seconds later (failure detection, which
CloudNativePG does in Kubernetes); node 1 is rebuilt as node 2's standby and
replication is synchronous again; then node 2 is killed and node 1 promoted; node 2
rebuilt. Afterwards the chaos test's invariants hold, as in the node-loss test, and the
figures are printed: orders accepted per second in each phase and the longest gap.

Run by scripts/test-cluster (it starts the pair and sets AGORA_TEST_DATABASE_HOSTS);
skipped in the main suite, whose database has no standby.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import aiohttp
import pytest
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from harness import environment
from harness.stack import Stack
from tests.chaos.test_order_chaos import shop
from tests.cluster.steady_orders import IN_FLIGHT, Step, check_promises, figures, run_through

pytestmark = pytest.mark.skipif(
    not os.environ.get("AGORA_TEST_DATABASE_HOSTS"),
    reason="needs the PostgreSQL primary and standby: run scripts/test-cluster",
)

PAIR = str(environment.ROOT / "scripts" / "pg-pair")
# Two seconds from a primary's loss to its standby's promotion: what failure detection
# takes (CloudNativePG notices a lost primary within seconds and promotes at once).
DETECTION_SECONDS = 2.0
TIMELINE = (
    Step(10.0, (PAIR, "kill", "1"), "node 1 lost"),
    Step(DETECTION_SECONDS, (PAIR, "promote", "2"), "node 2 primary, alone"),
    Step(10.0, (PAIR, "rejoin", "1"), "node 1 rebuilt"),
    Step(0.0, (PAIR, "sync", "on"), "synchronous again"),
    Step(12.0, (PAIR, "kill", "2"), "node 2 lost"),
    Step(DETECTION_SECONDS, (PAIR, "promote", "1"), "node 1 primary, alone"),
    Step(10.0, (PAIR, "rejoin", "2"), "node 2 rebuilt"),
    Step(0.0, (PAIR, "sync", "on"), "synchronous again"),
)


def pair(*args: str) -> str:
    return subprocess.run([PAIR, *args], check=True, capture_output=True, text=True).stdout


async def test_orders_keep_their_promises_through_a_database_failover(
    stack: Stack,
    http: aiohttp.ClientSession,
    amqp: AbstractRobustConnection,
    db: AsyncEngine,
    admin: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    pair("sync", "on")
    assert pair("primary") == "1\n" and "| sync" in (status := pair("status")), status
    products, members, _voucher = await shop(http, amqp, db, admin)  # (a voucher the steady orders do not use)
    async with db.connect() as conn:
        started_at = await conn.scalar(text("SELECT now()"))
        assert await conn.scalar(text("SELECT inet_server_port()")) == int(environment.DATABASE_HOSTS[0].split(":")[1])
    run = await run_through(http, products, members, TIMELINE, after_last=10.0, tag="failover")
    async with db.connect() as conn:  # the workers followed the primary to node 1 and back
        assert await conn.scalar(text("SELECT inet_server_port()")) == int(environment.DATABASE_HOSTS[0].split(":")[1])
    assert "| sync" in (status := pair("status")), status
    outcome = await check_promises(db, products, run, started_at)
    report = (
        f"\ndatabase failover: {len(run.order_ids)} orders, {IN_FLIGHT} in flight, "
        "PostgreSQL primary + synchronous standby\n"
        + "".join(f"  {line}\n" for line in [*figures(run, "node 1 primary, sync"), *outcome])
    )
    (environment.ARTIFACTS / "db-failover.txt").write_text(report)
    with capsys.disabled():
        print(report)
