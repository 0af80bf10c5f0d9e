"""The edge application: `create_app()` wires it, `main()` runs it.

Run: `python -m edge` (or `python -m edge.app`, or the `edge.app:main` entry point).
With `AGORA_EDGE_PROCESSES` (or `agora edge --processes N`) above 1, `main()` runs a
pool of N such processes on the one port instead (edge/pool.py).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence

import aiohttp_cors
import uvloop
from aiohttp import web

from edge import SETTINGS_KEY
from edge.auth import JWKS_KEY, REVOCATION_FEED_KEY, VERIFIER_KEY, JwksSource
from edge.bus import BUS_KEY, RpcClient, RpcError
from edge.cache import setup_cache
from edge.metrics import metrics_handler
from edge.middleware import echo_request_id, json_body_middleware, request_context_middleware
from edge.oidc import setup_oidc
from edge.openapi import setup_docs
from edge.problems import problem_middleware
from edge.ratelimit import RATE_LIMITER_KEY, RateLimiter
from edge.routes import ENDPOINTS, REDIRECTS, setup_routes
from edge.routes.pages import setup_pages
from edge.sessions import CSRF_HEADER, CSRF_KEY, CsrfSigner
from kernel.events import until_done
from kernel.logging import configure_logging
from kernel.revocations import RevocationFeed, RevocationList
from kernel.settings import Settings, get_settings
from kernel.tokens import LEEWAY_SECONDS, TokenVerifier

log = logging.getLogger("agora.edge")

READINESS_TIMEOUT_SECONDS = 2.0
FEED_TASK_KEY = web.AppKey("revocation_feed_task", asyncio.Task[None])
METRICS_RUNNER_KEY = web.AppKey("metrics_runner", web.AppRunner)
# A pool process serves /metrics on the socket its parent bound (edge/pool.py).
METRICS_SOCKET_KEY = web.AppKey("metrics_socket", socket.socket)


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or get_settings()
    app = web.Application(
        # Outermost first: the request id exists before anything can fail, and every
        # failure below becomes a problem response before it is logged and counted.
        middlewares=[request_context_middleware, problem_middleware, json_body_middleware],
        # aiohttp answers 413 itself past this size; the problem middleware shapes it.
        client_max_size=settings.max_body_bytes,
    )
    bus = RpcClient(settings.amqp_url)
    jwks = JwksSource(bus, timeout=settings.rpc_timeout_seconds)
    app[SETTINGS_KEY] = settings
    app[BUS_KEY] = bus
    app[JWKS_KEY] = jwks
    revocations = RevocationList(
        jwks.revocations, window_seconds=settings.access_token_ttl_seconds + LEEWAY_SECONDS
    )
    app[REVOCATION_FEED_KEY] = RevocationFeed(settings.amqp_url, revocations)
    app[VERIFIER_KEY] = TokenVerifier(
        jwks.fetch,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        max_age=settings.jwks_refresh_seconds,
        revocations=revocations,
    )
    app[CSRF_KEY] = CsrfSigner(settings)
    app[RATE_LIMITER_KEY] = RateLimiter(settings)

    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    setup_routes(app)
    setup_docs(app, ENDPOINTS, REDIRECTS)
    setup_pages(app)
    setup_oidc(app, settings)
    _setup_cors(app, settings)
    setup_cache(app, settings.redis_url, settings.amqp_url)

    app.on_response_prepare.append(echo_request_id)
    app.on_startup.append(_start_bus)
    app.on_cleanup.append(_close_bus)
    return app


def _setup_cors(app: web.Application, settings: Settings) -> None:
    """Cross-origin calls only from the configured origins; none configured, none allowed."""
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if not origins:
        return
    options = aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
        allow_credentials=True,
        allow_headers=("Authorization", "Content-Type", CSRF_HEADER, "X-Request-ID", "Idempotency-Key"),
        expose_headers=("X-Request-ID", "Location", "Retry-After"),
        max_age=600,
    )
    cors = aiohttp_cors.setup(app, defaults=dict.fromkeys(origins, options))
    for route in list(app.router.routes()):
        if route.resource is not None and route.resource.canonical.startswith("/api/"):
            cors.add(route)


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving; says nothing about its dependencies."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    return await readyz_of(request.app, request)


async def readyz_of(app: web.Application, request: web.Request) -> web.Response:
    """Ready when the broker is connected and the users service answers (tokens need its keys)."""
    bus, jwks = app[BUS_KEY], app[JWKS_KEY]
    broker = bus.is_connected
    users = jwks.answered
    if broker and not users:
        try:
            async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
                await jwks.fetch()
            users = True
        except (RpcError, TimeoutError):
            pass
    ready = broker and users
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": {"broker": broker, "users": users}},
        status=200 if ready else 503,
    )


async def _start_bus(app: web.Application) -> None:
    app[BUS_KEY].start()
    # Not awaited: the broker may not be up yet, and the edge starts regardless (its
    # /readyz says when it can serve). Tokens wait for the revocations to load.
    app[FEED_TASK_KEY] = asyncio.create_task(until_done("token revocations", app[REVOCATION_FEED_KEY].start))


async def _close_bus(app: web.Application) -> None:
    app[FEED_TASK_KEY].cancel()
    await app[REVOCATION_FEED_KEY].stop()
    await app[BUS_KEY].close()


def edge_metrics_port(settings: Settings) -> int:
    return settings.edge_metrics_port or settings.worker_http_port_base


async def _serve_metrics(app: web.Application) -> None:
    """/metrics on its own port: who can reach the API must not read the edge's counters."""
    settings = app[SETTINGS_KEY]
    internal = web.Application()

    async def ready(request: web.Request) -> web.Response:
        return await readyz_of(app, request)

    internal.router.add_get("/metrics", metrics_handler)
    internal.router.add_get("/healthz", healthz)
    internal.router.add_get("/readyz", ready)
    runner = web.AppRunner(internal, access_log=None)
    await runner.setup()
    inherited = app.get(METRICS_SOCKET_KEY)
    site = (
        web.SockSite(runner, inherited)
        if inherited is not None
        else web.TCPSite(runner, settings.host, edge_metrics_port(settings))
    )
    await site.start()
    app[METRICS_RUNNER_KEY] = runner


