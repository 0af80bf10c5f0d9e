"""The edge as a pool: N processes serving one port (`agora edge --processes N`).

A small parent binds the API's and the metrics' listening sockets once and starts N
children, each a full edge (its own event loop, broker connections, reply queue and
event queues) serving those inherited sockets: the kernel hands each new connection
to one of the processes waiting in `accept()`. The parent serves nothing itself: it
restarts a child that dies, and on SIGTERM or SIGINT passes the signal on and waits
for every child's graceful stop (`AGORA_GRACEFUL_TIMEOUT_SECONDS`), then kills what is left.

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
service's keys fetched), or after `JOIN_TIMEOUT_SECONDS` regardless, so a restarted
child never answers 503 while the others could serve; and it stops by itself if its
parent dies (SIGKILL), so it never keeps the port on its own.
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
from pathlib import Path
from types import FrameType

import uvloop
from aiohttp import web
from aiohttp.web_runner import GracefulExit
from prometheus_client import multiprocess

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
# A child that dies is started again after this, doubled while it keeps dying young.
RESTART_DELAY_SECONDS = 1.0
MAX_RESTART_DELAY_SECONDS = 30.0
_YOUNG_SECONDS = 10.0
# Beyond the children's graceful timeout, how long the parent waits before SIGKILL.
_STOP_MARGIN_SECONDS = 5.0


class PoolRefused(Exception):
    """The pool cannot start as configured; the message says why."""


def metrics_dir(settings: Settings, run_dir: str | None = None) -> Path:
    """The pool's Prometheus multiprocess directory, one per port (emptied at each start)."""
    run = run_dir or os.environ.get("AGORA_RUN_DIR") or ".run"
    return Path(run) / "metrics" / f"edge-{settings.http_port}"


def listen(host: str, port: int) -> socket.socket:
    """A listening socket the children inherit (SO_REUSEADDR as aiohttp sets it, no SO_REUSEPORT)."""
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


class Pool:
    """The parent: N children on two inherited sockets, restarted when they die."""

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
        self._api = listen(settings.host, settings.http_port)
        try:
            self._metrics = listen(settings.host, edge_metrics_port(settings))
        except OSError:
            self._api.close()
            raise
        self._children: list[subprocess.Popen[bytes] | None] = [None] * processes
        self._started_at = [0.0] * processes
        self._restart_at = [0.0] * processes
        self._delay = [RESTART_DELAY_SECONDS] * processes
        self._stopping = False

    def run(self) -> int:
        shutil.rmtree(self._metrics_dir, ignore_errors=True)
        self._metrics_dir.mkdir(parents=True)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        log.info(
            "edge pool starting",
            extra={"processes": self._size, "port": self._settings.http_port, "metrics_dir": str(self._metrics_dir)},
        )
        try:
            while not self._stopping:
                self._tend()
                time.sleep(0.2)
        finally:
            # The parent's copies first: once each child has closed its own (the first
            # thing its graceful stop does), the kernel refuses new connections at once,
            # as a single edge's would, instead of queueing them for nobody.
            self._api.close()
            self._metrics.close()
            self._stop_children()
        log.info("edge pool stopped")
        return 0

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _tend(self) -> None:
        now = time.monotonic()
        for index, child in enumerate(self._children):
            if child is not None and child.poll() is not None:
                self._children[index] = None
                self._forget(child.pid)
                young = now - self._started_at[index] < _YOUNG_SECONDS
                self._delay[index] = (
                    min(self._delay[index] * 2, MAX_RESTART_DELAY_SECONDS) if young else RESTART_DELAY_SECONDS
                )
                self._restart_at[index] = now + self._delay[index]
                log.error(
                    "edge process died; starting another",
                    extra={"index": index, "child_pid": child.pid, "returncode": child.returncode},
                )
            if self._children[index] is None and now >= self._restart_at[index] and not self._stopping:
                self._children[index] = self._spawn(index)
                self._started_at[index] = now

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        fds = (self._api.fileno(), self._metrics.fileno())
        args = [sys.executable, "-m", "edge.pool", "--index", str(index), "--parent", str(os.getpid())]
        args += ["--api-fd", str(fds[0]), "--metrics-fd", str(fds[1])]
        # Before the child imports prometheus_client: its values go to files from the start.
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(self._metrics_dir)}
        # Same process group: `kill -- -PGID` (scripts/up, the test harness) reaches them
        # all, and a child takes a second SIGTERM (ours) as the same request to stop.
        child = subprocess.Popen(args, env=env, pass_fds=fds)
        log.info("edge process started", extra={"index": index, "child_pid": child.pid})
        return child

    def _stop_children(self) -> None:
        live = [c for c in self._children if c is not None and c.poll() is None]
        for child in live:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._settings.graceful_timeout_seconds + _STOP_MARGIN_SECONDS
        for child in live:
            try:
                child.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("edge process did not stop in time; killing it", extra={"child_pid": child.pid})
                child.kill()
                child.wait()

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
    parser.add_argument("--metrics-fd", type=int, required=True)
    args = parser.parse_args(argv)

    settings = get_settings()
    configure_logging("edge", settings.log_level)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_ProcessFields(args.index))
    api = socket.socket(fileno=args.api_fd)
    app = create_app(settings)
    app[METRICS_SOCKET_KEY] = socket.socket(fileno=args.metrics_fd)

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
    serve(
        app, settings, sock=api, loop=loop, handle_signals=False, before_accepting=[join_when_ready], backlog=BACKLOG
    )


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
