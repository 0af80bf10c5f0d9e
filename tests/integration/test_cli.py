"""The `agora` command as an operator runs it: its version, and each worker pool's health."""

from __future__ import annotations

import json
import time
from importlib.metadata import version
from typing import Any

from harness.processes import agora_cli
from harness.stack import Stack
from kernel.settings import SERVICES


def test_version() -> None:
    shown = agora_cli({}, "--version")
    assert shown.returncode == 0 and shown.stdout.strip() == f"agora {version('agora')}", shown


def _pools(env: dict[str, str], **extra_env: str) -> tuple[int, dict[str, Any]]:
    """`agora workers --json` once the broker counts every pool's consumers (its
    management statistics lag a few seconds behind a worker that just started)."""
    for _ in range(60):
        listed = agora_cli(env, "workers", "--json", extra_env=extra_env)
        pools = {p["name"]: p for p in json.loads(listed.stdout)}
        if all(p["processes"] for p in pools.values()):
            break
        time.sleep(0.5)
    return listed.returncode, pools


def test_workers_shows_each_pools_health(stack: Stack) -> None:
    status, pools = _pools(stack.env)
    assert status == 0, pools
    assert set(pools) == set(SERVICES)
    # Each pool of the test stack is one process, seen consuming by the broker and ready here.
    assert all(
        p["ready"] and p["readiness"] == "ready" and p["processes"] == 1 and p["queues"] for p in pools.values()
    ), pools
    table = agora_cli(stack.env, "workers").stdout.splitlines()
    assert table[0].split()[:4] == ["WORKER", "PORT", "PROCESSES", "QUEUES"]
    assert [row.split()[0] for row in table[1:]] == list(SERVICES)
    ports = agora_cli(stack.env, "workers", "--ports").stdout.split()
    assert ports[::2] == list(SERVICES) and [int(p) for p in ports[1::2]] == [p["port"] for p in pools.values()]


def test_workers_says_when_a_pool_does_not_answer(stack: Stack) -> None:
    # Health ports where nothing listens: the broker still counts the processes, and the
    # command fails so that a script notices.
    status, pools = _pools(stack.env, AGORA_WORKER_HTTP_PORT_BASE="1")
    assert status == 1
    assert all(p["readiness"] == "no answer" and not p["ready"] and p["processes"] == 1 for p in pools.values()), pools
