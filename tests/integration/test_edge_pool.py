"""The edge as a pool of 2 processes on one port (edge/pool.py): nothing a client does
depends on which process a request reaches.

The pool runs beside the suite's own edge, on the suite's workers. Which process served a
request is read from the pool's log: every line a pool process writes carries its pid,
and the access line carries the request id the test chose. Each check makes sure both
processes took part (retrying on fresh connections until the other one answers), so a
state kept in one process would show.

The parent answers the metrics port for the pool: its /readyz stays 200 while a killed
process restarts, and a pool whose processes die at every start gives up (exits non-zero)
instead of restarting them for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from edge.pool import GAVE_UP_EXIT_CODE, MAX_CRASHES, MAX_RESTART_DELAY_SECONDS, RESTART_DELAY_SECONDS
from edge.ratelimit import DEFAULT_LIMITS
from edge.sessions import ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER
from harness import environment, processes
from harness.accounts import bearer, login, register
from harness.stack import Stack
from tests.catalog_support import create_category, create_product, new_tag
from tests.orders_support import matrix_product, place_when_priced

PORT = environment.HTTP_PORT + 16
METRICS_URL = f"http://127.0.0.1:{processes.edge_metrics_port(PORT)}/metrics"
READYZ_URL = f"http://127.0.0.1:{processes.edge_metrics_port(PORT)}/readyz"
# The pool whose processes cannot start (its own port: it runs beside the other).
BROKEN_PORT = environment.HTTP_PORT + 17
# Until that pool gives up: the parent's waits between a process's deaths, and up to
# 10 s for each start (an interpreter importing the edge, then failing) on a busy machine.
GIVE_UP_WITHIN_SECONDS = (
    sum(min(RESTART_DELAY_SECONDS * 2**n, MAX_RESTART_DELAY_SECONDS) for n in range(MAX_CRASHES - 1))
    + MAX_CRASHES * 10.0
)
LOGIN_LIMIT = 6
# Long enough for any invalidation event to have reached both processes (test_cache.py
# sees an update within one second through one edge).
INVALIDATION_WINDOW_SECONDS = 1.0


class Pool:
    """The running pool, and who served what according to its log."""

    def __init__(self, process: processes.Process, log_from: int, port: int = PORT) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self._log_from = log_from

    def text(self) -> str:
        """The pool's output since it started (JSON lines, and whatever else a process wrote)."""
        with open(self.process.log_path, "rb") as log:
            log.seek(self._log_from)
            return log.read().decode(errors="replace")

    def lines(self) -> list[dict[str, Any]]:
        lines = []
        for text in self.text().splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict):
                lines.append(line)
        return lines

    def serving(self) -> set[int]:
        """The pids of the processes that joined the pool (they accept connections)."""
        return {line["pid"] for line in self.lines() if line.get("message") == "edge process serving"}

    def served_by(self, request_ids: set[str]) -> dict[str, int]:
        """request id → pid of the process that answered it (its access line)."""
        return {
            line["correlation_id"]: line["pid"]
            for line in self.lines()
            if line.get("logger") == "agora.access" and line.get("correlation_id") in request_ids
        }

    async def pid_of(self, request_id: str, within: float = 5.0) -> int:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if request_id in (served := self.served_by({request_id})):
                return served[request_id]
            await asyncio.sleep(0.05)
        raise AssertionError(f"request {request_id} is not in the pool's log")


@pytest.fixture(scope="module")
def pool(stack: Stack) -> Iterator[Pool]:
    limits = dict.fromkeys(DEFAULT_LIMITS, "100000/minute") | {"login:ip": f"{LOGIN_LIMIT}/minute"}
    # One trusted proxy hop: each rate-limit test speaks from an address of its own.
    env = {**stack.env, "AGORA_TRUSTED_PROXY_HOPS": "1", "AGORA_RATE_LIMITS": json.dumps(limits)}
    edge = processes.edge(env, "edge-pool", PORT, processes=2)
    log_from = edge.log_path.stat().st_size if edge.log_path.exists() else 0
    running = Pool(edge, log_from)
    try:
        edge.start()  # ready: one process answered /readyz
        deadline = time.monotonic() + 30
        while len(running.serving()) < 2:
            assert time.monotonic() < deadline, "the second edge process never joined the pool"
            time.sleep(0.1)
        yield running
    finally:
        assert edge.stop() == 0, "the pool did not stop cleanly on SIGTERM"


