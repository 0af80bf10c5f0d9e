"""Partner systems and service identity, against the real broker, database and processes.

A partner is created with the CLI, gets tokens from `POST /api/oauth/token`, and
talks to the broker as its own RabbitMQ user; workers hold partner tokens to their
scopes, and Agora's workers stamp service tokens on the commands they send.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote_plus

import aio_pika
import aiohttp
import jwt
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aiormq.exceptions import ChannelAccessRefused
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.catalog import SUGGEST_PRODUCTS
from contracts.partners import ISSUE_CLIENT_TOKEN
from contracts.topology import COMMANDS_EXCHANGE, EVENTS_EXCHANGE, CommandSpec
from contracts.users import GET_USER, GetJwks
from harness import broker, environment
from harness.stack import Stack
from kernel.settings import Settings
from kernel.tokens import TokenVerifier
from tests.support import worker_metric
from workers.runtime.identity import service_client_id, service_client_secret
from workers.runtime.service import WorkerService

ALLOWED_KEY = "catalog.get_product.v1"  # in catalog:read; no catalog worker exists yet
TOKEN_URL = "/api/oauth/token"


def _basic(client_id: str, secret: str) -> dict[str, str]:
    """`client_secret_basic` (RFC 6749 §2.3.1: each part form-urlencoded, then Basic)."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}


def _agora(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(environment.ROOT / ".venv/bin/agora"), *args],
        env=stack.env,
        cwd=environment.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def partner(stack: Stack) -> Iterator[dict[str, Any]]:
    name = f"acme-{uuid.uuid4().hex[:8]}"
    done = _agora(stack, "partners", "create", name, "--scopes", "catalog:read,orders:read", "--json")
    assert done.returncode == 0, done.stderr
    yield json.loads(done.stdout)
    # Broker users are global, not per vhost: leave none behind.
    broker.management_api("DELETE", f"/users/partner-{name}")


async def _token(http: aiohttp.ClientSession, form: dict[str, str], **kwargs: Any) -> tuple[int, dict[str, Any]]:
    async with http.post(TOKEN_URL, data=form, **kwargs) as resp:
        assert resp.headers["Cache-Control"] == "no-store"
        return resp.status, await resp.json()


async def _partner_token(http: aiohttp.ClientSession, partner: dict[str, Any]) -> dict[str, Any]:
    basic = _basic(partner["client_id"], partner["client_secret"])
    status, body = await _token(http, {"grant_type": "client_credentials"}, headers=basic)
    assert status == 200, body
    return body


async def _verifier(http: aiohttp.ClientSession, stack: Stack) -> TokenVerifier:
    async def jwks() -> dict[str, Any]:
        async with http.get("/api/auth/jwks.json") as resp:
            document: dict[str, Any] = await resp.json()
            return document

    return TokenVerifier(jwks, issuer=stack.env.get("AGORA_JWT_ISSUER", "agora"), audience="agora-api")


# --- the CLI ------------------------------------------------------------------------------


async def test_create_prints_credentials_once_and_refuses_a_second_partner_of_that_name(
    stack: Stack, partner: dict[str, Any], db: AsyncEngine
) -> None:
    assert partner["amqp_username"] == f"partner-{partner['name']}"
    assert partner["scopes"] == ["catalog:read", "orders:read"]
    assert partner["amqp_url"].endswith(f"/{environment.VHOST}")
    async with db.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT kind, scopes, secret_hash FROM users.clients WHERE client_id = :c"),
                {"c": partner["client_id"]},
            )
        ).one()
        audited = (
            await conn.execute(
                text(
                    "SELECT actor_role, details FROM users.audit_log WHERE action = 'partner.create' AND target_id = :c"
                ),
                {"c": partner["client_id"]},
            )
        ).one()
    assert row.kind == "partner" and row.scopes == ["catalog:read", "orders:read"]
    assert partner["client_secret"] not in row.secret_hash  # only a hash is kept
    assert audited.actor_role == "operator" and audited.details["name"] == partner["name"]
    again = await asyncio.to_thread(_agora, stack, "partners", "create", partner["name"], "--scopes", "catalog:read")
    assert again.returncode == 2 and "already exists" in again.stderr
    unknown = await asyncio.to_thread(_agora, stack, "partners", "create", "other-one", "--scopes", "admin:all")
    assert unknown.returncode == 2 and "unknown scope" in unknown.stderr
    listed = await asyncio.to_thread(_agora, stack, "partners", "list", "--json")
    names = {c["name"]: c for c in json.loads(listed.stdout)}
    assert names[partner["name"]]["client_id"] == partner["client_id"]
    assert names["service.users"]["kind"] == "service"  # provisioned by the users worker


