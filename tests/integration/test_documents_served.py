"""The edge serves both API documents, and they are the ones in docs/."""

from __future__ import annotations

import json

import aiohttp

from harness import environment


async def test_the_message_and_http_documents_are_served(http: aiohttp.ClientSession) -> None:
    for url, name in (("/api/asyncapi", "asyncapi.json"), ("/api/openapi.json", "openapi.json")):
        async with http.get(url) as resp:
            assert resp.status == 200
            served = await resp.json()
        assert served == json.loads((environment.ROOT / "docs" / name).read_text()), name
    assert served["info"]["title"]
