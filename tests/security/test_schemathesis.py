"""The API does what its OpenAPI document says, under generated input (schemathesis).

A bounded run (25 examples per operation, the checks in schemathesis.toml) against the suite's edge, as a
member and as an admin of their own (some operations end sessions or change accounts:
never the shared fixtures'). It fails on any 5xx, any answer the document does not
describe, and any invalid input the API accepts. Two operations are left to other tests
(the authorization matrix, test_revocation.py, test_privacy.py): `POST /api/auth/logout-all`
and `DELETE /api/users/{userId}` with the run's own token would end its session or erase
its account (schemathesis learns the caller's id from the answers), and every later
request would be a 401. The whole report is kept in test-artifacts/.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from harness import environment
from harness.accounts import create_admin, login, register
from harness.stack import Stack

EXAMPLES = 25
# The operations that may answer 422 to a request that fits the document, and why.
CONFIG = Path(__file__).with_name("schemathesis.toml")


async def _session(http: aiohttp.ClientSession, stack: Stack, role: str) -> dict[str, Any]:
    account = create_admin(stack.env) if role == "admin" else await register(http)
    return await login(http, account["email"], account["password"])


@pytest.mark.parametrize("role", ["member", "admin"])
async def test_the_api_matches_its_openapi_document(stack: Stack, http: aiohttp.ClientSession, role: str) -> None:
    session = await _session(http, stack, role)
    command = [
        str(environment.ROOT / ".venv/bin/schemathesis"),
        "--config-file",
        str(CONFIG),
        "run",
        f"{stack.base_url}/api/openapi.json",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "13",
        "--phases",
        "examples,coverage,fuzzing",
        "--generation-database",
        "none",
        "--exclude-operation-id",
        "logout_all",
        "--exclude-operation-id",
        "erase_user",
        "--request-timeout",
        "15",
        "--workers",
        "2",
        "--no-color",
        "--header",
        f"Authorization: Bearer {session['access_token']}",
    ]
    result = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=900)
    (environment.ARTIFACTS / f"schemathesis-{role}.txt").write_text(result.stdout + result.stderr)
    summary = result.stdout[result.stdout.find("=== SUMMARY ===") - 40 :]
    print(summary)
    assert result.returncode == 0, f"see test-artifacts/schemathesis-{role}.txt\n{summary}"
