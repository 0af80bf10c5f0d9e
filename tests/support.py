"""Starting and stopping the real processes under test (edge, workers) and the broker.

The suite runs against backing services of its own (RabbitMQ, PostgreSQL, Redis and
the SMTP sink that scripts/test starts with `agora_start_test_services`: their own
ports and data under .run/test-services), in its own database (agora_test) and
RabbitMQ vhost (agora_test), with the edge and workers on its own ports. Tests that
stop or restart the broker or the database do it to those, so a development stack
started by scripts/up keeps running untouched.

`AGORA_TEST_SLOT=N` (N ≥ 1) moves a run to database and vhost `agora_testN`, Redis
database N + 1 and ports 200·N higher, so two runs on one machine stay apart.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

from edge.ratelimit import DEFAULT_LIMITS
from kernel.settings import SERVICES
from ops.broker_users import PROCESSES, password_variable, set_up

ROOT = Path(__file__).resolve().parent.parent
_SERVICES_SH = ROOT / "scripts" / "lib" / "services.sh"


def _backing_services_env() -> dict[str, str]:
    """Where the suite's backing services listen, as `agora_test_services_env` (the one
    place that says) sets it, whatever a development shell exported."""
    # With the secrets scripts/test writes for these services (agora_write_env_file),
    # so `pytest` run by hand starts processes the way scripts/test does.
    script = (
        f'source "{_SERVICES_SH}"; source "{_SERVICES_SH.with_name("app.sh")}"; '
        "agora_test_services_env && agora_load_env && agora_write_env_file && env -0"
    )
    out = subprocess.run(["bash", "-c", script], check=True, capture_output=True, timeout=30).stdout
    pairs = (item.split("=", 1) for item in out.decode().split("\0") if item.startswith("AGORA_"))
    return dict(pair for pair in pairs if len(pair) == 2)


SERVICES_ENV = _backing_services_env()
# Each process's broker password (ops/broker_users.py): fixed, since users are
# global to the node and a second run in another slot must not change the first's.
BROKER_PASSWORDS = {password_variable(p): f"test-{p}-broker-password" for p in PROCESSES}
DEAD_LETTER_MAX_LENGTH = 1000
HOST = SERVICES_ENV["AGORA_HOST"]
MANAGEMENT_URL = f"http://agora:agora@{HOST}:{SERVICES_ENV['AGORA_RABBITMQ_MANAGEMENT_PORT']}"
SLOT = int(os.environ.get("AGORA_TEST_SLOT", "0"))
VHOST = DATABASE = f"agora_test{SLOT or ''}"
HTTP_PORT = int(os.environ.get("AGORA_TEST_HTTP_PORT", str(18080 + 200 * SLOT)))
WORKER_PORT_BASE = int(os.environ.get("AGORA_TEST_WORKER_PORT_BASE", str(18100 + 200 * SLOT)))
# The suite's own sandbox payment provider (in memory: a fresh ledger every run).
PAYMENT_SANDBOX_PORT = int(os.environ.get("AGORA_TEST_PAYMENT_SANDBOX_PORT", str(18070 + 200 * SLOT)))
# The suite's own Twilio stand-in (sandboxes/sms_sandbox.py, in memory) and the credentials
# it and the workers share.
SMS_SANDBOX_PORT = int(os.environ.get("AGORA_TEST_SMS_SANDBOX_PORT", str(18071 + 200 * SLOT)))
SMS_SANDBOX_URL = f"http://127.0.0.1:{SMS_SANDBOX_PORT}"
TWILIO_ACCOUNT_SID = "AC" + "7e57" * 8
TWILIO_AUTH_TOKEN = "test-auth-token"
# The suite's SMTP sink (scripts/test started it): tests tell their messages apart by recipient.
SMTP_HOST = SERVICES_ENV["AGORA_SMTP_HOST"]
SMTP_PORT = int(SERVICES_ENV["AGORA_SMTP_PORT"])
SMTP_SINK_URL = f"http://{SMTP_HOST}:{SERVICES_ENV['AGORA_SMTP_HTTP_PORT']}"
CORS_ORIGIN = "https://shop.example"
ARTIFACTS = ROOT / "test-artifacts" / (f"slot{SLOT}" if SLOT else "")


def test_env() -> dict[str, str]:
    host = HOST
    rabbit_port = SERVICES_ENV["AGORA_RABBITMQ_PORT"]
    pg_port = SERVICES_ENV["AGORA_POSTGRES_PORT"]
    redis_port = SERVICES_ENV["AGORA_REDIS_PORT"]
    env = {**SERVICES_ENV, **os.environ, **BROKER_PASSWORDS}
    env.update(
        AGORA_ENV="test",
        AGORA_HOST=host,
        AGORA_HTTP_PORT=str(HTTP_PORT),
        AGORA_WORKER_HTTP_PORT_BASE=str(WORKER_PORT_BASE),
        AGORA_AMQP_URL=f"amqp://agora:agora@{host}:{rabbit_port}/{VHOST}",
        AGORA_RABBITMQ_MANAGEMENT_URL=MANAGEMENT_URL,
        AGORA_DATABASE_URL=f"postgresql+asyncpg://agora:agora@{host}:{pg_port}/{DATABASE}",
        AGORA_REDIS_URL=f"redis://{host}:{redis_port}/{SLOT + 1}",
        AGORA_RUN_DIR=str(ROOT / ".run" / f"test{SLOT or ''}"),
        # Fast hashing keeps the suite quick; production uses the default cost.
        AGORA_BCRYPT_ROUNDS="4",
        AGORA_RPC_TIMEOUT_SECONDS="10",
        # Key rotation on a test's time scale: keys refresh every second, a new one
        # signs after three.
        AGORA_JWKS_REFRESH_SECONDS="1",
        AGORA_SIGNING_KEY_ACTIVATION_SECONDS="3",
        # Every test comes from 127.0.0.1: the shared stack must not throttle the
        # suite. tests/integration/test_abuse.py runs an edge with the real limits.
        AGORA_RATE_LIMITS=json.dumps(dict.fromkeys(DEFAULT_LIMITS, "100000/minute")),
        AGORA_CORS_ORIGINS=CORS_ORIGIN,
        # The order saga on a test's time scale: tok_timeout's authorization outlives it.
        AGORA_SAGA_RESERVE_DEADLINE_SECONDS="5",
        AGORA_SAGA_PAYMENT_DEADLINE_SECONDS="6",
        AGORA_SAGA_RETRY_SECONDS="1",
        AGORA_SAGA_SWEEP_SECONDS="0.5",
        AGORA_PAYMENT_API_URL=f"http://127.0.0.1:{PAYMENT_SANDBOX_PORT}",
        # An unanswered authorization is reported failed after this long (tok_timeout
        # answers after AGORA_SANDBOX_TIMEOUT_DELAY_SECONDS, 30 s by default).
        AGORA_PAYMENT_API_TIMEOUT_SECONDS="5",
        AGORA_SMTP_HOST=SMTP_HOST,
        AGORA_SMTP_PORT=str(SMTP_PORT),
        AGORA_TWILIO_API_URL=SMS_SANDBOX_URL,
        AGORA_TWILIO_ACCOUNT_SID=TWILIO_ACCOUNT_SID,
        AGORA_TWILIO_AUTH_TOKEN=TWILIO_AUTH_TOKEN,
        AGORA_TWILIO_FROM_NUMBER="+15005550006",
        AGORA_TWILIO_TIMEOUT_SECONDS="5",
        AGORA_DEAD_LETTER_MAX_LENGTH=str(DEAD_LETTER_MAX_LENGTH),
        AGORA_DEAD_LETTER_SCAN_SECONDS="1",
    )
    return env


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


def services(*functions: str) -> None:
    """Call functions of scripts/lib/services.sh on the suite's own backing services
    (stop or start one of them); never on a development stack's."""
    script = f'source "{_SERVICES_SH}"; agora_test_services_env; agora_load_env; ' + "; ".join(functions)
    subprocess.run(["bash", "-c", script], check=True, capture_output=True, timeout=120)


def rabbitmqctl(*args: str) -> None:
    """Run rabbitmqctl against the suite's own RabbitMQ node (used to restart the broker)."""
    script = f'source "{_SERVICES_SH}"; agora_test_services_env; agora_load_env; agora_rabbitmqctl "$@"'
    subprocess.run(["bash", "-c", script, "rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


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


def edge(env: dict[str, str], name: str = "edge", port: int = HTTP_PORT) -> Process:
    """An edge started as scripts/up starts it: its own broker user, none of the workers' secrets."""
    own = {"AGORA_HTTP_PORT": str(port), "AGORA_EDGE_METRICS_PORT": str(edge_metrics_port(port))}
    return Process(name, EDGE_COMMAND, port, {**env, **own})
