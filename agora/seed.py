"""Demo data, created through the public HTTP API like any client would.

Idempotent: an account that already exists (409) is left as it is.
"""

from __future__ import annotations

import os

import aiohttp

from agora.settings import Settings

DEMO_PASSWORD = os.environ.get("AGORA_DEMO_PASSWORD", "agora-demo-2026")
DEMO_USERS = (
    {
        "email": "alice@example.com",
        "username": "alice",
        "phone": "+14155550101",
        "address": {
            "line1": "1 Market St",
            "city": "San Francisco",
            "region": "CA",
            "postal_code": "94105",
            "country": "US",
        },
    },
    {"email": "bob@example.com", "username": "bob"},
)


async def seed(settings: Settings) -> int:
    base = f"http://{settings.host}:{settings.http_port}"
    async with aiohttp.ClientSession(base) as http:
        for user in DEMO_USERS:
            async with http.post("/api/users/register", json={**user, "password": DEMO_PASSWORD}) as resp:
                if resp.status not in (201, 409):
                    print(f"seed: registering {user['email']} failed: {resp.status} {await resp.text()}")
                    return 1
                print(f"seed: {user['email']} {'created' if resp.status == 201 else 'already there'}")
    return 0