# --- the token endpoint -------------------------------------------------------------------


async def test_basic_and_form_authentication_get_a_partner_token(
    http: aiohttp.ClientSession, stack: Stack, partner: dict[str, Any]
) -> None:
    basic = _basic(partner["client_id"], partner["client_secret"])
    status, body = await _token(http, {"grant_type": "client_credentials"}, headers=basic)
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["expires_in"] == int(stack.env["AGORA_ACCESS_TOKEN_TTL_SECONDS"])
    assert body["scope"] == "catalog:read orders:read"  # nothing asked: everything the partner has
    form = {
        "grant_type": "client_credentials",
        "client_id": partner["client_id"],
        "client_secret": partner["client_secret"],
        "scope": "orders:read",
    }
    status, narrowed = await _token(http, form)
    assert status == 200 and narrowed["scope"] == "orders:read"

    actor = await (await _verifier(http, stack)).verify(body["access_token"])
    assert (str(actor.user_id), actor.role, actor.scopes) == (
        partner["client_id"],
        "partner",
        {"catalog:read", "orders:read"},
    )
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert (claims["aud"], claims["iss"], claims["scope"]) == ("agora-api", "agora", "catalog:read orders:read")
    ttl = int(stack.env["AGORA_ACCESS_TOKEN_TTL_SECONDS"])
    assert ttl - 1 < claims["exp"] - claims["iat"] <= ttl  # `iat` has milliseconds (revocations need them)


async def test_wrong_secret_and_unknown_client_get_the_same_401(
    http: aiohttp.ClientSession, partner: dict[str, Any]
) -> None:
    answers = []
    for client_id, secret in (
        (partner["client_id"], "not-the-secret"),
        (str(uuid.uuid4()), partner["client_secret"]),
        ("not-even-a-uuid", "whatever"),
    ):
        async with http.post(
            TOKEN_URL, data={"grant_type": "client_credentials"}, headers=_basic(client_id, secret)
        ) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Basic")
            answers.append(await resp.json())
    assert answers[0] == answers[1] == answers[2]
    assert answers[0] == {"error": "invalid_client", "error_description": "client authentication failed"}
    status, body = await _token(http, {"grant_type": "client_credentials"})  # no credentials at all
    assert status == 401 and body["error"] == "invalid_client"


async def test_request_errors_are_rfc_6749_errors(http: aiohttp.ClientSession, partner: dict[str, Any]) -> None:
    basic = _basic(partner["client_id"], partner["client_secret"])
    cases = [
        ({"grant_type": "password", "username": "x", "password": "y"}, 400, "unsupported_grant_type"),
        ({}, 400, "invalid_request"),
        ({"grant_type": "client_credentials", "scope": "orders:write"}, 400, "invalid_scope"),
        ({"grant_type": "client_credentials", "scope": "catalog:read nonsense"}, 400, "invalid_scope"),
        (
            {"grant_type": "client_credentials", "client_secret": partner["client_secret"]},
            400,
            "invalid_request",  # Basic and the form at once
        ),
    ]
    for form, status, error in cases:
        got, body = await _token(http, form, headers=basic)
        assert (got, body["error"]) == (status, error), form
    async with http.post(TOKEN_URL, json={"grant_type": "client_credentials"}, headers=basic) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "invalid_request"  # not JSON, not a 415


# --- the partner's broker user ------------------------------------------------------------


