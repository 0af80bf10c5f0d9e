"""The whole stack as the test suite runs it: every worker, the edge and the sandbox payment
provider, on a fresh database and vhost."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from harness.broker import reset_vhost
from harness.database import reset_database
from harness.environment import HTTP_PORT, test_env
from harness.processes import Process, edge, payment_sandbox, running, worker
from kernel.settings import SERVICES


@dataclass
class Stack:
    env: dict[str, str]
    edge: Process
    workers: dict[str, Process]
    payment_sandbox: Process | None = None
    sms_sandbox: Process | None = None

    @property
    def users(self) -> Process:
        return self.workers["users"]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{HTTP_PORT}"


@contextmanager
def started_stack(sms_sandbox: Process | None = None) -> Iterator[Stack]:
    """The stack, started (the payment sandbox first, the edge last) and stopped at the end;
    `sms_sandbox` is one already running, which it leaves running."""
    env = test_env()
    reset_database(env)
    reset_vhost()
    workers = {name: worker(name, env) for name in SERVICES}
    the_edge = edge(env)
    sandbox = payment_sandbox(env)
    with running([sandbox]), running([*workers.values(), the_edge]):
        yield Stack(env=env, edge=the_edge, workers=workers, payment_sandbox=sandbox, sms_sandbox=sms_sandbox)
