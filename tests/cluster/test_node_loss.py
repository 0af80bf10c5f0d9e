"""Orders through the loss of RabbitMQ nodes (issue 16): Agora against the three-node
cluster of scripts/cluster, every process connected through its balancer, a steady
stream of orders while node 1 is SIGKILLed and later started again, then node 2.

Afterwards every order is in a final state, no stock is oversold, the money balances
(captured = the confirmed orders' totals, no order captured twice, no live authorization
on a cancelled order) and no outbox row is left unsent. The figures are printed: orders
accepted per second before, during and after each node loss, and the longest gap.

Run by scripts/test-cluster (it starts the cluster and sets AGORA_TEST_BROKER_PORTS);
skipped in the main suite, whose broker is a single node.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import pytest
from aio_pika.abc import AbstractRobustConnection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.inventory import RESERVE_STOCK
from contracts.orders import PLACE_ORDER
from contracts.payments import AUTHORIZE_PAYMENT
from harness import environment
from harness.broker import queue_info
from harness.stack import Stack
from tests.chaos.test_order_chaos import shop
from tests.cluster.steady_orders import IN_FLIGHT, Step, check_promises, figures, run_through

pytestmark = pytest.mark.skipif(
    not os.environ.get("AGORA_TEST_BROKER_PORTS"), reason="needs the RabbitMQ cluster: run scripts/test-cluster"
)

CLUSTER = str(environment.ROOT / "scripts" / "cluster")
# Orders flow throughout, and for 15 s after the last step (a node's start ends when it
# is back in the cluster).
TIMELINE = (
    Step(10.0, (CLUSTER, "kill", "1"), "node 1 down"),
    Step(10.0, (CLUSTER, "start", "1"), "node 1 back"),
    Step(15.0, (CLUSTER, "kill", "2"), "node 2 down"),
    Step(10.0, (CLUSTER, "start", "2"), "node 2 back"),
)


async def test_orders_keep_their_promises_through_the_loss_of_broker_nodes(
    stack: Stack,
    http: aiohttp.ClientSession,
    amqp: AbstractRobustConnection,
    db: AsyncEngine,
    admin: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Agora's queues are quorum queues with a member on each node.
    for queue in (PLACE_ORDER.queue, RESERVE_STOCK.queue, AUTHORIZE_PAYMENT.queue):
        members_of_queue = queue_info(queue).get("members")
        assert isinstance(members_of_queue, list) and len(members_of_queue) == 3, (queue, members_of_queue)
    products, members, _voucher = await shop(http, amqp, db, admin)  # (a voucher the steady orders do not use)
    async with db.connect() as conn:
        started_at = await conn.scalar(text("SELECT now()"))
    run = await run_through(http, products, members, TIMELINE, after_last=15.0, tag="cluster")
    outcome = await check_promises(db, products, run, started_at)
    report = (
        f"\nnode loss: {len(run.order_ids)} orders, {IN_FLIGHT} in flight, through a 3-node RabbitMQ cluster\n"
        + "".join(f"  {line}\n" for line in [*figures(run, "before"), *outcome])
    )
    (environment.ARTIFACTS / "node-loss.txt").write_text(report)
    with capsys.disabled():
        print(report)