async def test_the_partner_publishes_only_its_scopes_routing_keys(
    amqp: AbstractRobustConnection, http: aiohttp.ClientSession, partner: dict[str, Any]
) -> None:
    token = await _partner_token(http, partner)
    # Stand-in for the catalog worker (a later issue): answers on the reply-to address.
    admin = await amqp.channel()
    inbox = await admin.declare_queue(exclusive=True, auto_delete=True)
    await inbox.bind(COMMANDS_EXCHANGE, ALLOWED_KEY)
    received: list[AbstractIncomingMessage] = []

    async def answer(message: AbstractIncomingMessage) -> None:
        received.append(message)
        reply = aio_pika.Message(b'{"ok": true, "data": {}}', correlation_id=message.correlation_id)
        await admin.default_exchange.publish(reply, routing_key=str(message.reply_to))

    await inbox.consume(answer, no_ack=True)

    connection = await aio_pika.connect(partner["amqp_url"])
    try:
        channel = await connection.channel(publisher_confirms=True)
        replies: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_reply(message: AbstractIncomingMessage) -> None:
            await replies.put(message.body)

        reply_queue = await channel.get_queue("amq.rabbitmq.reply-to", ensure=False)
        await reply_queue.consume(on_reply, no_ack=True)
        exchange = await channel.get_exchange(COMMANDS_EXCHANGE, ensure=False)
        message_id = str(uuid.uuid4())
        await exchange.publish(
            aio_pika.Message(
                b'{"product_id": "x"}',
                message_id=message_id,
                reply_to="amq.rabbitmq.reply-to",
                headers={"authorization": f"Bearer {token['access_token']}"},
                content_type="application/json",
            ),
            routing_key=ALLOWED_KEY,
            mandatory=True,
        )
        assert json.loads(await asyncio.wait_for(replies.get(), 10)) == {"ok": True, "data": {}}
        assert received[0].message_id == message_id
        assert received[0].headers["authorization"] == f"Bearer {token['access_token']}"

        # Another routing key, the events exchange, the default exchange: all refused.
        for exchange_name, key in (
            (COMMANDS_EXCHANGE, GET_USER.routing_key),
            (COMMANDS_EXCHANGE, ISSUE_CLIENT_TOKEN.routing_key),
            (EVENTS_EXCHANGE, ALLOWED_KEY),
            ("", GET_USER.queue),
        ):
            refused = await connection.channel(publisher_confirms=True)
            target = (
                await refused.get_exchange(exchange_name, ensure=False) if exchange_name else refused.default_exchange
            )
            with pytest.raises(ChannelAccessRefused):
                await target.publish(aio_pika.Message(b"{}"), routing_key=key, mandatory=True, timeout=10)
        # Nor may it create or read queues of its own.
        with pytest.raises(ChannelAccessRefused):
            await (await connection.channel()).declare_queue(exclusive=True)
    finally:
        await connection.close()
        await admin.close()


async def _ask_over_the_broker(partner: dict[str, Any], token: str, routing_key: str, body: bytes) -> dict[str, Any]:
    """A request from the partner's own RabbitMQ user, its reply read on direct reply-to."""
    connection = await aio_pika.connect(partner["amqp_url"])
    try:
        channel = await connection.channel(publisher_confirms=True)
        replies: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_reply(message: AbstractIncomingMessage) -> None:
            await replies.put(message.body)

        await (await channel.get_queue("amq.rabbitmq.reply-to", ensure=False)).consume(on_reply, no_ack=True)
        exchange = await channel.get_exchange(COMMANDS_EXCHANGE, ensure=False)
        message = aio_pika.Message(
            body,
            message_id=str(uuid.uuid4()),
            reply_to="amq.rabbitmq.reply-to",
            headers={"authorization": f"Bearer {token}"},
            content_type="application/json",
        )
        await exchange.publish(message, routing_key=routing_key, mandatory=True, timeout=10)
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(replies.get(), 10))
        return reply
    finally:
        await connection.close()


async def test_sync_gives_existing_partners_the_routing_keys_a_release_added_to_their_scopes(
    http: aiohttp.ClientSession, stack: Stack, partner: dict[str, Any]
) -> None:
    # A partner created before catalog:read covered autocomplete: its broker user's topic
    # permission names the two keys the scope had then.
    user = quote_plus(partner["amqp_username"])
    older = {
        "exchange": COMMANDS_EXCHANGE,
        "write": r"^(catalog\.get_product\.v1|catalog\.search_products\.v1)$",
        "read": "^$",
    }
    path = f"/topic-permissions/{environment.VHOST}/{user}"
    assert broker.management_api("PUT", path, json.dumps(older).encode()) in (201, 204)
    token = (await _partner_token(http, partner))["access_token"]
    with pytest.raises(ChannelAccessRefused):
        await _ask_over_the_broker(partner, token, SUGGEST_PRODUCTS.routing_key, b'{"q": "la"}')

    synced = await asyncio.to_thread(_agora, stack, "partners", "sync")
    assert synced.returncode == 0, synced.stderr
    assert partner["name"] in synced.stdout
    # The catalog worker answers it: the token's scope allows the key, and now the broker does.
    reply = await _ask_over_the_broker(partner, token, SUGGEST_PRODUCTS.routing_key, b'{"q": "la"}')
    assert reply["ok"] is True and isinstance(reply["data"]["items"], list), reply


