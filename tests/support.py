"""Helpers only the tests use; what the benchmarks share with them is in harness/."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import aiohttp

from harness.accounts import make_seller
from harness.bus import list_product
from harness.environment import test_env


async def stock_target(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    """Authorization-matrix target: a product with stock, owned by a new seller (the "owner")."""
    seller = await make_seller(http, admin)
    connection = await aio_pika.connect_robust(test_env()["AGORA_AMQP_URL"])
    try:
        product_id = await list_product(connection, http, seller["user"]["user_id"], stock=10)
    finally:
        await connection.close()
    return {**seller, "params": {"productId": product_id}}


def worker_metric(port: int, name: str, **labels: str) -> float:
    """A worker's Prometheus metric `name` (on its /metrics at `port`), summed over the
    samples with these label values; 0 if there is none yet."""
    wanted = [f'{label}="{value}"' for label, value in labels.items()]
    total = 0.0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.split("{", 1)[0] == name and all(w in line for w in wanted):
                total += float(line.rsplit(" ", 1)[1])
    return total


async def until(what: str, probe: Callable[[], Awaitable[Any]], *, within: float = 20) -> Any:
    """Ask `probe` every 0.1 s until its answer is truthy, and return that answer; fail
    saying `what` never came within `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await probe()
        if found:
            return found
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}"
        await asyncio.sleep(0.1)
