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

import asyncio
import itertools
import os
import subprocess
import time
from collections import Counter
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
from harness.accounts import bearer
from harness.broker import queue_info
from harness.stack import Stack
from tests.chaos.test_order_chaos import (
    ADDRESS,
    STOCK,
    ledger,
    orders_table,
    shop,
    stock_outcome,
    unsent_outbox_rows,
)

pytestmark = pytest.mark.skipif(
    not os.environ.get("AGORA_TEST_BROKER_PORTS"), reason="needs the RabbitMQ cluster: run scripts/test-cluster"
)

CLUSTER = environment.ROOT / "scripts" / "cluster"
IN_FLIGHT = 4
# Each lane places at most one order per this many seconds (12 a second in all): a
# steady stream well below what the pipeline takes, so what the figures show is the
# node losses, not a backlog growing behind the edge's 202s.
PACE_SECONDS = 1 / 3
# Each step, and how long after the previous one ended (a node's start ends when it
# is back in the cluster): orders flow throughout, and for AFTER_SECONDS after the last.
TIMELINE = (("kill", 1, 10.0), ("start", 1, 10.0), ("kill", 2, 15.0), ("start", 2, 10.0))
AFTER_SECONDS = 15.0
QUIESCENCE_SECONDS = 180
OUTBOX_DRAIN_SECONDS = 120


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
    products, members = await shop(http, amqp, db, admin)
    async with db.connect() as conn:
        started_at = await conn.scalar(text("SELECT now()"))
    accepted: list[float] = []  # when each order was accepted, seconds from the start
    statuses: Counter[int] = Counter()
    order_ids: list[str] = []
    began = time.monotonic()
    stop = asyncio.Event()

    async def lane(lane_index: int) -> None:
        n = 0
        while not stop.is_set():
            placing = time.monotonic()
            member = members[(lane_index + n) % len(members)]
            key = f"cluster-{lane_index}-{n}"
            body = {
                "items": [{"product_id": products[n % len(products)], "quantity": 1}],
                "shipping_address": ADDRESS,
                "payment_token": "tok_visa",
            }
            give_up = time.monotonic() + 120
            while True:  # the same key until the edge accepts it
                assert time.monotonic() < give_up, f"order {key} not accepted in 120 s: {dict(statuses)}"
                try:
                    async with http.post(
                        "/api/orders",
                        json=body,
                        headers={**bearer(member["access_token"]), "Idempotency-Key": key},
                        timeout=aiohttp.ClientTimeout(total=15),
                    ) as resp:
                        statuses[resp.status] += 1
                        if resp.status == 202:
                            order_ids.append(str((await resp.json())["order_id"]))
                            accepted.append(time.monotonic() - began)
                            break
                        assert resp.status >= 500, await resp.text()
                except (aiohttp.ClientError, TimeoutError):
                    statuses[0] += 1
                await asyncio.sleep(0.2)
            n += 1
            await asyncio.sleep(max(0.0, PACE_SECONDS - (time.monotonic() - placing)))

    async def faults() -> list[tuple[str, int, float]]:
        done = []
        for action, node, after in TIMELINE:
            await asyncio.sleep(after)
            await asyncio.to_thread(subprocess.run, [str(CLUSTER), action, str(node)], check=True, capture_output=True)
            done.append((action, node, time.monotonic() - began))
        await asyncio.sleep(AFTER_SECONDS)
        stop.set()
        return done

    lanes = [asyncio.create_task(lane(i)) for i in range(IN_FLIGHT)]
    struck = await faults()
    await asyncio.gather(*lanes)
    last_fault = began + struck[-1][2]

    # Every order decided and its saga done.
    deadline = time.monotonic() + QUIESCENCE_SECONDS
    while True:
        orders = await orders_table(db, order_ids)
        if len(orders) == len(order_ids) and all(
            r.status in ("confirmed", "cancelled") and r.step == "done" for r in orders
        ):
            break
        assert time.monotonic() < deadline, Counter((r.status, r.step) for r in orders)
        await asyncio.sleep(0.5)
    settled_after = time.monotonic() - last_fault

    assert len(set(order_ids)) == len(order_ids)
    confirmed = [r for r in orders if r.status == "confirmed"]
    cancelled = [r for r in orders if r.status == "cancelled"]
    assert all(r.payment == "captured" and r.reservation == "committed" for r in confirmed)
    stock = await stock_outcome(db, products, orders)
    shelves, committed = stock["stock"], stock["committed"]
    assert all(s.available >= 0 and s.reserved == 0 for s in shelves.values())
    assert all(shelves[p].available + committed[p] == STOCK for p in products)
    assert committed == stock["ordered"]
    book = await ledger(order_ids)
    captured = sum(entry["captured"] for entry in book.values())
    assert captured == sum(r.total_minor for r in confirmed)
    assert all(book[r.order_id]["captures"] == 1 for r in confirmed)
    assert max(entry["captures"] for entry in book.values()) <= 1
    assert sum(book[r.order_id]["live_authorizations"] for r in cancelled) == 0
    # Rows whose publish failed while a node was going (the connection cut under it) are
    # the relay's to send: its sweep of leftovers, with a backoff after failures.
    drain_deadline = time.monotonic() + OUTBOX_DRAIN_SECONDS
    unsent = await unsent_outbox_rows(db, started_at)
    while sum(unsent.values()) and time.monotonic() < drain_deadline:
        await asyncio.sleep(1)
        unsent = await unsent_outbox_rows(db, started_at)
    assert sum(unsent.values()) == 0, unsent
    drained_after = time.monotonic() - last_fault

    # Orders accepted per second in each phase, and the longest wait between two.
    edges = [0.0, *(at for _, _, at in struck), struck[-1][2] + AFTER_SECONDS]
    names = ["before", "node 1 down", "node 1 back", "node 2 down", "node 2 back"]
    phases = []
    for name, start, end in zip(names, edges[:-1], edges[1:], strict=True):
        inside = sorted(t for t in accepted if start <= t < end)
        marks = [start, *inside, end]
        longest = max(b - a for a, b in itertools.pairwise(marks))
        phases.append(f"{name:<12} {len(inside) / max(end - start, 0.1):6.1f}/s  longest gap {longest:.1f} s")
    figures = (
        f"\nnode loss: {len(order_ids)} orders, {IN_FLIGHT} in flight, through a 3-node RabbitMQ cluster\n"
        + "".join(f"  {line}\n" for line in phases)
        + f"  faults       {', '.join(f'{a} node {n} done at {t:.1f} s' for a, n, t in struck)}\n"
        + f"  answers      {dict(sorted(statuses.items()))} (0 = no answer; each retried with its key)\n"
        + f"  outcome      {len(confirmed)} confirmed, {len(cancelled)} cancelled "
        + f"{dict(Counter(r.cancel_reason for r in cancelled))};\n"
        + f"               every saga done {settled_after:.1f} s after the last fault\n"
        + f"  money        captured {captured / 100:.2f} = confirmed total\n"
        + f"  outbox       every row sent {drained_after:.1f} s after the last fault\n"
    )
    (environment.ARTIFACTS / "node-loss.txt").write_text(figures)
    with capsys.disabled():
        print(figures)