async def test_a_partner_token_outside_its_scopes_is_dead_lettered(
    amqp: AbstractRobustConnection, http: aiohttp.ClientSession, stack: Stack, partner: dict[str, Any]
) -> None:
    token = await _partner_token(http, partner)
    before = _dead_lettered(stack, GET_USER.queue, "scope_denied")
    # Published with Agora's own broker user: the worker must refuse it by itself.
    channel = await amqp.channel()
    exchange = await channel.get_exchange(COMMANDS_EXCHANGE, ensure=False)
    message_id = str(uuid.uuid4())
    await exchange.publish(
        aio_pika.Message(
            json.dumps({"user_id": partner["client_id"]}).encode(),
            message_id=message_id,
            headers={"authorization": f"Bearer {token['access_token']}"},
            content_type="application/json",
        ),
        routing_key=GET_USER.routing_key,
        mandatory=True,
    )
    dlq = await channel.declare_queue(f"{GET_USER.queue}.dlq", passive=True)
    found = None
    for _ in range(100):
        message = await dlq.get(fail=False, no_ack=True)
        if message is not None and message.message_id == message_id:
            found = message
            break
        if message is None:
            await asyncio.sleep(0.1)
    await channel.close()
    assert found is not None, "not dead-lettered"
    assert _dead_lettered(stack, GET_USER.queue, "scope_denied") == before + 1


def _dead_lettered(stack: Stack, queue: str, reason: str) -> float:
    return worker_metric(stack.users.port, "agora_dead_lettered_total", queue=queue, reason=reason)


async def test_a_disabled_partner_gets_no_token_and_loses_its_broker_user(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    name = f"gone-{uuid.uuid4().hex[:8]}"
    created = await asyncio.to_thread(_agora, stack, "partners", "create", name, "--scopes", "orders:write", "--json")
    credentials = json.loads(created.stdout)
    basic = _basic(credentials["client_id"], credentials["client_secret"])
    assert (await _token(http, {"grant_type": "client_credentials"}, headers=basic))[0] == 200
    disabled = await asyncio.to_thread(_agora, stack, "partners", "disable", name)
    assert disabled.returncode == 0, disabled.stderr
    status, body = await _token(http, {"grant_type": "client_credentials"}, headers=basic)
    assert status == 401 and body["error"] == "invalid_client"
    assert broker.management_api("GET", f"/users/partner-{name}") == 404


# --- service identity ---------------------------------------------------------------------


@pytest.fixture
async def runtime(stack: Stack) -> AsyncIterator[WorkerService]:
    """The shared runtime as a worker process would build it, here against the test stack."""
    with pytest.MonkeyPatch.context() as env:
        for key, value in stack.env.items():
            env.setenv(key, value)
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.service_secret, "the test environment has no AGORA_SERVICE_SECRET"
    service = WorkerService("users", settings=settings)  # no token source given: it asks over the bus
    await service.broker.connect()
    yield service
    await service.broker.stop()
    await service.close_database()


async def test_a_worker_gets_a_service_token_over_the_bus_and_the_relay_stamps_it(
    runtime: WorkerService, http: aiohttp.ClientSession, stack: Stack, amqp: AbstractRobustConnection, db: AsyncEngine
) -> None:
    assert runtime.identity is not None
    verifier = await _verifier(http, stack)
    token = await runtime.identity.token()
    actor = await verifier.verify(token)
    assert (actor.user_id, actor.role, actor.scopes) == (service_client_id("users"), "service", {"service:users"})
    assert await runtime.identity.token() == token  # cached, not fetched per command

    spec = CommandSpec("partnertest", "ping", 1, GetJwks, None)
    channel = await amqp.channel()
    target = await channel.declare_queue(exclusive=True, auto_delete=True)
    await target.bind(COMMANDS_EXCHANGE, spec.routing_key)
    async with runtime.unit_of_work() as ctx:
        await ctx.send(spec, GetJwks())
    async with db.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT message_id, headers FROM users.outbox WHERE routing_key = :k ORDER BY id DESC LIMIT 1"),
                {"k": spec.routing_key},
            )
        ).one()
    assert "authorization" not in row.headers  # a token is added when the row is published, not before
    await runtime.relay.publish_batch()  # this relay or the users worker's: either stamps its service token
    message = None
    for _ in range(100):
        message = await target.get(fail=False, no_ack=True)
        if message is not None:
            break
        await asyncio.sleep(0.1)
    await channel.close()
    assert message is not None and message.message_id == str(row.message_id)
    stamped = await verifier.verify(str(message.headers["authorization"]).removeprefix("Bearer "))
    assert (stamped.user_id, stamped.role) == (service_client_id("users"), "service")


async def test_a_service_client_gets_no_token_over_http(runtime: WorkerService, http: aiohttp.ClientSession) -> None:
    # The real credentials of the users service's client: good on the bus, refused from the internet.
    secret = service_client_secret(runtime.settings.service_secret, "users")
    form = {"grant_type": "client_credentials", "client_id": str(service_client_id("users")), "client_secret": secret}
    async with http.post("/api/oauth/token", data=form) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"] == "invalid_client"
    assert runtime.identity is not None
    assert await runtime.identity.token()  # the same client over the bus
