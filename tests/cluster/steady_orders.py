"""A steady stream of orders through a timeline of faults, and what must hold afterwards:
the machinery the cluster tests share (the broker's node loss, the database's failover).

`run_through` places orders at a fixed pace from a few lanes (each retries its order with
the same Idempotency-Key until the edge accepts it) while the timeline's steps run, one
after the other. `check_promises` then waits for every saga to finish and checks the
chaos test's invariants: every order in a final state, no stock oversold, the money
balanced, no outbox row left unsent. `figures` says how many orders were accepted per
second between two steps, and the longest wait for one.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from harness.accounts import bearer
from tests.chaos.test_order_chaos import ADDRESS, STOCK, ledger, orders_table, stock_outcome, unsent_outbox_rows

IN_FLIGHT = 4
# Each lane places at most one order per this many seconds (12 a second in all): a
# steady stream well below what the pipeline takes, so what the figures show is the
# faults, not a backlog growing behind the edge's 202s.
PACE_SECONDS = 1 / 3
QUIESCENCE_SECONDS = 180
OUTBOX_DRAIN_SECONDS = 120


@dataclass(frozen=True)
class Step:
    """`command` (a script and its arguments), run `after` seconds after the previous
    step ended; `phase` names the time from its end to the next step's."""

    after: float
    command: tuple[str, ...]
    phase: str


@dataclass
class Run:
    began: float = field(default_factory=time.monotonic)
    accepted: list[float] = field(default_factory=list)  # seconds from `began`
    order_ids: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)  # 0: no answer
    done: list[tuple[str, float]] = field(default_factory=list)  # each step's phase, and when it ended
    ended: float = 0.0


async def run_through(
    http: aiohttp.ClientSession,
    products: list[str],
    members: list[dict[str, Any]],
    steps: Sequence[Step],
    *,
    after_last: float,
    tag: str,
) -> Run:
    run = Run()
    stop = asyncio.Event()

    async def lane(lane_index: int) -> None:
        n = 0
        while not stop.is_set():
            placing = time.monotonic()
            member = members[(lane_index + n) % len(members)]
            key = f"{tag}-{lane_index}-{n}"
            body = {
                "items": [{"product_id": products[n % len(products)], "quantity": 1}],
                "shipping_address": ADDRESS,
                "payment_token": "tok_visa",
            }
            give_up = time.monotonic() + 120
            while True:  # the same key until the edge accepts it
                assert time.monotonic() < give_up, f"order {key} not accepted in 120 s: {dict(run.statuses)}"
                try:
                    async with http.post(
                        "/api/orders",
                        json=body,
                        headers={**bearer(member["access_token"]), "Idempotency-Key": key},
                        timeout=aiohttp.ClientTimeout(total=15),
                    ) as resp:
                        run.statuses[resp.status] += 1
                        if resp.status == 202:
                            run.order_ids.append(str((await resp.json())["order_id"]))
                            run.accepted.append(time.monotonic() - run.began)
                            break
                        assert resp.status >= 500, await resp.text()
                except (aiohttp.ClientError, TimeoutError):
                    run.statuses[0] += 1
                await asyncio.sleep(0.2)
            n += 1
            await asyncio.sleep(max(0.0, PACE_SECONDS - (time.monotonic() - placing)))

    lanes = [asyncio.create_task(lane(i)) for i in range(IN_FLIGHT)]
    try:
        for step in steps:
            await asyncio.sleep(step.after)
            await asyncio.to_thread(subprocess.run, list(step.command), check=True, capture_output=True)
            run.done.append((step.phase, time.monotonic() - run.began))
        await asyncio.sleep(after_last)
    finally:
        stop.set()
        run.ended = time.monotonic() - run.began
        await asyncio.gather(*lanes)
    assert len(set(run.order_ids)) == len(run.order_ids)
    return run


async def check_promises(db: AsyncEngine, products: list[str], run: Run, started_at: Any) -> list[str]:
    """Wait for every saga to finish, check the invariants, and say how it ended."""
    last_fault = run.began + run.done[-1][1]
    deadline = time.monotonic() + QUIESCENCE_SECONDS
    while True:
        orders = await orders_table(db, run.order_ids)
        if len(orders) == len(run.order_ids) and all(
            r.status in ("confirmed", "cancelled") and r.step == "done" for r in orders
        ):
            break
        assert time.monotonic() < deadline, Counter((r.status, r.step) for r in orders)
        await asyncio.sleep(0.5)
    settled_after = time.monotonic() - last_fault

    confirmed = [r for r in orders if r.status == "confirmed"]
    cancelled = [r for r in orders if r.status == "cancelled"]
    assert all(r.payment == "captured" and r.reservation == "committed" for r in confirmed)
    stock = await stock_outcome(db, products, orders)
    shelves, committed = stock["stock"], stock["committed"]
    assert all(s.available >= 0 and s.reserved == 0 for s in shelves.values())
    assert all(shelves[p].available + committed[p] == STOCK for p in products)
    assert committed == stock["ordered"]
    book = await ledger(run.order_ids)
    captured = sum(entry["captured"] for entry in book.values())
    assert captured == sum(r.total_minor for r in confirmed)
    assert all(book[r.order_id]["captures"] == 1 for r in confirmed)
    assert max(entry["captures"] for entry in book.values()) <= 1
    assert sum(book[r.order_id]["live_authorizations"] for r in cancelled) == 0
    # Rows whose publish failed in a fault (the connection cut under it) are the relay's
    # to send: its sweep of leftovers, with a backoff after failures.
    drain_deadline = time.monotonic() + OUTBOX_DRAIN_SECONDS
    unsent = await unsent_outbox_rows(db, started_at)
    while sum(unsent.values()) and time.monotonic() < drain_deadline:
        await asyncio.sleep(1)
        unsent = await unsent_outbox_rows(db, started_at)
    assert sum(unsent.values()) == 0, unsent
    drained_after = time.monotonic() - last_fault
    return [
        f"answers      {dict(sorted(run.statuses.items()))} (0 = no answer; each retried with its key)",
        f"outcome      {len(confirmed)} confirmed, {len(cancelled)} cancelled "
        f"{dict(Counter(r.cancel_reason for r in cancelled))};",
        f"             every saga done {settled_after:.1f} s after the last fault",
        f"money        captured {captured / 100:.2f} = confirmed total",
        f"outbox       every row sent {drained_after:.1f} s after the last fault",
    ]


def figures(run: Run, first_phase: str) -> list[str]:
    """Orders accepted per second in each phase, and the longest wait between two."""
    edges = [0.0, *(at for _, at in run.done), run.ended]
    names = [first_phase, *(phase for phase, _ in run.done)]
    lines = []
    for name, start, end in zip(names, edges[:-1], edges[1:], strict=True):
        inside = sorted(t for t in run.accepted if start <= t < end)
        longest = max(b - a for a, b in itertools.pairwise([start, *inside, end]))
        rate = len(inside) / max(end - start, 0.1)
        lines.append(f"{name:<24} {end - start:5.1f} s {rate:6.1f}/s  longest gap {longest:.1f} s")
    return lines
