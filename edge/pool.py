"""The edge as a pool: N processes serving one port (`agora edge --processes N`).

A small parent binds the API's listening socket once and starts N children, each a full
edge (its own event loop, broker connections, reply queue and event queues) serving that
inherited socket: the kernel hands each new connection to one of the processes waiting
in `accept()`. The parent serves no API request. It answers the metrics port for the
whole pool (/metrics, /healthz, /readyz), restarts a child that dies, gives up (stops
the pool, exits non-zero) when a child keeps dying, and on SIGTERM or SIGINT passes the
signal on and waits for every child's graceful stop (`AGORA_GRACEFUL_TIMEOUT_SECONDS`),
then kills what is left.

Why one socket inherited rather than SO_REUSEPORT (a socket bound by each process):
a port already in use fails the start at once, where SO_REUSEPORT would let a second
pool (or a leftover edge of an older version) silently take a share of the traffic;
a child that dies leaves the connections waiting in the one accept queue to the
others, where SO_REUSEPORT resets those the kernel had hashed to its socket; and a
restarted child joins by accepting, with nothing to bind.

Nothing a client relies on lives in one process (docs/operations.md, "The edge as a
pool"): RPC replies come back on each process's own reply queue, the order event
stream polls the orders service, the cache and its generations, rate limits and
sign-in flows are in Redis, each process follows cache invalidations and token
revocations on a queue of its own, and CSRF tokens and order ids are keyed with the
shared AGORA_CSRF_SECRET, which a pool therefore requires. `/metrics` reports the
whole pool (Prometheus multiprocess mode, edge/metrics.py).

A child accepts connections only once it is ready (broker connected, the users
service's keys fetched), or after `JOIN_TIMEOUT_SECONDS` regardless: until it calls
`accept()` the kernel hands it nothing, so a restarted child never answers 503 while
the others could serve. Hence the pool is ready while at least one child is: each child
answers its own /readyz on a loopback socket the parent bound for it, the parent asks
every child each second, and its /readyz on the metrics port says 200 and how many of
the N are ready, or 503 when none is. A child stops by itself if its parent dies
(SIGKILL), so it never keeps the port on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import uvloop
from aiohttp import web
from aiohttp.web_runner import GracefulExit
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from edge.app import METRICS_SOCKET_KEY, READINESS_TIMEOUT_SECONDS, create_app, edge_metrics_port, serve
from edge.auth import JWKS_KEY
from edge.bus import BUS_KEY, RpcError
from kernel.logging import configure_logging
from kernel.settings import Settings, get_settings

log = logging.getLogger("agora.edge.pool")

# Listen backlog of the shared sockets: connections wait here while every child is busy.
BACKLOG = 1024
# How long a starting child waits to be ready before it serves anyway (its /readyz says 503).
JOIN_TIMEOUT_SECONDS = 30.0
# A child that dies is started again after RESTART_DELAY_SECONDS, doubled for each other
# death of the same child within CRASH_WINDOW_SECONDS (1, 2, 4, 8 s), at most the cap.
RESTART_DELAY_SECONDS = 1.0
MAX_RESTART_DELAY_SECONDS = 30.0
# The MAX_CRASHES-th death of one child within CRASH_WINDOW_SECONDS ends the pool with
# GAVE_UP_EXIT_CODE: a child that keeps dying is a broken release or configuration, which
# the supervisor (systemd, Kubernetes) must see fail, not a pool limping on fewer children.
# With the backoff above the fifth death comes 15 s plus five start-ups (a few seconds
# each) after the first; the window also catches a child that dies 20 s into each start,
# while a death after a healthy run of minutes only restarts the child, after 1 s.
MAX_CRASHES = 5
CRASH_WINDOW_SECONDS = 120.0
GAVE_UP_EXIT_CODE = 1
# How often the parent asks each child's /readyz, and how long it waits for the answer (a
# child's /readyz may wait READINESS_TIMEOUT_SECONDS for the users service's keys).
POLL_INTERVAL_SECONDS = 1.0
POLL_TIMEOUT_SECONDS = READINESS_TIMEOUT_SECONDS + 1.0
_TEND_INTERVAL_SECONDS = 0.2
# Beyond the children's graceful timeout, how long the parent waits before SIGKILL.
_STOP_MARGIN_SECONDS = 5.0


class PoolRefused(Exception):
    """The pool cannot start as configured; the message says why."""


def metrics_dir(settings: Settings, run_dir: str | None = None) -> Path:
    """The pool's Prometheus multiprocess directory, one per port (emptied at each start)."""
    run = run_dir or os.environ.get("AGORA_RUN_DIR") or ".run"
    return Path(run) / "metrics" / f"edge-{settings.http_port}"


