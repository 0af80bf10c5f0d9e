"""Where a test slot's processes and backing services listen, and the environment they run with.

The suite runs against backing services of its own (RabbitMQ, PostgreSQL, Redis and
the SMTP sink that scripts/test starts with `agora_start_test_services`: their own
ports and data under .run/test-services), in its own database (agora_test) and
RabbitMQ vhost (agora_test), with the edge and workers on its own ports. Tests that
stop or restart the broker or the database do it to those, so a development stack
started by scripts/up keeps running untouched. The benchmarks run in a slot of their own.

`AGORA_TEST_SLOT=N` (N ≥ 1) moves a run to database and vhost `agora_testN`, Redis
database N + 1 and ports 200·N higher, so two runs on one machine stay apart.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from edge.ratelimit import DEFAULT_LIMITS
from ops.broker_users import PROCESSES, password_variable

ROOT = Path(__file__).resolve().parent.parent
SERVICES_SH = ROOT / "scripts" / "lib" / "services.sh"


def _backing_services_env() -> dict[str, str]:
    """Where the suite's backing services listen, as `agora_test_services_env` (the one
    place that says) sets it, whatever a development shell exported."""
    # With the secrets scripts/test writes for these services (agora_write_env_file),
    # so `pytest` run by hand starts processes the way scripts/test does.
    script = (
        f'source "{SERVICES_SH}"; source "{SERVICES_SH.with_name("app.sh")}"; '
        "agora_test_services_env && agora_load_env && agora_write_env_file && env -0"
    )
    out = subprocess.run(["bash", "-c", script], check=True, capture_output=True, timeout=30).stdout
    pairs = (item.split("=", 1) for item in out.decode().split("\0") if item.startswith("AGORA_"))
    return dict(pair for pair in pairs if len(pair) == 2)


SERVICES_ENV = _backing_services_env()
# scripts/test-cluster: the broker is the three-node cluster of scripts/cluster, reached
# through its balancer ("AMQP port,management port").
if _cluster := os.environ.get("AGORA_TEST_BROKER_PORTS"):
    _amqp, _management = _cluster.split(",")
    SERVICES_ENV.update(AGORA_RABBITMQ_PORT=_amqp, AGORA_RABBITMQ_MANAGEMENT_PORT=_management)
# scripts/test-cluster: the database is the primary and standby of scripts/pg-pair
# ("host:port,host:port"), and every process is given both: the driver connects to the
# one that takes writes (target_session_attrs), whichever that is after a failover.
DATABASE_HOSTS = [h for h in os.environ.get("AGORA_TEST_DATABASE_HOSTS", "").split(",") if h]
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
# The keys the suite's Stripe stand-in accepts and signs its webhook events with.
STRIPE_SECRET_KEY = "sk_test_" + "7e57" * 6
STRIPE_WEBHOOK_SECRET = "whsec_" + "7e57" * 8
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
        AGORA_DATABASE_URL=database_url(f"{host}:{pg_port}"),
        AGORA_REDIS_URL=f"redis://{host}:{redis_port}/{SLOT + 1}",
        AGORA_RUN_DIR=str(ROOT / ".run" / f"test{SLOT or ''}"),
        # The session's fixtures (the admin, members, sellers) sign in once: on a loaded
        # machine a run outlives a 15-minute token (production keeps 900 s).
        AGORA_ACCESS_TOKEN_TTL_SECONDS="3600",
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
        # A failed payment may be paid again this long (900 s in production): long enough
        # for a test to pay again, short enough that a declined order is soon cancelled.
        AGORA_SAGA_PAY_AGAIN_SECONDS="10",
        AGORA_SAGA_RETRY_SECONDS="1",
        AGORA_SAGA_SWEEP_SECONDS="0.5",
        AGORA_PAYMENT_API_URL=f"http://127.0.0.1:{PAYMENT_SANDBOX_PORT}",
        AGORA_STRIPE_SECRET_KEY=STRIPE_SECRET_KEY,
        AGORA_STRIPE_WEBHOOK_SECRET=STRIPE_WEBHOOK_SECRET,
        # The sandbox's signed events go to the suite's edge, as Stripe's to a shop's, while
        # a test turns them on (tests/integration/test_stripe_protocol.py): each is one more
        # command per payment step, which the load and chaos tests are not sized for.
        AGORA_PAYMENT_SANDBOX_WEBHOOK_URL=f"http://127.0.0.1:{HTTP_PORT}/api/payments/webhook",
        AGORA_PAYMENT_SANDBOX_WEBHOOKS="paused",
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


def database_url(address: str) -> str:
    if not DATABASE_HOSTS:
        return f"postgresql+asyncpg://agora:agora@{address}/{DATABASE}"
    hosts = "&".join(f"host={h}" for h in DATABASE_HOSTS)
    return f"postgresql+asyncpg://agora:agora@/{DATABASE}?{hosts}&target_session_attrs=read-write"
