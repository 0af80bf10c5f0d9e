"""The edge's read cache for what guests hit hardest: product pages and listings (Redis).

Correctness before speed:

- **Generations, not deletes.** Every cached answer is stored under a key that
  includes a generation number: one per product for its page, one for all listings.
  An event that changes a product bumps that product's generation and the listings'
  one. A load that started before the bump and finishes after it writes under the old
  generation, where nobody looks any more, so a stale answer can never be cached after
  the invalidation that should have removed it (the race a plain DEL has).
- **Events say what changed.** The edge listens to the catalog's product, category and
  availability events on its own exclusive queue and bumps exactly the generations they
  name; a TTL bounds anything an event could not reach (an edge that was down while it
  was published). Every one of them is published after the catalog committed the change,
  so a read it prompts finds the change (a stock change is the catalog's
  `availability_changed`, not inventory's `stock_changed`, which the catalog may not
  have applied yet when the edge hears it).
- **One load per key at a time.** Concurrent misses for one key wait for a single
  load: in this process with a shared future, across edge replicas with a short Redis
  lock; a waiter that sees no value appear in time loads itself rather than fail.

Only anonymous reads are cached (a signed-in owner may see more than a guest), and
only successful answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from uuid import UUID

from aio_pika.abc import AbstractIncomingMessage
from aiohttp import web
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from contracts.catalog import (
    AVAILABILITY_CHANGED,
    CATEGORY_CHANGED,
    PRODUCT_CREATED,
    PRODUCT_DELETED,
    PRODUCT_UPDATED,
    VARIANT_ADDED,
    VARIANT_UPDATED,
    VARIANT_WITHDRAWN,
)
from kernel.events import Following, follow, until_done

log = logging.getLogger("agora.edge.cache")

CACHE_REQUESTS = Counter(
    "agora_edge_cache_requests_total",
    "Cached reads at the edge: hit, miss (this request loaded), coalesced (waited for another's load)",
    ["cache", "result"],
)

_PREFIX = "agora:cache:"
_LISTINGS_GENERATION = _PREFIX + "gen:listings"
_LOCK_SECONDS = 5
_WAIT_FOR_OTHER_SECONDS = 2.0
# The events that change what a product page or a listing shows.
INVALIDATING_EVENTS = (
    PRODUCT_CREATED,
    PRODUCT_UPDATED,
    PRODUCT_DELETED,
    VARIANT_ADDED,
    VARIANT_UPDATED,
    VARIANT_WITHDRAWN,
    AVAILABILITY_CHANGED,
    CATEGORY_CHANGED,
)

Load = Callable[[], Awaitable[Any]]


class ReadCache:
    def __init__(self, redis: Redis, *, product_ttl: float = 60.0, listing_ttl: float = 30.0) -> None:
        self._redis = redis
        self._ttl = {"product": product_ttl, "listing": listing_ttl}
        self._loading: dict[str, asyncio.Future[Any]] = {}

    async def close(self) -> None:
        await self._redis.aclose()

    async def product(self, product_id: UUID, load: Load) -> Any:
        """The product page, from the cache or from `load` (the catalog query)."""
        generation = await self._generation(_product_generation(product_id))
        return await self._read("product", f"{_PREFIX}product:{product_id}:{generation}", load)

    async def listing(self, query: dict[str, Any], load: Load) -> Any:
        """A listing page for this exact query (its parameters, normalised)."""
        generation = await self._generation(_LISTINGS_GENERATION)
        digest = hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:32]
        return await self._read("listing", f"{_PREFIX}listing:{generation}:{digest}", load)

    async def invalidate(self, product_ids: Iterable[UUID]) -> None:
        """These products changed: their pages, and every listing, are stale."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for product_id in product_ids:
                pipe.incr(_product_generation(product_id))
            pipe.incr(_LISTINGS_GENERATION)
            await pipe.execute()

    async def _generation(self, key: str) -> int:
        try:
            return int(await self._redis.get(key) or 0)
        except RedisError:
            return -1  # Redis is down: read through (see _read)

    async def _read(self, cache: str, key: str, load: Load) -> Any:
        cached = await self._get(key)
        if cached is not None:
            CACHE_REQUESTS.labels(cache, "hit").inc()
            return cached
        running = self._loading.get(key)
        if running is not None:
            CACHE_REQUESTS.labels(cache, "coalesced").inc()
            return await asyncio.shield(running)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await self._load_once(cache, key, load)
            future.set_result(value)
            return value
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a failure with no waiter is not "never retrieved"
            raise
        finally:
            del self._loading[key]

    async def _load_once(self, cache: str, key: str, load: Load) -> Any:
        """Load under a short Redis lock, so other edge replicas wait instead of loading too."""
        lock = key + ":lock"
        try:
            locked = bool(await self._redis.set(lock, "1", nx=True, ex=_LOCK_SECONDS))
        except RedisError:
            locked = True  # no Redis, no sharing: just load
        if locked:
            # Our miss may be older than a load that finished and let go of the lock since:
            # the lock was taken after that load stored its answer, so this read sees it.
            cached = await self._get(key)
            if cached is not None:
                with contextlib.suppress(RedisError):
                    await self._redis.delete(lock)
                CACHE_REQUESTS.labels(cache, "coalesced").inc()
                return cached
        else:
            deadline = asyncio.get_running_loop().time() + _WAIT_FOR_OTHER_SECONDS
            while asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
                cached = await self._get(key)
                if cached is not None:
                    CACHE_REQUESTS.labels(cache, "coalesced").inc()
                    return cached
        CACHE_REQUESTS.labels(cache, "miss").inc()
        value = await load()
        with contextlib.suppress(RedisError):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(key, json.dumps(value), ex=int(self._ttl[cache]))
                pipe.delete(lock)
                await pipe.execute()
        return value

    async def _get(self, key: str) -> Any:
        try:
            raw = await self._redis.get(key)
        except RedisError:
            return None
        return json.loads(raw) if raw is not None else None


