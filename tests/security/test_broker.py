"""The broker is not trusted (issue 13): least-privilege identities, events only from their
owning service, replies only to reply queues, and dead letters that keep no secret.

Before: every process connected as the administrator `agora`, the saga took
`payments.payment_captured.v1` from anyone who could publish, a command's `reply_to` could
name any queue, and a dead-lettered login kept its password for anyone with the admin
dashboard to read.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import aiohttp
import pytest
from aio_pika.abc import AbstractRobustConnection
from aio_pika.exceptions import AMQPChannelError, ChannelClosed, ChannelInvalidStateError

from contracts.catalog import SEARCH_PRODUCTS
from contracts.orders import GET_ORDER
from contracts.payments import PAYMENT_CAPTURED
from contracts.topology import EVENTS_EXCHANGE, dead_letter_queue
from contracts.users import GET_JWKS, LOGIN_USER, REGISTER_USER
from harness import broker, environment, processes
from harness.accounts import bearer, login, register
from harness.bus import Bus
from harness.stack import Stack
from ops.broker_users import password_variable, with_credentials
from tests.orders_support import order_target
from tests.reliability.conftest import dead_letters, publish_command

CAPTURED_QUEUE = f"orders.on_payments_{PAYMENT_CAPTURED.name}_v{PAYMENT_CAPTURED.version}"
REFUSED = (AMQPChannelError, ChannelClosed, ChannelInvalidStateError)


async def _connect_as(process: str) -> AbstractRobustConnection:
    url = with_credentials(
        environment.test_env()["AGORA_AMQP_URL"],
        f"agora-{process}",
        environment.BROKER_PASSWORDS[password_variable(process)],
    )
    return await aio_pika.connect_robust(url)


async def _publish_event(connection: AbstractRobustConnection, routing_key: str, **properties: Any) -> None:
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(EVENTS_EXCHANGE, ensure=False)
    message = aio_pika.Message(b'{"order_id": "x"}', message_id=str(uuid.uuid4()), **properties)
    await exchange.publish(message, routing_key=routing_key, timeout=10)
    await channel.close()


def _metrics(worker: processes.Process) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_text()
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def _metric(worker: processes.Process, name: str, **labels: str) -> float:
    total = 0.0
    for line in _metrics(worker).splitlines():
        if line.startswith((name + "{", name + " ")) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_an_event_not_from_its_owning_service_is_dead_lettered(
    stack: Stack, amqp: AbstractRobustConnection
) -> None:
    # The administrator may impersonate: a forged user_id reaches the queue, as it would
    # from any process with that right. No user_id at all is what a plain client sends.
    before = _metric(stack.workers["orders"], "agora_dead_lettered_total", reason="wrong_publisher")
    await _publish_event(amqp, PAYMENT_CAPTURED.routing_key, user_id="agora-catalog")
    await _publish_event(amqp, PAYMENT_CAPTURED.routing_key)
    assert len(await dead_letters(amqp, dead_letter_queue(CAPTURED_QUEUE), expect=2)) == 2
    after = _metric(stack.workers["orders"], "agora_dead_lettered_total", reason="wrong_publisher")
    assert after - before == 2


async def test_a_service_can_publish_only_its_own_events_and_only_as_itself(stack: Stack) -> None:
    catalog = await _connect_as("catalog")
    try:
        with pytest.raises(REFUSED):  # topic permission: catalog.* only
            await _publish_event(catalog, PAYMENT_CAPTURED.routing_key, user_id="agora-catalog")
        with pytest.raises(REFUSED):  # RabbitMQ refuses a user_id that is not the connection's
            await _publish_event(catalog, "catalog.product_created.v1", user_id="agora-payments")
    finally:
        await catalog.close()


async def test_the_edge_runs_as_its_own_user_without_the_workers_secrets(stack: Stack) -> None:
    assert stack.edge.proc is not None
    environ = _environ(stack.edge.proc.pid)
    for secret in ("AGORA_DATA_KEYS", "AGORA_DATABASE_URL", "AGORA_SERVICE_SECRET"):
        assert secret not in environ, secret
    assert not [k for k in environ if k.startswith("AGORA_BROKER_PASSWORD_")]
    assert urlsplit(environ["AGORA_AMQP_URL"]).username == "agora-edge"
    edge = await _connect_as("edge")
    try:
        with pytest.raises(REFUSED):  # no event of any service
            await _publish_event(edge, "users.tokens_revoked.v1", user_id="agora-edge")
        channel = await edge.channel()
        with pytest.raises(REFUSED):  # and no worker's queue
            queue = await channel.get_queue(REGISTER_USER.queue, ensure=False)
            await queue.get(fail=False)
    finally:
        await edge.close()


async def test_a_reply_to_that_names_another_queue_is_refused(stack: Stack, amqp: AbstractRobustConnection) -> None:
    target = dead_letter_queue(REGISTER_USER.queue)
    depth = int(str(broker.queue_info(target).get("messages", 0)))
    channel = await amqp.channel(publisher_confirms=True)
    exchange = await channel.get_exchange("agora.commands", ensure=False)
    message_id = str(uuid.uuid4())
    await exchange.publish(
        aio_pika.Message(b"{}", message_id=message_id, reply_to=target, content_type="application/json"),
        routing_key=GET_JWKS.routing_key,
    )
    await channel.close()
    refused = await dead_letters(amqp, dead_letter_queue(GET_JWKS.queue), expect=1)
    assert list(refused) == [message_id]
    await asyncio.sleep(1)
    assert int(str(broker.queue_info(target).get("messages", 0))) == depth  # nothing was sent there


async def test_dead_letters_keep_no_password_token_or_card_number(
    stack: Stack, amqp: AbstractRobustConnection, http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    # A login with a field the contract does not know: bad input, dead-lettered at once.
    login = {"email": "someone@example.com", "password": "hunter2-hunter2", "extra": "x"}
    login_id = await publish_command(amqp, LOGIN_USER.routing_key, login)
    token_header = {"authorization": f"Bearer {admin['access_token']}"}
    search = {"q": "pay 4111.1111.1111.1111 now", "limit": 5}
    search_id = await publish_command(amqp, SEARCH_PRODUCTS.routing_key, search, headers=token_header)
    unparsable_id = await publish_command(amqp, LOGIN_USER.routing_key, b'{"password": "hunter2-hunter2"')
    kept = {
        **await dead_letters(amqp, dead_letter_queue(LOGIN_USER.queue), expect=2),
        **await dead_letters(amqp, dead_letter_queue(SEARCH_PRODUCTS.queue), expect=1),
    }
    assert kept.keys() == {login_id, search_id, unparsable_id}
    for body in kept.values():
        assert b"hunter2" not in body and b"4111" not in body
    assert json.loads(kept[login_id])["password"] == "[redacted]"
    # And what the admin dashboard shows of them.
    shown_to = bearer(admin["access_token"])
    for queue, message_id, body in ((LOGIN_USER.queue, login_id, login), (SEARCH_PRODUCTS.queue, search_id, search)):
        await _republish(amqp, queue, message_id, body)  # back as they were sent: the worst case
        async with http.get(f"/api/admin/dead-letters/{dead_letter_queue(queue)}", headers=shown_to) as resp:
            shown = await resp.text()
            assert resp.status == 200, shown
        assert "hunter2" not in shown and "4111" not in shown and admin["access_token"] not in shown


async def _republish(amqp: AbstractRobustConnection, queue: str, message_id: str, body: dict[str, Any]) -> None:
    """Put an unredacted copy straight into `queue`'s dead-letter queue, as an older Agora
    or the broker's own dead-lettering (a delivery limit) would have left it."""
    channel = await amqp.channel(publisher_confirms=True)
    dlx = await channel.get_exchange("agora.dlx", ensure=False)
    message = aio_pika.Message(json.dumps(body).encode(), message_id=message_id, headers={"authorization": "Bearer x"})
    await dlx.publish(message, routing_key=queue)
    await channel.close()


