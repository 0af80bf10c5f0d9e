"""Stopping and starting the suite's own backing services (scripts/lib/services.sh), never a
development stack's: tests that take the database or the broker away use these."""

from __future__ import annotations

import subprocess

from harness.environment import SERVICES_SH


def run(*functions: str) -> None:
    """Call functions of scripts/lib/services.sh on the suite's own backing services
    (stop or start one of them)."""
    script = f'source "{SERVICES_SH}"; agora_test_services_env; agora_load_env; ' + "; ".join(functions)
    subprocess.run(["bash", "-c", script], check=True, capture_output=True, timeout=120)


def rabbitmqctl(*args: str) -> None:
    """Run rabbitmqctl against the suite's own RabbitMQ node (used to restart the broker)."""
    script = f'source "{SERVICES_SH}"; agora_test_services_env; agora_load_env; agora_rabbitmqctl "$@"'
    subprocess.run(["bash", "-c", script, "rabbitmqctl", *args], check=True, capture_output=True, timeout=120)
