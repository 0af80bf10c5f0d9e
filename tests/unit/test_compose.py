"""compose.yaml describes the same stack as scripts/up (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from kernel.settings import SERVICES, Settings
from ops.broker_users import PROCESSES, password_variable
from sandboxes import VARIABLES as SANDBOX_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
BACKING = {"rabbitmq", "postgres", "redis", "smtp", "payment-sandbox", "sms-sandbox", "broker-setup"}


def _services() -> dict[str, Any]:
    services: dict[str, Any] = COMPOSE["services"]
    return services


def test_every_worker_and_backing_service_is_declared() -> None:
    assert BACKING | {"edge", "migrate", *SERVICES} <= _services().keys()


def test_every_long_running_service_has_a_health_check() -> None:
    for name, service in _services().items():
        if name not in ("migrate", "broker-setup"):
            assert "healthcheck" in service, name


def test_workers_declare_a_replica_count_and_run_their_worker() -> None:
    for name in SERVICES:
        service = _services()[name]
        assert service["deploy"]["replicas"] >= 1
        assert service["command"][:3] == ["agora", "worker", name]


def test_environment_matches_what_the_code_reads() -> None:
    known = {f"AGORA_{field.upper()}" for field in Settings.model_fields}
    passwords = {password_variable(process) for process in PROCESSES}  # read by `agora broker setup`
    for name, service in _services().items():
        for var in service.get("environment") or {}:
            if var.startswith("AGORA_"):
                assert var in known | SANDBOX_VARIABLES | passwords, f"{name}: {var} is not read by the code"
    for name in ("migrate", *SERVICES):
        for required in ("AGORA_DATABASE_URL", "AGORA_REDIS_URL", "AGORA_DATA_KEYS"):
            assert required in _services()[name]["environment"], f"{name} lacks {required}"
    edge = _services()["edge"]["environment"]
    assert {"AGORA_AMQP_URL", "AGORA_REDIS_URL", "AGORA_CSRF_SECRET"} <= edge.keys()
    hosts = {re.sub(r".*@([a-z-]+):.*", r"\1", url) for url in (edge["AGORA_AMQP_URL"], _db_url())}
    assert hosts <= _services().keys()


def _db_url() -> str:
    url: str = _services()["migrate"]["environment"]["AGORA_DATABASE_URL"]
    return url


def test_each_process_has_its_own_broker_user_and_the_edge_no_worker_secrets() -> None:
    for name in ("edge", *SERVICES):
        env = _services()[name]["environment"]
        assert urlsplit(env["AGORA_AMQP_URL"]).username == f"agora-{name}", name
        assert "broker-setup" in _services()[name]["depends_on"], name
    edge = _services()["edge"]["environment"]
    assert not {"AGORA_DATA_KEYS", "AGORA_DATABASE_URL", "AGORA_SERVICE_SECRET"} & edge.keys()
    assert urlsplit(edge["AGORA_RABBITMQ_MANAGEMENT_URL"]).username == "agora-edge"
    setup = _services()["broker-setup"]
    assert setup["command"] == ["agora", "broker", "setup"]
    assert {password_variable(process) for process in PROCESSES} <= setup["environment"].keys()


def test_the_sink_reads_the_variables_compose_sets() -> None:
    source = (ROOT / "sandboxes" / "smtp_sink.py").read_text()
    for var in _services()["smtp"]["environment"]:
        assert var in source


def test_the_payment_sandbox_reads_the_variables_compose_sets() -> None:
    source = (ROOT / "sandboxes" / "payment_sandbox.py").read_text()
    for var in _services()["payment-sandbox"]["environment"]:
        assert var in source
    assert _services()["payments"]["environment"]["AGORA_PAYMENT_API_URL"].startswith("http://payment-sandbox:")


def test_the_sms_sandbox_reads_the_variables_compose_sets() -> None:
    source = (ROOT / "sandboxes" / "sms_sandbox.py").read_text()
    for var in _services()["sms-sandbox"]["environment"]:
        assert var in source
    assert _services()["notifications"]["environment"]["AGORA_TWILIO_API_URL"].startswith("http://sms-sandbox:")