def _product_generation(product_id: UUID) -> str:
    return f"{_PREFIX}gen:product:{product_id}"


class Invalidator:
    """Bumps cache generations as the catalog's events arrive (own exclusive queue)."""

    def __init__(self, amqp_url: str, cache: ReadCache) -> None:
        self._url = amqp_url
        self._cache = cache
        self._following: Following | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="edge-cache-invalidator")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._following is not None:
            await self._following.close()

    async def _run(self) -> None:
        keys = [spec.routing_key for spec in INVALIDATING_EVENTS]
        self._following = await until_done(
            "cache invalidation", lambda: follow(self._url, keys, self._on_event, no_ack=False)
        )

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        async with message.process(requeue=True):
            try:
                body = json.loads(message.body)
                # A category change names no product: it changes listings only.
                products = [UUID(body["product_id"])] if "product_id" in body else []
            except (ValueError, KeyError, TypeError):
                log.warning("cache: an event it cannot read", extra={"routing_key": message.routing_key})
                return
            await self._cache.invalidate(products)


CACHE_KEY = web.AppKey("read_cache", ReadCache)
INVALIDATOR_KEY = web.AppKey("cache_invalidator", Invalidator)


def setup_cache(app: web.Application, redis_url: str, amqp_url: str) -> None:
    """Redis client and event listener are made in the start-up hook (the app's loop)."""

    async def start(app: web.Application) -> None:
        app[CACHE_KEY] = ReadCache(Redis.from_url(redis_url, decode_responses=True))
        app[INVALIDATOR_KEY] = Invalidator(amqp_url, app[CACHE_KEY])
        app[INVALIDATOR_KEY].start()

    async def close(app: web.Application) -> None:
        await app[INVALIDATOR_KEY].close()
        await app[CACHE_KEY].close()

    app.on_startup.append(start)
    app.on_cleanup.append(close)
