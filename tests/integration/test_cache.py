"""The edge's read cache against real Redis: one load per key, and no stale answer after an invalidation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from edge.cache import ReadCache
from tests import support


@pytest.fixture
async def cache() -> AsyncIterator[ReadCache]:
    read_cache = ReadCache(Redis.from_url(support.test_env()["AGORA_REDIS_URL"], decode_responses=True))
    yield read_cache
    await read_cache.close()


class Loader:
    def __init__(self, value: Any, delay: float = 0.05) -> None:
        self.value = value
        self.delay = delay
        self.calls = 0

    async def __call__(self) -> Any:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return self.value


async def test_concurrent_misses_cause_one_load(cache: ReadCache) -> None:
    product_id = uuid.uuid4()
    load = Loader({"name": "lamp"})
    answers = await asyncio.gather(*(cache.product(product_id, load) for _ in range(50)))
    assert load.calls == 1
    assert all(a == {"name": "lamp"} for a in answers)
    assert await cache.product(product_id, Loader({"name": "other"})) == {"name": "lamp"}  # a hit


async def test_replicas_share_one_load(cache: ReadCache) -> None:
    # Two caches are two edge processes: the Redis lock makes the second wait for the first.
    other = ReadCache(Redis.from_url(support.test_env()["AGORA_REDIS_URL"], decode_responses=True))
    try:
        product_id = uuid.uuid4()
        first, second = Loader({"v": 1}, delay=0.3), Loader({"v": 2}, delay=0.3)
        a, b = await asyncio.gather(cache.product(product_id, first), other.product(product_id, second))
        assert first.calls + second.calls == 1
        assert a == b
    finally:
        await other.close()


async def test_an_invalidation_wins_over_a_load_already_running(cache: ReadCache) -> None:
    product_id = uuid.uuid4()
    slow = Loader({"price": "1.00"}, delay=0.3)
    running = asyncio.create_task(cache.product(product_id, slow))
    await asyncio.sleep(0.05)
    await cache.invalidate([product_id])  # the product changed while the old price was being read
    assert await running == {"price": "1.00"}
    # The old answer was stored under the old generation: the next read loads afresh.
    fresh = Loader({"price": "2.00"})
    assert await cache.product(product_id, fresh) == {"price": "2.00"}
    assert fresh.calls == 1


async def test_listings_are_keyed_by_query_and_dropped_by_any_product_change(cache: ReadCache) -> None:
    query = {"q": f"lamp-{uuid.uuid4()}", "limit": 20}
    first = Loader({"items": [1]})
    assert await cache.listing(query, first) == {"items": [1]}
    assert await cache.listing(dict(reversed(query.items())), Loader({"items": [9]})) == {"items": [1]}
    assert await cache.listing({**query, "limit": 10}, Loader({"items": [2]})) == {"items": [2]}
    await cache.invalidate([uuid.uuid4()])
    assert await cache.listing(query, Loader({"items": [3]})) == {"items": [3]}


async def test_a_failed_load_is_not_cached_and_reaches_every_waiter(cache: ReadCache) -> None:
    product_id = uuid.uuid4()

    async def failing() -> Any:
        await asyncio.sleep(0.05)
        raise LookupError("not found")

    results = await asyncio.gather(*(cache.product(product_id, failing) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)
    assert await cache.product(product_id, Loader({"ok": True})) == {"ok": True}
