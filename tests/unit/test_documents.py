"""The committed API and message documents match the code (`agora docs` regenerates them)."""

import json
from pathlib import Path

from contracts.asyncapi import asyncapi_document
from contracts.registry import COMMANDS, EVENTS
from edge.openapi import build_document
from edge.routes import ENDPOINTS, REDIRECTS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _committed(name: str) -> object:
    return json.loads((DOCS / name).read_text())


def test_asyncapi_document_is_current() -> None:
    assert _committed("asyncapi.json") == json.loads(json.dumps(asyncapi_document()))


def test_openapi_document_is_current() -> None:
    assert _committed("openapi.json") == json.loads(json.dumps(build_document(ENDPOINTS, REDIRECTS)))


def test_asyncapi_lists_every_command_and_event_with_its_schema() -> None:
    doc = asyncapi_document()
    assert doc["asyncapi"].startswith("3.")
    for spec in (*COMMANDS, *EVENTS):
        assert spec.routing_key in doc["channels"]
        assert spec.payload.__name__ in doc["components"]["schemas"]


def test_the_order_event_stream_is_documented_as_server_sent_events() -> None:
    operation = build_document(ENDPOINTS, REDIRECTS)["paths"]["/api/orders/{orderId}/events"]["get"]
    content = operation["responses"]["200"]["content"]
    assert list(content) == ["text/event-stream"]
    assert content["text/event-stream"]["schema"]["type"] == "string"
    assert "event: status" in content["text/event-stream"]["example"]


def test_every_parameter_says_what_it_is_and_the_headers_clients_send_are_documented() -> None:
    doc = build_document(ENDPOINTS, REDIRECTS)
    parameters = doc["components"]["parameters"]
    undescribed = [
        f"{method.upper()} {path} {parameter['name']}"
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        if "$ref" not in parameter and not parameter.get("description")
    ]
    assert undescribed == []
    assert all(p["description"] for p in parameters.values())

    def headers(path: str, method: str) -> set[str]:
        refs = [p["$ref"] for p in doc["paths"][path][method]["parameters"] if "$ref" in p]
        return {parameters[ref.rsplit("/", 1)[1]]["name"] for ref in refs}

    assert "Idempotency-Key" in headers("/api/orders", "post")
    for path, method in (("/api/cart", "get"), ("/api/cart/items", "post"), ("/api/cart/items/{productId}", "put")):
        assert "X-Cart-Id" in headers(path, method)
