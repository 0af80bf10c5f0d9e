"""The real processes under test, each a child with its log under test-artifacts/logs: the
edge and the workers (started as scripts/up starts them), the sandboxes, the `agora`
command line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from harness.environment import ARTIFACTS, HTTP_PORT, PAYMENT_SANDBOX_PORT, ROOT, SMS_SANDBOX_PORT, WORKER_PORT_BASE
from kernel.settings import SERVICES


class Process:
    """A child process (edge or worker) with its log under test-artifacts/logs."""

    def __init__(self, name: str, args: list[str], port: int, env: dict[str, str]) -> None:
        self.name = name
        self.args = args
        self.port = port
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        (ARTIFACTS / "logs").mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / "logs" / f"{name}.log"

    def start(self, *, extra_env: dict[str, str] | None = None, wait: bool = True) -> Process:
        # A leftover process on our port would answer /readyz in place of this one.
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise RuntimeError(f"port {self.port} is already in use: a process left from an earlier run?")
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env={**self.env, **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready after {timeout} s; see {self.log_path}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.killpg(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(10)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def worker(name: str, env: dict[str, str], index: int | None = None, label: str | None = None) -> Process:
    """A worker pool process; by default on its own port, like `agora worker` (base + position).
    Started as scripts/up starts it: `agora launch`, its own broker user and secrets.

    `label` names a second replica's log (worker-{label}.log)."""
    port = WORKER_PORT_BASE + (index if index is not None else SERVICES.index(name) + 1)
    args = [str(ROOT / ".venv/bin/agora"), "launch", name, "--port", str(port)]
    return Process(f"worker-{label or name}", args, port, env)


def payment_sandbox(env: dict[str, str]) -> Process:
    args = [str(ROOT / ".venv/bin/python"), "-m", "sandboxes.payment_sandbox", "--memory"]
    return Process("payment-sandbox", [*args, "--port", str(PAYMENT_SANDBOX_PORT)], PAYMENT_SANDBOX_PORT, env)


def sms_sandbox(env: dict[str, str]) -> Process:
    args = [str(ROOT / ".venv/bin/python"), "-m", "sandboxes.sms_sandbox", "--memory"]
    return Process("sms-sandbox", [*args, "--port", str(SMS_SANDBOX_PORT)], SMS_SANDBOX_PORT, env)


EDGE_COMMAND = [str(ROOT / ".venv/bin/agora"), "launch", "edge"]


def edge_metrics_port(port: int = HTTP_PORT) -> int:
    """Where the edge on `port` serves /metrics (not on the API's port)."""
    return port + 40


def edge(env: dict[str, str], name: str = "edge", port: int = HTTP_PORT, processes: int = 1) -> Process:
    """An edge started as scripts/up starts it: its own broker user, none of the workers' secrets.
    With `processes` above 1, a pool of that many on the one port (edge/pool.py)."""
    own = {"AGORA_HTTP_PORT": str(port), "AGORA_EDGE_METRICS_PORT": str(edge_metrics_port(port))}
    pool = ["--processes", str(processes)] if processes > 1 else []
    return Process(name, [*EDGE_COMMAND, *pool], port, {**env, **own})


def start_together(processes: Sequence[Process]) -> None:
    """Start them together; the last (an edge) once the others are ready."""
    for process in processes[:-1]:
        process.start(wait=False)
    for process in processes[:-1]:
        process.wait_ready()
    processes[-1].start()


@contextmanager
def running(processes: Sequence[Process]) -> Iterator[None]:
    """`start_together`, and every one of them stopped at the end, the last started first."""
    try:
        start_together(processes)
        yield
    finally:
        for process in reversed(processes):
            process.stop()


def agora_cli(
    env: dict[str, str], *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `agora` command line as an operator would."""
    return subprocess.run(
        [str(ROOT / ".venv/bin/agora"), *args],
        env={**env, **(extra_env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