async def _stop_metrics(app: web.Application) -> None:
    await app[METRICS_RUNNER_KEY].cleanup()


def main(processes: int | None = None) -> None:
    settings = get_settings()
    configure_logging("edge", settings.log_level)
    processes = processes or settings.edge_processes
    if processes > 1:
        from edge.pool import run_pool

        raise SystemExit(run_pool(settings, processes))
    serve(create_app(settings), settings)


def serve(
    app: web.Application,
    settings: Settings,
    *,
    sock: socket.socket | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    handle_signals: bool = True,
    before_accepting: Sequence[Callable[[web.Application], Awaitable[None]]] = (),
    backlog: int = 128,
) -> None:
    """Run the app until SIGTERM: on its own port, or on `sock` (a pool's shared socket).

    `before_accepting` runs at start-up once /metrics, /healthz and /readyz answer on
    the metrics port, before the API's socket is served.
    """
    app.on_startup.append(_serve_metrics)
    app.on_startup.extend(before_accepting)
    app.on_cleanup.append(_stop_metrics)
    web.run_app(
        app,
        loop=loop or uvloop.new_event_loop(),
        host=settings.host if sock is None else None,
        port=settings.http_port if sock is None else None,
        sock=sock,
        shutdown_timeout=settings.graceful_timeout_seconds,
        handle_signals=handle_signals,
        backlog=backlog,
        access_log=None,  # our middleware writes one JSON line per request instead
        # aiohttp refuses request lines over 8 KiB with a bare 400; a long search string
        # should reach validation and get a 422 that says which field is too long.
        max_line_size=32 * 1024,
        print=log.info,
    )


if __name__ == "__main__":
    main()