@pytest.mark.parametrize(
    "path",
    [
        "/api/products?q=4111 1111 1111 1111",
        "/api/products?q=4111%C2%A01111%C2%A01111%C2%A01111",
        "/api/products?cursor=4111_1111_1111_1111",
        "/api/admin/users?q=4111/1111/1111/1111",
    ],
)
async def test_card_numbers_in_query_strings_are_refused_at_the_edge(
    http: aiohttp.ClientSession, admin: dict[str, Any], path: str
) -> None:
    async with http.get(path, headers=bearer(admin["access_token"])) as resp:
        assert resp.status == 422
        problem = await resp.json()
    assert problem["errors"] == [{"field": "query", "message": "card numbers are not accepted"}]


async def test_dead_letter_queues_are_bounded_and_their_depth_is_a_metric(stack: Stack) -> None:
    for _ in range(50):  # the management API's view of a queue lags by a few seconds
        info = broker.queue_info(dead_letter_queue(REGISTER_USER.queue))
        if info.get("policy"):
            break
        await asyncio.sleep(0.2)
    assert info.get("policy") == "agora-dead-letters"
    bound = {"max-length": environment.DEAD_LETTER_MAX_LENGTH, "overflow": "drop-head"}
    assert info["effective_policy_definition"] == bound
    users = stack.workers["users"]
    assert _metric(users, "agora_dead_letter_queue_limit") == environment.DEAD_LETTER_MAX_LENGTH
    pattern = re.escape(dead_letter_queue(REGISTER_USER.queue))
    for _ in range(50):
        if re.search(rf'agora_dead_letter_queue_depth\{{queue="{pattern}"\}}', _metrics(users)):
            return
        await asyncio.sleep(0.2)
    raise AssertionError("no agora_dead_letter_queue_depth for the users worker's dead-letter queue")


async def test_a_members_token_on_someone_elses_order_is_not_found_and_logged(
    stack: Stack, http: aiohttp.ClientSession, amqp: AbstractRobustConnection, admin: dict[str, Any]
) -> None:
    owner = await order_target(http, admin)
    someone = await register(http)
    stranger = await login(http, someone["email"], someone["password"])
    log_size = stack.workers["orders"].log_path.stat().st_size
    async with Bus(amqp) as bus:
        query = {"order_id": owner["params"]["orderId"]}
        reply = await bus.call(GET_ORDER.routing_key, query, token=stranger["access_token"])
    assert reply["error"]["code"] == "not_found"
    for _ in range(50):
        logged = [
            json.loads(line)
            for line in stack.workers["orders"].log_path.read_text()[log_size:].splitlines()
            if "security: refused" in line
        ]
        if logged:
            break
        await asyncio.sleep(0.1)
    assert logged and logged[-1]["actor"] == stranger["user"]["user_id"] and logged[-1]["code"] == "not_found"
