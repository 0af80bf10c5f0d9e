"""What a client sees when a worker is slow or gone, and what happens to its command."""

from __future__ import annotations

import asyncio
import signal

import aio_pika
import aiohttp

from contracts.users import REGISTER_USER
from harness import broker, environment, processes
from harness.accounts import new_user
from harness.stack import Stack


async def test_a_stalled_worker_gives_504_and_the_command_still_completes(stack: Stack) -> None:
    # A second edge with a one-second budget, so the test does not wait out the default.
    impatient = processes.edge(stack.env, "edge-impatient", environment.HTTP_PORT + 10)
    impatient.start(extra_env={"AGORA_RPC_TIMEOUT_SECONDS": "1"})
    assert stack.users.proc is not None
    body = new_user()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{impatient.port}") as http:
            stack.users.proc.send_signal(signal.SIGSTOP)  # alive but not answering
            try:
                async with http.post("/api/users/register", json=body) as resp:
                    assert resp.status == 504
                    assert resp.content_type == "application/problem+json"
                    problem = await resp.json()
            finally:
                stack.users.proc.send_signal(signal.SIGCONT)
            assert problem["request_id"] == resp.headers["X-Request-ID"]
            # The outcome was unknown, not failed: the queued command is processed.
            login = {"email": body["email"], "password": body["password"]}
            for _ in range(50):
                async with http.post("/api/users/login", json=login) as resp:
                    if resp.status == 200:
                        break
                await asyncio.sleep(0.2)
            assert resp.status == 200
    finally:
        impatient.stop()


async def test_the_edge_is_alive_but_not_ready_without_a_broker_connection(stack: Stack) -> None:
    # An edge pointed at a broker port nobody listens on: /healthz yes, /readyz no,
    # and API calls fail fast with a 503 problem instead of hanging.
    port = environment.HTTP_PORT + 11
    lonely = processes.edge(stack.env, "edge-no-broker", port)
    lonely.start(extra_env={"AGORA_AMQP_URL": "amqp://agora:agora@127.0.0.1:1/"}, wait=False)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            for _ in range(100):
                try:
                    async with http.get("/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            async with http.get("/readyz") as resp:
                assert resp.status == 503
            async with http.post("/api/users/register", json=new_user()) as resp:
                assert resp.status == 503
                assert resp.content_type == "application/problem+json"
    finally:
        lonely.stop()


async def test_a_worker_that_cannot_declare_its_queues_exits_instead_of_idling(stack: Stack) -> None:
    # A queue left from an earlier deployment with other arguments makes the declare
    # fail. The process must exit (a supervisor restarts it, an operator sees it), not
    # keep answering /healthz while consuming nothing.
    vhost = f"{environment.VHOST}_conflict"
    # With the worker's own broker user, as `agora broker setup` makes it.
    await asyncio.to_thread(broker.reset_vhost, vhost)
    url = stack.env["AGORA_AMQP_URL"].rsplit("/", 1)[0] + f"/{vhost}"
    try:
        connection = await aio_pika.connect(url)
        channel = await connection.channel()
        await channel.declare_queue(
            REGISTER_USER.queue, durable=True, arguments={"x-queue-type": "quorum", "x-delivery-limit": 1}
        )
        await connection.close()
        worker = processes.worker("users", stack.env, index=9)
        worker.start(extra_env={"AGORA_AMQP_URL": url}, wait=False)
        assert worker.proc is not None
        code = await asyncio.to_thread(worker.proc.wait, 60)
        assert code != 0
        assert "PRECONDITION_FAILED" in worker.log_path.read_text()
    finally:
        broker.management_api("DELETE", f"/vhosts/{vhost}")
