"""`scripts/cluster check`: what the node-loss test will rely on, checked on the running
cluster: a quorum queue declared through the balancer has a member on every node, and
messages published with confirms before a node is SIGKILLed are all consumed after it,
through the same balancer address (the client reconnecting to a surviving node). The
figures are printed: how long the publisher and the consumer were cut off.

Run by scripts/cluster (which passes the addresses); not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import subprocess
import time
import urllib.request
import uuid

import aio_pika

MESSAGES = 200


def _members(management: str, queue: str) -> list[str]:
    request = urllib.request.Request(f"{management}/api/queues/%2F/{queue}")
    request.add_header("Authorization", "Basic " + base64.b64encode(b"agora:agora").decode())
    with urllib.request.urlopen(request, timeout=10) as resp:
        members: list[str] = json.load(resp).get("members", [])
    return members


async def check(amqp: str, management: str, kill: list[str]) -> None:
    queue_name = f"cluster-check-{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect_robust(amqp, reconnect_interval=0.5)
    channel = await connection.channel(publisher_confirms=True)
    queue = await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "quorum"})
    members = _members(management, queue_name)
    print(f"quorum queue {queue_name}: members {sorted(members)}")
    assert len(members) == 3, members

    for i in range(MESSAGES // 2):
        await channel.default_exchange.publish(
            aio_pika.Message(str(i).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=queue_name
        )
    print(f"{MESSAGES // 2} published and confirmed; SIGKILL of a node: {' '.join(kill)}")
    await asyncio.to_thread(subprocess.run, kill, check=True)
    killed_at = time.monotonic()
    published = MESSAGES // 2
    while published < MESSAGES:
        try:
            await channel.default_exchange.publish(
                aio_pika.Message(str(published).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=queue_name,
            )
            published += 1
        except Exception as exc:  # the connection to the dead node is being replaced
            print(f"  publish failed ({type(exc).__name__}), retrying")
            await asyncio.sleep(0.5)
    print(f"the other {MESSAGES // 2} published and confirmed {time.monotonic() - killed_at:.1f} s after the kill")

    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while len(seen) < MESSAGES and time.monotonic() < deadline:
        try:
            message = await queue.get(no_ack=True, fail=False, timeout=5)
        except Exception:
            await asyncio.sleep(0.5)
            continue
        if message is None:
            await asyncio.sleep(0.2)
            continue
        seen.add(int(message.body))
    members = _members(management, queue_name)
    print(f"consumed {len(seen)} of {MESSAGES} distinct messages; members now {sorted(members)}")
    await queue.delete(if_unused=False, if_empty=False)
    await connection.close()
    assert seen == set(range(MESSAGES)), sorted(set(range(MESSAGES)) - seen)


def main() -> None:
    # The client's own reports of the connection it loses are expected here.
    logging.basicConfig(level=logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--amqp", required=True)
    parser.add_argument("--management", required=True)
    parser.add_argument("kill", nargs="+", help="the command that SIGKILLs a node")
    args = parser.parse_args()
    asyncio.run(check(args.amqp, args.management, args.kill))
    print("ok: no confirmed message lost through a node's SIGKILL")


if __name__ == "__main__":
    main()
