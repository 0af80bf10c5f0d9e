"""The dependency set is locked, and every way of installing Agora installs the lock."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from scripts.lib.lock_diff import changes

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".tools" / "uv" / "bin" / "uv"


def test_pyproject_and_the_lock_agree() -> None:
    # scripts/up and scripts/test install uv here before anything else.
    assert UV.exists(), f"{UV} is missing: run scripts/test (it installs uv first)"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    result = subprocess.run(
        [str(UV), "lock", "--check", "--offline"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"pyproject.toml and uv.lock disagree (run scripts/lock):\n{result.stderr}"


def test_every_install_path_installs_exactly_the_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY pyproject.toml uv.lock" in dockerfile
    assert dockerfile.count("uv sync --locked") == 2 and "pip install ." not in dockerfile
    assert "pip install --require-hashes -r /tmp/uv-requirements.txt" in dockerfile
    app = (ROOT / "scripts" / "lib" / "app.sh").read_text()
    assert "sync --locked --extra test --extra lint" in app and "pip install -e" not in app
    assert "--require-hashes" in app
    requirements = (ROOT / "scripts" / "lib" / "uv-requirements.txt").read_text()
    assert "uv==" in requirements and "--hash=sha256:" in requirements


def test_lock_diff_names_what_moved() -> None:
    old = {"aiohttp": {"3.14.4"}, "six": {"1.16.0"}, "yarl": {"1.25.1"}}
    new = {"aiohttp": {"3.14.5"}, "yarl": {"1.25.1"}, "zxcvbn": {"4.5.0"}}
    lines = [" ".join(line.split()) for line in changes(old, new)]
    assert lines == ["aiohttp 3.14.4 -> 3.14.5", "six 1.16.0 -> (removed)", "zxcvbn (new) -> 4.5.0"]
