"""The provisioning scripts fail fast and clearly when a port is taken."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from harness import environment


def test_a_taken_port_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        script = f'source "{environment.ROOT}/scripts/lib/services.sh"; agora_start_redis'
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "AGORA_REDIS_PORT": str(port), "AGORA_RUN_DIR": str(tmp_path)}
        started = time.monotonic()
        result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert time.monotonic() - started < 10
    assert str(port) in result.stderr and "AGORA_REDIS_PORT" in result.stderr