def listen(host: str, port: int) -> socket.socket:
    """A listening socket a child can inherit (SO_REUSEADDR as aiohttp sets it, no SO_REUSEPORT)."""
    addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = addresses[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class _Answer(NamedTuple):
    """A child's answer to its own /readyz."""

    ready: bool
    checks: dict[str, Any]


@dataclass
class _Child:
    """One place in the pool, kept across restarts: its process (None while it waits to be
    restarted), the loopback socket its own /metrics, /healthz and /readyz answer on, its
    recent deaths, and the current process's last answer to /readyz (None: no answer)."""

    index: int
    health: socket.socket
    process: subprocess.Popen[bytes] | None = None
    restart_at: float = 0.0
    deaths: deque[float] = field(default_factory=deque)
    answer: _Answer | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def ready(self) -> bool:
        return self.running and self.answer is not None and self.answer.ready

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health.getsockname()[1]}"

    def died(self, now: float) -> int:
        """Count a death; how many within the window."""
        self.deaths.append(now)
        while self.deaths[0] <= now - CRASH_WINDOW_SECONDS:
            self.deaths.popleft()
        return len(self.deaths)

    def describe(self) -> dict[str, Any]:
        process = self.process if self.running else None
        answer = self.answer if process is not None else None
        return {
            "index": self.index,
            "pid": process.pid if process is not None else None,
            "ready": answer is not None and answer.ready,
            "checks": answer.checks if answer is not None else None,
        }