@pytest.fixture
async def client(pool: Pool) -> AsyncIterator[aiohttp.ClientSession]:
    # A new connection per request: the kernel picks a process per connection.
    async with aiohttp.ClientSession(pool.url, connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield session


def _rid() -> str:
    return f"pool-{uuid.uuid4()}"


async def _on_both(pool: Pool, attempt: Callable[[str], Awaitable[None]], tries: int = 60) -> dict[int, int]:
    """Run `attempt(request_id)` (it asserts its own answer) on fresh connections until both
    processes have served at least one; how many each served."""
    counts: dict[int, int] = {}
    for _ in range(tries):
        rid = _rid()
        await attempt(rid)
        pid = await pool.pid_of(rid)
        counts[pid] = counts.get(pid, 0) + 1
        if len(counts) == 2:
            return counts
    raise AssertionError(f"only one process answered {tries} requests: {counts}")


async def _readyz(session: aiohttp.ClientSession, url: str = READYZ_URL) -> tuple[int, dict[str, Any]]:
    async with session.get(url) as resp:
        return resp.status, await resp.json()


async def _until_ready(session: aiohttp.ClientSession, count: int, within: float = 15.0) -> dict[str, Any]:
    """The pool's /readyz once it says `count` processes are ready (the parent asks each every second)."""
    deadline = time.monotonic() + within
    while True:
        status, body = await _readyz(session)
        if status == 200 and body["ready"] == count:
            return body
        assert time.monotonic() < deadline, f"the pool never said {count} ready: {status} {body}"
        await asyncio.sleep(0.2)


async def _metric(session: aiohttp.ClientSession, name: str, **labels: str) -> float:
    async with session.get(METRICS_URL) as resp:
        text = await resp.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_requests_are_spread_over_both_processes_and_metrics_count_them_all(
    pool: Pool, client: aiohttp.ClientSession
) -> None:
    labels = {"route": "/api/openapi.json", "status": "200"}
    before = await _metric(client, "agora_edge_http_requests_total", **labels)

    async def fetch(rid: str) -> None:
        async with client.get("/api/openapi.json", headers={"X-Request-ID": rid}) as resp:
            assert resp.status == 200
            await resp.read()

    # The kernel does not balance one accept queue: on a busy machine a whole burst can
    # go to one process. Bursts of 40 until both have answered (a few at most).
    sent: set[str] = set()
    per_process: dict[int, int] = {}
    for _ in range(10):
        ids = {_rid() for _ in range(40)}
        sent |= ids
        await asyncio.gather(*(fetch(rid) for rid in ids))
        await asyncio.sleep(0.2)
        served = pool.served_by(ids)
        assert set(served) == ids
        for pid in served.values():
            per_process[pid] = per_process.get(pid, 0) + 1
        if len(per_process) == 2:
            break
    assert len(per_process) == 2, f"one process answered every request: {per_process}"
    # /metrics (a shared port too) reports the whole pool, whichever process answers it.
    for _ in range(6):
        assert await _metric(client, "agora_edge_http_requests_total", **labels) == before + len(sent)


async def test_an_order_placed_through_the_pool_is_confirmed_and_streamed(
    pool: Pool, client: aiohttp.ClientSession, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    product_id = await matrix_product(http, admin)
    user = await register(client)
    member = await login(client, user["email"], user["password"])
    order = await place_when_priced(client, member, product_id)
    url = f"/api/orders/{order['order_id']}/events"

    async def statuses(rid: str, until: str) -> list[str]:
        seen: list[str] = []
        headers = {**bearer(member["access_token"]), "X-Request-ID": rid}
        async with client.get(url, headers=headers) as resp:
            assert resp.status == 200
            async with asyncio.timeout(20):
                async for raw in resp.content:
                    line = raw.decode().strip()
                    if line.startswith("data: "):
                        seen.append(json.loads(line[6:])["status"])
                        if seen[-1] == until:
                            break
        return seen

    # Live: opened while the saga runs, it shows the confirmation when it happens.
    live = _rid()
    assert (await statuses(live, "confirmed"))[-1] == "confirmed"
    # Cancelling ends the stream (a final state), so its process logs it; then a stream
    # on each process shows the whole history, confirmation included.
    cancel = {**bearer(member["access_token"]), "X-Request-ID": _rid()}
    async with client.put(f"/api/orders/{order['order_id']}", json={"status": "cancelled"}, headers=cancel) as resp:
        assert resp.status == 200, await resp.text()
    await pool.pid_of(live, within=20)

    async def replay(rid: str) -> None:
        seen = await statuses(rid, "cancelled")
        assert "confirmed" in seen and seen[-1] == "cancelled", seen

    await _on_both(pool, replay)


async def test_a_product_updated_through_the_pool_is_never_served_stale(
    pool: Pool, client: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    seller_user = await register(client)
    async with client.put(
        f"/api/users/{seller_user['user_id']}", json={"role": "seller"}, headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 200
    seller = await login(client, seller_user["email"], seller_user["password"])
    slug = f"pool-{new_tag()}"
    await create_category(client, admin, slug)
    product = await create_product(client, seller, slug)
    url = f"/api/products/{product['product_id']}"

    def shows(name: str) -> Callable[[str], Awaitable[None]]:
        async def attempt(rid: str) -> None:
            async with client.get(url, headers={"X-Request-ID": rid}) as resp:
                assert resp.status == 200
                assert (await resp.json())["name"] == name

        return attempt

    async def fresh_on_both(name: str) -> None:
        # Until both processes answer `name` (the invalidation is an event each process
        # hears on its own queue: how long it takes depends on the machine's load).
        deadline = time.monotonic() + 30
        while True:
            try:
                await _on_both(pool, shows(name), tries=20)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(INVALIDATION_WINDOW_SECONDS)

    # The product's own events (creation, first stock) pass, and both processes cache it.
    await fresh_on_both(product["name"])
    async with client.put(url, json={"name": "Renamed in the pool"}, headers=bearer(seller["access_token"])) as resp:
        assert resp.status == 200
    await fresh_on_both("Renamed in the pool")
    # Once both show the new name, never the old one again, whichever process answers.
    for _ in range(10):
        await shows("Renamed in the pool")(_rid())


async def test_a_rate_limit_counts_the_requests_of_both_processes(pool: Pool, client: aiohttp.ClientSession) -> None:
    # Each round from an address of its own: LOGIN_LIMIT attempts pass, the rest are
    # refused, whichever process answers each. Rounds until one was answered by both
    # processes (the kernel may hand a whole round to one of them).
    both = False
    for _ in range(8):
        address = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
        answers: dict[str, int] = {}
        for _ in range(LOGIN_LIMIT * 2):
            rid = _rid()
            body = {"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "not the password"}
            async with client.post(
                "/api/users/login", json=body, headers={"X-Forwarded-For": address, "X-Request-ID": rid}
            ) as resp:
                await resp.read()
                answers[rid] = resp.status
        statuses = list(answers.values())
        # Counted per process, each would allow LOGIN_LIMIT: more than LOGIN_LIMIT would pass.
        assert statuses[:LOGIN_LIMIT] == [401] * LOGIN_LIMIT
        assert statuses[LOGIN_LIMIT:] == [429] * LOGIN_LIMIT
        served = {rid: await pool.pid_of(rid) for rid in answers}
        if len(set(served.values())) == 2:
            both = True
            break
    assert both, "one process answered every attempt of every round"


async def test_a_sign_in_on_one_process_works_on_the_other(pool: Pool, client: aiohttp.ClientSession) -> None:
    user = await register(client)
    rid = _rid()
    async with client.post(
        "/api/users/login", json={"email": user["email"], "password": user["password"]}, headers={"X-Request-ID": rid}
    ) as resp:
        assert resp.status == 200
        jar = resp.cookies
    signed_in_on = await pool.pid_of(rid)
    cookies = {"Cookie": f"{ACCESS_COOKIE}={jar[ACCESS_COOKIE].value}; {CSRF_COOKIE}={jar[CSRF_COOKIE].value}"}

    async def read(rid: str) -> None:
        async with client.get("/api/users/me", headers={**cookies, "X-Request-ID": rid}) as resp:
            assert resp.status == 200, await resp.text()

    async def write(rid: str) -> None:
        # Cookie-authenticated and unsafe: the CSRF token signed by the other process must pass.
        body = {"username": f"pool_{uuid.uuid4().hex[:10]}"}
        headers = {**cookies, CSRF_HEADER: jar[CSRF_COOKIE].value, "X-Request-ID": rid}
        async with client.put(f"/api/users/{user['user_id']}", json=body, headers=headers) as resp:
            assert resp.status == 200, await resp.text()

    for attempt in (read, write):
        counts = await _on_both(pool, attempt)
        assert set(counts) - {signed_in_on}, "never reached the other process"


async def test_a_process_that_dies_is_replaced_while_the_pool_stays_ready(
    pool: Pool, client: aiohttp.ClientSession
) -> None:
    body = await _until_ready(client, 2)
    assert body["processes"] == 2
    assert [child["checks"] for child in body["children"]] == [{"broker": True, "users": True}] * 2
    victim = next(iter(pool.serving()))
    os.kill(victim, signal.SIGKILL)
    said_ready: list[int] = []
    deadline = time.monotonic() + 30
    while len(pool.serving() - {victim}) < 2:
        # Meanwhile the other process answers every request (none waits on the dead one),
        # and the pool's /readyz says ready: the replacement takes no connection until it is.
        status, body = await _readyz(client)
        assert status == 200, body
        said_ready.append(body["ready"])
        async with client.get("/api/openapi.json") as resp:
            assert resp.status == 200
        assert time.monotonic() < deadline, "the dead edge process was not replaced"
        await asyncio.sleep(0.1)
    # The probes above ran while the pool was one process short, and it said so.
    assert 1 in said_ready, said_ready
    body = await _until_ready(client, 2)
    assert victim not in {child["pid"] for child in body["children"]}

    async def fetch(rid: str) -> None:
        async with client.get("/api/openapi.json", headers={"X-Request-ID": rid}) as resp:
            assert resp.status == 200

    assert victim not in await _on_both(pool, fetch)


async def test_a_pool_whose_processes_die_at_every_start_gives_up(stack: Stack) -> None:
    # A rate limit for a rule that does not exist: the parent starts (it builds no app),
    # and each process refuses the setting as it builds its app (edge/ratelimit.py) and exits.
    env = {**stack.env, "AGORA_RATE_LIMITS": json.dumps({"no-such-rule": "1/minute"})}
    edge = processes.edge(env, "edge-pool-broken", BROKEN_PORT, processes=2)
    broken = Pool(edge, edge.log_path.stat().st_size if edge.log_path.exists() else 0, BROKEN_PORT)
    readyz = f"http://127.0.0.1:{processes.edge_metrics_port(BROKEN_PORT)}/readyz"
    answers: set[tuple[int, int]] = set()
    edge.start(wait=False)
    assert edge.proc is not None
    try:
        started = time.monotonic()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while edge.proc.poll() is None:
                assert time.monotonic() - started < GIVE_UP_WITHIN_SECONDS, "the pool restarts them for ever"
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    status, body = await _readyz(session, readyz)
                    answers.add((status, body["ready"]))
                await asyncio.sleep(0.5)
    finally:
        edge.stop()
    # The supervisor sees the pool fail, and its log says why.
    assert edge.proc.returncode == GAVE_UP_EXIT_CODE
    gave_up = [line for line in broken.lines() if line.get("message", "").startswith("edge pool giving up")]
    assert len(gave_up) == 1, broken.text()
    assert gave_up[0]["level"] == "ERROR" and f"died {MAX_CRASHES} times" in gave_up[0]["message"]
    assert "AGORA_RATE_LIMITS names unknown rules" in broken.text()
    # Meanwhile the metrics port said the pool was not ready: not one process was.
    assert answers == {(503, 0)}
    # And no process outlived the pool.
    for line in broken.lines():
        if line.get("message") == "edge process started":
            with pytest.raises(ProcessLookupError):
                os.kill(line["child_pid"], 0)
