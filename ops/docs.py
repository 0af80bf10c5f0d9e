"""The two API documents written to docs/ (`agora docs`): the HTTP API's (OpenAPI, from
the edge's routes) and the messages' (AsyncAPI, from the contracts)."""

from __future__ import annotations

import json
from pathlib import Path

from contracts.asyncapi import asyncapi_document
from edge.openapi import build_document
from edge.routes import ENDPOINTS, REDIRECTS


def write_documents(folder: Path) -> list[Path]:
    written = []
    openapi = build_document(ENDPOINTS, REDIRECTS)
    for name, document in (("asyncapi.json", asyncapi_document()), ("openapi.json", openapi)):
        path = folder / name
        path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
