"""The slot's RabbitMQ vhost as its administrator sees it, through the management API."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from urllib.parse import quote

from harness.environment import BROKER_PASSWORDS, DEAD_LETTER_MAX_LENGTH, HOST, MANAGEMENT_URL, SERVICES_ENV, VHOST
from ops.broker_users import PROCESSES, password_variable, set_up


def _management_root() -> str:
    return f"http://{HOST}:{SERVICES_ENV['AGORA_RABBITMQ_MANAGEMENT_PORT']}/api"


def management_api(method: str, path: str, body: bytes | None = None) -> int:
    req = urllib.request.Request(f"{_management_root()}{path}", data=body, method=method)
    req.add_header("Authorization", "Basic YWdvcmE6YWdvcmE=")  # agora:agora
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def queue_info(name: str) -> dict[str, object]:
    """A queue as the management API sees it (counts include unacknowledged messages)."""
    req = urllib.request.Request(f"{_management_root()}/queues/{VHOST}/{quote(name, safe='')}")
    req.add_header("Authorization", "Basic YWdvcmE6YWdvcmE=")
    with urllib.request.urlopen(req, timeout=30) as resp:
        info: dict[str, object] = json.loads(resp.read())
        return info


def reset_vhost(vhost: str = VHOST) -> None:
    """A fresh vhost: no queues or messages left from an earlier run, the administrator
    (the tests' own connections) and every process's own broker user, as
    `agora broker setup` makes them."""
    management_api("DELETE", f"/vhosts/{quote(vhost, safe='')}")
    assert management_api("PUT", f"/vhosts/{quote(vhost, safe='')}") in (201, 204)
    everything = b'{"configure":".*","write":".*","read":".*"}'
    assert management_api("PUT", f"/permissions/{quote(vhost, safe='')}/agora", everything) in (201, 204)
    passwords = {process: BROKER_PASSWORDS[password_variable(process)] for process in PROCESSES}
    asyncio.run(set_up(MANAGEMENT_URL, vhost, passwords, dead_letter_max_length=DEAD_LETTER_MAX_LENGTH))
