"""Hostile input never jams a worker: no 5xx, no redelivery, no dead letter to retry.

Found by the outside review (issue 13): a search of 200 `-` made PostgreSQL fail with
"tsquery stack too small", and an order with the same product on two lines of a
million each failed inside the handler; both were redelivered about 20 times over
minutes, each holding one of the worker's consumer slots.
"""

from __future__ import annotations

import json
import random
import re
import urllib.request
import uuid
from typing import Any

import aiohttp

from contracts.catalog import SEARCH_PRODUCTS
from contracts.orders import PLACE_ORDER
from harness import broker, processes
from harness.accounts import bearer, login, register
from harness.stack import Stack
from tests.orders_support import ADDRESS, matrix_product

_OPERATORS = ["-", '"', "or", "!", "&", "|", "(", ")", "<->", ":", "*", "'", "\\", "\u00a0", "-!", "--"]


def hostile_searches(n: int) -> list[str]:
    """The review's strings, then random runs of web-search operators and words."""
    rng = random.Random(13)
    found = ["-" * 200, "- " * 100, "-!" * 100, '"' * 200, "or " * 66, "(" * 200, "a" + "-!" * 99]
    while len(found) < n:
        parts = [rng.choice([*_OPERATORS, "lamp", "a", " ", " "]) for _ in range(rng.randint(1, 120))]
        found.append("".join(parts)[:200])
    return found


def handled(worker: processes.Process, queue: str, outcome: str) -> float:
    """`agora_handled_total{queue, outcome}` from the worker's own /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    pattern = rf'^agora_handled_total\{{[^}}]*outcome="{outcome}"[^}}]*queue="{re.escape(queue)}"[^}}]*\}} (\S+)$'
    return sum(float(m.group(1)) for m in re.finditer(pattern, text, re.MULTILINE))


def dead_lettered(queue: str) -> int:
    return int(str(broker.queue_info(f"{queue}.dlq").get("messages", 0)))


async def test_200_hostile_searches_answer_at_once_and_are_never_retried(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    catalog, queue = stack.workers["catalog"], SEARCH_PRODUCTS.queue
    retries, failed = handled(catalog, queue, "retry"), handled(catalog, queue, "failed")
    statuses: dict[int, int] = {}
    for q in hostile_searches(200):
        async with http.get("/api/products", params={"q": q}, timeout=aiohttp.ClientTimeout(total=15)) as resp:
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            assert resp.status in (200, 422), (q, resp.status, await resp.text())
    assert statuses.get(200, 0) > 50  # most are searches that merely find nothing
    assert handled(catalog, queue, "retry") == retries
    assert handled(catalog, queue, "failed") == failed


def hostile_orders(product_id: str, n: int) -> list[Any]:
    rng = random.Random(14)
    million = 1_000_000
    found: list[Any] = [
        {"items": [{"product_id": product_id, "quantity": million}] * 2},  # the review's body
        {"items": [{"product_id": product_id, "quantity": million}] * 100},
        {"items": [{"product_id": product_id, "quantity": 1}] * 101},
        {"items": [{"product_id": str(uuid.uuid4()), "quantity": 1}]},
        {"items": []},
        {"items": None},
        {"items": [{"product_id": "not-a-uuid", "quantity": 1}]},
        {"items": [{"product_id": product_id, "quantity": 2**63}]},
        {"items": [{"product_id": product_id, "quantity": -1}]},
        {"items": [{"product_id": product_id, "quantity": "1e9"}]},
        [],
        "a string",
        None,
    ]
    junk: list[Any] = [0, -1, 2**70, "", "x" * 5000, None, [], {}, "\u0000", "\ud800", True, 1.5]
    while len(found) < n:
        body: dict[str, Any] = {
            "items": [
                {
                    "product_id": rng.choice([product_id, str(uuid.uuid4()), rng.choice(junk)]),
                    "quantity": rng.choice([1, million, million - 1, rng.choice(junk)]),
                }
                for _ in range(rng.randint(1, 4))
            ],
            "shipping_address": rng.choice([ADDRESS, {**ADDRESS, "country": rng.choice(junk)}, rng.choice(junk)]),
            "payment_token": rng.choice(["tok_visa", "tok_unknown", rng.choice(junk)]),
        }
        found.append(body)
    return [
        {"shipping_address": ADDRESS, "payment_token": "tok_visa", **body} if isinstance(body, dict) else body
        for body in found[:n]
    ]


async def test_200_hostile_order_bodies_answer_at_once_and_are_never_retried(
    stack: Stack, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    product_id = await matrix_product(http, admin)
    member = await register(http)
    session = await login(http, member["email"], member["password"])
    orders, queue = stack.workers["orders"], PLACE_ORDER.queue
    retries, failed = handled(orders, queue, "retry"), handled(orders, queue, "failed")
    for body in hostile_orders(product_id, 200):
        headers = {
            **bearer(session["access_token"]),
            "Idempotency-Key": str(uuid.uuid4()),
            "Content-Type": "application/json",
        }
        timeout = aiohttp.ClientTimeout(total=15)
        # Lone surrogates cannot be UTF-8: sent escaped, as a hostile client would.
        raw = json.dumps(body, ensure_ascii=True).encode()
        async with http.post("/api/orders", data=raw, headers=headers, timeout=timeout) as resp:
            assert resp.status < 500, (body, resp.status, await resp.text())
    assert handled(orders, queue, "retry") == retries
    assert handled(orders, queue, "failed") == failed
