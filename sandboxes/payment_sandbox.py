"""Sandbox payment provider: a small Stripe-like HTTP API with a ledger, for development and tests.

Run with ``python -m sandboxes.payment_sandbox``. It plays the payment service provider the
payments worker talks to (workers/payments/gateway.py); it never sees a card number,
only test tokens:

    tok_visa, tok_mastercard   approve
    tok_chargeDeclined         decline (402, the authorization is recorded as declined)
    tok_timeout                authorize at once, but answer only after
                               AGORA_SANDBOX_TIMEOUT_DELAY_SECONDS (default 30 s)
    tok_flaky                  answer 503 twice per idempotency key, then approve

HTTP API (JSON; every POST takes an ``Idempotency-Key`` header):
    POST /v1/authorizations                  {"amount", "currency", "token", "metadata": {"order_id"}}
    GET  /v1/authorizations?order_id=...     the authorizations made for an order
    GET  /v1/authorizations/{id}
    GET  /v1/tokens/{token}                  a token the sandbox knows (any other: 404)
    POST /v1/authorizations/{id}/capture     the whole amount (once)
    POST /v1/authorizations/{id}/void        only while uncaptured
    POST /v1/authorizations/{id}/refund      the whole captured amount (once)
    GET  /v1/ledger                          totals, and every order's authorizations
    GET  /v1/ledger/orders/{order_id}
    DELETE /v1/ledger                        forget everything (a test's fresh start)
    GET  /healthz, /readyz

Idempotency as Stripe has it: the same key on the same endpoint with the same body
returns the stored response (never a second authorization, capture or refund); with
another body → 422; while the first request is still being answered → 409. 5xx
answers are not stored, so a retry after one does the work.

State (authorizations and stored responses) is kept in memory, and every change is
appended as one JSON line to ``$AGORA_RUN_DIR/payment_sandbox/journal.jsonl``, which is
replayed at start, so a restarted sandbox keeps its ledger (a change costs the same
whatever the ledger's size: issue 14's chaos runs make tens of thousands). Configured by
AGORA_PAYMENT_SANDBOX_HOST (default AGORA_HOST, else 127.0.0.1),
AGORA_PAYMENT_SANDBOX_PORT (1090), AGORA_SANDBOX_TIMEOUT_DELAY_SECONDS and AGORA_RUN_DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

log = logging.getLogger("agora.payment_sandbox")

APPROVE = frozenset({"tok_visa", "tok_mastercard", "tok_timeout", "tok_flaky"})
DECLINE = frozenset({"tok_chargeDeclined"})
FLAKY_FAILURES = 2
STORE_NAME = "journal.jsonl"
LEGACY_STORE_NAME = "ledger.json"


@dataclass
class Authorization:
    id: str
    order_id: str | None
    amount: int
    currency: str
    token: str
    # authorized, declined, captured, voided, refunded
    status: str
    amount_captured: int = 0
    amount_refunded: int = 0
    captures: int = 0
    refunds: int = 0
    created_at: str = ""
    updated_at: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)

    def move(self, status: str) -> None:
        self.status = status
        self.updated_at = _now()
        self.history.append({"status": status, "at": self.updated_at})


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, authorization: Authorization | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.authorization = authorization

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": {"code": self.code, "message": str(self)}}
        if self.authorization is not None:
            body["authorization"] = asdict(self.authorization)
        return body


class Ledger:
    """Authorizations and stored idempotent responses, persisted as a journal: one JSON line
    per change, replayed at start (the last line about a thing wins). A change costs one
    line whatever the ledger's size, and an order's authorizations are indexed."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.authorizations: dict[str, Authorization] = {}
        self._by_order: dict[str, list[Authorization]] = {}
        # key → {"scope", "fingerprint", "status", "body"}
        self.responses: dict[str, dict[str, Any]] = {}
        self.in_progress: set[str] = set()
        self.failures: dict[str, int] = {}
        if path is not None and path.exists():
            lines = path.read_text().splitlines()
            for number, line in enumerate(lines, 1):
                try:
                    self._apply(json.loads(line))
                except ValueError:
                    if number < len(lines):
                        raise
                    # A line cut short by a crash mid-write: that change was never answered.
                    log.warning("payment sandbox: an incomplete last journal line dropped")
                    path.write_text("".join(f"{kept}\n" for kept in lines[:-1]))
        elif path is not None and (legacy := path.with_name(LEGACY_STORE_NAME)).exists():
            # The whole-file ledger of before issue 14, taken over once.
            data = json.loads(legacy.read_text())
            for auth in data.get("authorizations", []):
                self.keep(Authorization(**auth))
            for key, stored in data.get("responses", {}).items():
                self.keep_response(key, stored)
            for key, count in data.get("failures", {}).items():
                self.keep_failures(key, count)

    def _apply(self, change: dict[str, Any]) -> None:
        if "authorization" in change:
            self._put(Authorization(**change["authorization"]))
        elif "response" in change:
            key, stored = change["response"]
            self.responses[key] = stored
        elif "failures" in change:
            key, count = change["failures"]
            self.failures[key] = count

    def _put(self, auth: Authorization) -> None:
        known = self.authorizations.get(auth.id)
        self.authorizations[auth.id] = auth
        mine = self._by_order.setdefault(auth.order_id or "", [])
        mine[:] = [auth if a is known else a for a in mine] if known is not None else [*mine, auth]

    def _write(self, change: dict[str, Any]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as journal:
            journal.write(json.dumps(change) + "\n")

    def keep(self, auth: Authorization) -> None:
        """A new authorization, or one that moved."""
        self._put(auth)
        self._write({"authorization": asdict(auth)})

    def keep_response(self, key: str, stored: dict[str, Any]) -> None:
        self.responses[key] = stored
        self._write({"response": [key, stored]})

    def keep_failures(self, key: str, count: int) -> None:
        self.failures[key] = count
        self._write({"failures": [key, count]})

    def reset(self) -> None:
        self.authorizations.clear()
        self._by_order.clear()
        self.responses.clear()
        self.failures.clear()
        if self.path is not None and self.path.exists():
            self.path.unlink()

    def for_order(self, order_id: str) -> list[Authorization]:
        return list(self._by_order.get(order_id, ()))

    def summary(self) -> dict[str, Any]:
        orders: dict[str, list[Authorization]] = {}
        for auth in self.authorizations.values():
            orders.setdefault(auth.order_id or "", []).append(auth)
        captured = sum(a.amount_captured for a in self.authorizations.values())
        refunded = sum(a.amount_refunded for a in self.authorizations.values())
        return {
            "totals": {
                "authorizations": len(self.authorizations),
                "live_authorizations": sum(a.status == "authorized" for a in self.authorizations.values()),
                "captured": captured,
                "refunded": refunded,
                "net_captured": captured - refunded,
                "captures": sum(a.captures for a in self.authorizations.values()),
            },
            "orders": {order_id: order_summary(auths) for order_id, auths in orders.items()},
        }


def order_summary(auths: list[Authorization]) -> dict[str, Any]:
    """One order as the ledger sees it: what was captured and what is still live."""
    captured = sum(a.amount_captured for a in auths)
    refunded = sum(a.amount_refunded for a in auths)
    return {
        "authorizations": [asdict(a) for a in auths],
        "live_authorizations": sum(a.status == "authorized" for a in auths),
        "captures": sum(a.captures for a in auths),
        "captured": captured,
        "refunded": refunded,
        "net_captured": captured - refunded,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat()


LEDGER_KEY = web.AppKey("ledger", Ledger)
DELAY_KEY = web.AppKey("timeout_delay", float)

Work = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]


async def _idempotent(request: web.Request, body: dict[str, Any], work: Work) -> web.Response:
    """Run `work` once per Idempotency-Key; a repeat gets the stored answer."""
    ledger = request.app[LEDGER_KEY]
    key = request.headers.get("Idempotency-Key", "")
    if not key:
        status, answer = await _guarded(work)
        return web.json_response(answer, status=status)
    scope = f"{request.method} {request.path}"
    fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    stored = ledger.responses.get(key)
    if stored is not None:
        if stored["scope"] != scope or stored["fingerprint"] != fingerprint:
            raise ApiError(422, "idempotency_key_reused", "this key was used with another request")
        return web.json_response(stored["body"], status=stored["status"], headers={"Idempotent-Replayed": "true"})
    if key in ledger.in_progress:
        raise ApiError(409, "idempotency_key_in_use", "a request with this key is still being processed")
    ledger.in_progress.add(key)
    try:
        status, answer = await _guarded(work)
        if status < 500:
            ledger.keep_response(key, {"scope": scope, "fingerprint": fingerprint, "status": status, "body": answer})
    finally:
        ledger.in_progress.discard(key)
    return web.json_response(answer, status=status)


async def _guarded(work: Work) -> tuple[int, dict[str, Any]]:
    try:
        return await work()
    except ApiError as err:
        return err.status, err.body()


async def _json(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be an object")
    return body


def _authorization(request: web.Request) -> Authorization:
    auth = request.app[LEDGER_KEY].authorizations.get(request.match_info["id"])
    if auth is None:
        raise ApiError(404, "not_found", "no such authorization")
    return auth


async def create_authorization(request: web.Request) -> web.Response:
    ledger = request.app[LEDGER_KEY]
    body = await _json(request)
    amount, currency, token = body.get("amount"), body.get("currency"), body.get("token")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ApiError(400, "invalid_amount", "amount must be a positive integer of minor units")
    if not isinstance(currency, str) or len(currency) != 3:
        raise ApiError(400, "invalid_currency", "currency must be an ISO 4217 code")
    if not isinstance(token, str) or token not in APPROVE | DECLINE:
        raise ApiError(400, "invalid_token", "unknown payment token")
    metadata = body.get("metadata") or {}
    order_id = str(metadata["order_id"]) if isinstance(metadata, dict) and "order_id" in metadata else None
    key = request.headers.get("Idempotency-Key", "")

    if token == "tok_flaky" and key and key not in ledger.responses:
        failures = ledger.failures.get(key, 0)
        if failures < FLAKY_FAILURES:
            ledger.keep_failures(key, failures + 1)
            raise ApiError(503, "provider_unavailable", "tok_flaky: try again")

    async def work() -> tuple[int, dict[str, Any]]:
        now = _now()
        status = "declined" if token in DECLINE else "authorized"
        auth = Authorization(
            id=f"auth_{uuid.uuid4().hex}",
            order_id=order_id,
            amount=amount,
            currency=currency.upper(),
            token=token,
            status=status,
            created_at=now,
            updated_at=now,
            history=[{"status": status, "at": now}],
        )
        ledger.keep(auth)
        log.info("authorization %s: %s %s %s for order %s", auth.id, status, amount, currency, order_id)
        if token == "tok_timeout":
            # Authorized already (the ledger says so); only the answer is late.
            await asyncio.sleep(request.app[DELAY_KEY])
        if status == "declined":
            raise ApiError(402, "card_declined", "the card was declined", auth)
        return 201, asdict(auth)

    return await _idempotent(request, body, work)


async def capture(request: web.Request) -> web.Response:
    def apply(auth: Authorization) -> None:
        auth.amount_captured = auth.amount
        auth.captures += 1
        auth.move("captured")

    return await _step(request, "capture", "authorized", apply)


async def void(request: web.Request) -> web.Response:
    return await _step(request, "void", "authorized", lambda auth: auth.move("voided"))


async def refund(request: web.Request) -> web.Response:
    def apply(auth: Authorization) -> None:
        auth.amount_refunded = auth.amount_captured
        auth.refunds += 1
        auth.move("refunded")

    return await _step(request, "refund", "captured", apply)


async def _step(request: web.Request, verb: str, required: str, apply: Callable[[Authorization], None]) -> web.Response:
    """One move of an authorization (capture, void, refund), idempotent per key."""
    body = await _json(request)

    async def work() -> tuple[int, dict[str, Any]]:
        auth = _authorization(request)
        if auth.status != required:
            raise ApiError(409, "invalid_state", f"cannot {verb} an authorization that is {auth.status}", auth)
        apply(auth)
        request.app[LEDGER_KEY].keep(auth)
        return 200, asdict(auth)

    return await _idempotent(request, body, work)


async def get_token(request: web.Request) -> web.Response:
    """A test token, as a provider describes a token it issued (no card data here either)."""
    token = request.match_info["token"]
    if token not in APPROVE | DECLINE:
        raise ApiError(404, "no_such_token", "no such payment token")
    return web.json_response({"id": token, "object": "token"})


async def get_authorization(request: web.Request) -> web.Response:
    return web.json_response(asdict(_authorization(request)))


async def list_authorizations(request: web.Request) -> web.Response:
    order_id = request.query.get("order_id")
    if not order_id:
        raise ApiError(400, "missing_order_id", "give ?order_id=")
    return web.json_response({"data": [asdict(a) for a in request.app[LEDGER_KEY].for_order(order_id)]})


async def ledger_view(request: web.Request) -> web.Response:
    return web.json_response(request.app[LEDGER_KEY].summary())


async def ledger_order(request: web.Request) -> web.Response:
    return web.json_response(order_summary(request.app[LEDGER_KEY].for_order(request.match_info["order_id"])))


async def ledger_reset(request: web.Request) -> web.Response:
    request.app[LEDGER_KEY].reset()
    return web.json_response({"ok": True})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@web.middleware
async def errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    try:
        return await handler(request)
    except ApiError as err:
        return web.json_response(err.body(), status=err.status)


def make_app(store: Path | None, timeout_delay: float) -> web.Application:
    app = web.Application(middlewares=[errors])
    app[LEDGER_KEY] = Ledger(store)
    app[DELAY_KEY] = timeout_delay
    app.router.add_post("/v1/authorizations", create_authorization)
    app.router.add_get("/v1/authorizations", list_authorizations)
    app.router.add_get("/v1/authorizations/{id}", get_authorization)
    app.router.add_get("/v1/tokens/{token}", get_token)
    app.router.add_post("/v1/authorizations/{id}/capture", capture)
    app.router.add_post("/v1/authorizations/{id}/void", void)
    app.router.add_post("/v1/authorizations/{id}/refund", refund)
    app.router.add_get("/v1/ledger", ledger_view)
    app.router.add_delete("/v1/ledger", ledger_reset)
    app.router.add_get("/v1/ledger/orders/{order_id}", ledger_order)
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", health)
    return app


def main(argv: list[str] | None = None) -> None:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default=env.get("AGORA_PAYMENT_SANDBOX_HOST") or env.get("AGORA_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("AGORA_PAYMENT_SANDBOX_PORT", "1090")))
    parser.add_argument(
        "--timeout-delay", type=float, default=float(env.get("AGORA_SANDBOX_TIMEOUT_DELAY_SECONDS", "30"))
    )
    parser.add_argument("--run-dir", default=env.get("AGORA_RUN_DIR", ".run"))
    parser.add_argument("--memory", action="store_true", help="keep the ledger in memory only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s payment-sandbox %(levelname)s %(message)s")
    store = None if args.memory else Path(args.run_dir) / "payment_sandbox" / STORE_NAME
    log.info("payment sandbox on http://%s:%s (ledger %s)", args.host, args.port, store or "in memory")
    web.run_app(make_app(store, args.timeout_delay), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