class Pool:
    """The parent: N children on the inherited API socket, restarted when they die, and
    the pool's /metrics, /healthz and /readyz on the metrics port."""

    def __init__(self, settings: Settings, processes: int) -> None:
        if processes < 1:
            raise PoolRefused("a pool needs at least one process")
        if not settings.csrf_secret:
            # Each process would sign CSRF tokens with a random secret of its own: a
            # browser signed in through one would be refused by the others.
            raise PoolRefused("AGORA_CSRF_SECRET must be set to run the edge as a pool (scripts/up generates one)")
        self._settings = settings
        self._size = processes
        self._metrics_dir = metrics_dir(settings)
        sockets: list[socket.socket] = []
        try:
            sockets.append(listen(settings.host, settings.http_port))
            sockets.append(listen(settings.host, edge_metrics_port(settings)))
            # Loopback only, on ports the kernel picks: nobody but the parent asks there.
            sockets += [listen("127.0.0.1", 0) for _ in range(processes)]
        except OSError:
            for sock in sockets:
                sock.close()
            raise
        self._api, self._metrics = sockets[0], sockets[1]
        self._children = [_Child(index, health) for index, health in enumerate(sockets[2:])]
        self._ready_said = -1

    def run(self) -> int:
        shutil.rmtree(self._metrics_dir, ignore_errors=True)
        self._metrics_dir.mkdir(parents=True)
        log.info(
            "edge pool starting",
            extra={"processes": self._size, "port": self._settings.http_port, "metrics_dir": str(self._metrics_dir)},
        )
        code = asyncio.run(self._run())
        log.info("edge pool stopped", extra={"exit_code": code})
        return code

    async def _run(self) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        health = web.AppRunner(self._health_app(), access_log=None)
        await health.setup()
        await web.SockSite(health, self._metrics).start()
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True), timeout=aiohttp.ClientTimeout(total=POLL_TIMEOUT_SECONDS)
        )
        followers = [asyncio.create_task(self._follow(child, session)) for child in self._children]
        code = 0
        try:
            while not stop.is_set():
                if not self._tend():
                    code = GAVE_UP_EXIT_CODE
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), _TEND_INTERVAL_SECONDS)
        finally:
            # The parent's copy first: once each child has closed its own (the first
            # thing its graceful stop does), the kernel refuses new connections at once,
            # as a single edge's would, instead of queueing them for nobody.
            self._api.close()
            await self._stop_children()
            for follower in followers:
                follower.cancel()
            await asyncio.gather(*followers, return_exceptions=True)
            await session.close()
            await health.cleanup()
            self._metrics.close()
            for child in self._children:
                child.health.close()
        return code

    def _health_app(self) -> web.Application:
        registry = CollectorRegistry()
        # Read from the children's files, whether or not any child is running.
        multiprocess.MultiProcessCollector(registry, path=str(self._metrics_dir))  # type: ignore[no-untyped-call]

        async def metrics(request: web.Request) -> web.Response:
            return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        async def healthz(request: web.Request) -> web.Response:
            # Alive as a single edge's /healthz means it: a process serving (answering its own /readyz).
            alive = sum(child.running and child.answer is not None for child in self._children)
            return web.json_response(
                {"status": "ok" if alive else "no edge process answers", "alive": alive, "processes": self._size},
                status=200 if alive else 503,
            )

        async def readyz(request: web.Request) -> web.Response:
            children = [child.describe() for child in self._children]
            ready = sum(child["ready"] for child in children)
            return web.json_response(
                {
                    "status": "ready" if ready else "not ready",
                    "ready": ready,
                    "processes": self._size,
                    "children": children,
                },
                status=200 if ready else 503,
            )

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
        return app

    async def _follow(self, child: _Child, session: aiohttp.ClientSession) -> None:
        """Ask the child's /readyz every POLL_INTERVAL_SECONDS, whichever process it is."""
        while True:
            process = child.process
            answer = await self._ask(session, child.health_url) if child.running else None
            if child.process is process:  # not replaced while we asked
                child.answer = answer
            await asyncio.sleep(POLL_INTERVAL_SECONDS)

    @staticmethod
    async def _ask(session: aiohttp.ClientSession, url: str) -> _Answer | None:
        try:
            async with session.get(f"{url}/readyz") as resp:
                body = await resp.json()
                checks = body.get("checks") if isinstance(body, dict) else None
                return _Answer(ready=resp.status == 200, checks=checks if isinstance(checks, dict) else {})
        except (aiohttp.ClientError, TimeoutError, ValueError):
            # Not serving yet (the connection waits in its socket's backlog), or gone.
            return None

    def _tend(self) -> bool:
        """Restart the children that died; False once one has died MAX_CRASHES times in the window."""
        now = time.monotonic()
        for child in self._children:
            process = child.process
            if process is not None and process.poll() is not None:
                child.process, child.answer = None, None
                self._forget(process.pid)
                deaths = child.died(now)
                if deaths >= MAX_CRASHES:
                    log.error(
                        "edge pool giving up: edge process %d died %d times within %.0f s (last exit code %s);"
                        " stopping the pool",
                        child.index,
                        deaths,
                        CRASH_WINDOW_SECONDS,
                        process.returncode,
                        extra={"index": child.index, "child_pid": process.pid, "returncode": process.returncode},
                    )
                    return False
                delay = min(RESTART_DELAY_SECONDS * 2 ** (deaths - 1), MAX_RESTART_DELAY_SECONDS)
                child.restart_at = now + delay
                log.error(
                    "edge process died; starting another",
                    extra={
                        "index": child.index,
                        "child_pid": process.pid,
                        "returncode": process.returncode,
                        "deaths": deaths,
                        "restart_in_s": delay,
                    },
                )
            if child.process is None and now >= child.restart_at:
                child.process = self._spawn(child)
        self._say_readiness()
        return True

    def _say_readiness(self) -> None:
        ready = sum(child.ready for child in self._children)
        if ready != self._ready_said:
            log.info("edge pool: %d of %d processes ready", ready, self._size, extra={"ready": ready})
            self._ready_said = ready

    def _spawn(self, child: _Child) -> subprocess.Popen[bytes]:
        fds = (self._api.fileno(), child.health.fileno())
        args = [sys.executable, "-m", "edge.pool", "--index", str(child.index), "--parent", str(os.getpid())]
        args += ["--api-fd", str(fds[0]), "--health-fd", str(fds[1])]
        # Before the child imports prometheus_client: its values go to files from the start.
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(self._metrics_dir)}
        # Same process group: `kill -- -PGID` (scripts/up, the test harness) reaches them
        # all, and a child takes a second SIGTERM (ours) as the same request to stop.
        process = subprocess.Popen(args, env=env, pass_fds=fds)
        log.info(
            "edge process started", extra={"index": child.index, "child_pid": process.pid, "health": child.health_url}
        )
        return process

    async def _stop_children(self) -> None:
        live = [c.process for c in self._children if c.process is not None and c.process.poll() is None]
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._settings.graceful_timeout_seconds + _STOP_MARGIN_SECONDS
        for process in live:
            # In a thread: the metrics port answers until the children are gone.
            try:
                await asyncio.to_thread(process.wait, max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("edge process did not stop in time; killing it", extra={"child_pid": process.pid})
                process.kill()
                await asyncio.to_thread(process.wait)

    def _forget(self, pid: int) -> None:
        # Its counters stay in the sums (they were counted); its live gauges go.
        multiprocess.mark_process_dead(pid, str(self._metrics_dir))  # type: ignore[no-untyped-call]


def run_pool(settings: Settings, processes: int) -> int:
    try:
        pool = Pool(settings, processes)
    except PoolRefused as exc:
        log.error("edge pool refused to start: %s", exc)
        return 2
    except OSError as exc:
        log.error("edge pool cannot listen: %s", exc)
        return 2
    return pool.run()


# --- a child ---------------------------------------------------------------------------


class _ProcessFields(logging.Filter):
    """Every log line of a pool process says which one wrote it (they share one output)."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self._index = index

    def filter(self, record: logging.LogRecord) -> bool:
        record.pid = os.getpid()
        record.edge_process = self._index
        return True


def _child(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edge.pool", description="one process of an edge pool")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--api-fd", type=int, required=True)
    parser.add_argument("--health-fd", type=int, required=True)
    args = parser.parse_args(argv)

    settings = get_settings()
    configure_logging("edge", settings.log_level)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_ProcessFields(args.index))
    api = socket.socket(fileno=args.api_fd)
    app = create_app(settings)
    # Its own /metrics, /healthz and /readyz, on the loopback socket the parent asks.
    app[METRICS_SOCKET_KEY] = socket.socket(fileno=args.health_fd)

    loop = uvloop.new_event_loop()
    stopping = False

    def stop() -> None:
        # SIGTERM may come twice (to the process group, and from the parent): a second
        # one must not cut the graceful stop the first began short.
        nonlocal stopping
        if not stopping:
            stopping = True
            raise GracefulExit()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)

    async def join_when_ready(app: web.Application) -> None:
        await _ready_or_late(app, JOIN_TIMEOUT_SECONDS)
        log.info("edge process serving", extra={"index": args.index})

    watch = _ParentWatch(args.parent)
    app.on_startup.append(watch.start)
    app.on_cleanup.append(watch.stop)
    serve(app, settings, sock=api, loop=loop, handle_signals=False, before_accepting=[join_when_ready], backlog=BACKLOG)


async def _ready_or_late(app: web.Application, within: float) -> None:
    """Wait until the process could answer /readyz with 200, at most `within` seconds."""
    bus, jwks = app[BUS_KEY], app[JWKS_KEY]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if bus.is_connected:
            if jwks.answered:
                return
            try:
                async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
                    await jwks.fetch()
                return
            except (RpcError, TimeoutError):
                pass
        await asyncio.sleep(0.1)
    log.warning("edge process not ready in time; serving anyway (its /readyz says why)", extra={"after_s": within})


class _ParentWatch:
    """Stops this process (as SIGTERM would) when its parent is gone."""

    def __init__(self, parent: int) -> None:
        self._parent = parent
        self._task: asyncio.Task[None] | None = None

    async def start(self, app: web.Application) -> None:
        self._task = asyncio.create_task(self._watch(), name="edge-pool-parent-watch")

    async def stop(self, app: web.Application) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if os.getppid() != self._parent:
                break
        log.error("edge pool parent is gone; stopping", extra={"parent": self._parent})
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    _child()
