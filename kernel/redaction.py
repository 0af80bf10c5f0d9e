"""What a dead letter may keep: never a password, a token or a card number (issue 13).

A dead letter is kept for people to read and replay, so it must not hold what nobody
may read: the runtime redacts a message before it dead-letters it, and the dead-letter
tools (edge/dead_letters.py: `agora dlq`, the admin API) redact whatever an older or
broker-made dead letter still holds before they show it.

- Fields a contract marks secret (`contracts.base.SECRET`: passwords, refresh tokens,
  client secrets, ID tokens) become "[redacted]"; so does any string or number shaped
  like a card number, anywhere in the body.
- A body that is not JSON and names one of its command's secret fields, or holds a card
  number, is withheld whole (its length is kept).
- Credential headers (`authorization`, ...) become "[redacted]".
"""

from __future__ import annotations

import json
from typing import Any

from contracts.base import secret_fields
from contracts.registry import COMMANDS
from kernel.cards import contains_card_number, text_has_card_number

REDACTED = "[redacted]"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# A command's secret fields, by the name of the queue that consumes it.
_SECRETS_BY_QUEUE = {spec.queue: secret_fields(spec.payload) for spec in COMMANDS}


def secrets_of(queue: str) -> frozenset[str]:
    """The secret fields of what `queue` (or its dead-letter queue) holds."""
    return _SECRETS_BY_QUEUE.get(queue.removesuffix(".dlq"), frozenset())


def redact_body(body: bytes, secrets: frozenset[str]) -> bytes:
    """`body` with its secrets and card numbers replaced; the same bytes if it held none."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        text = body.decode("utf-8", errors="replace")
        # Broken JSON that names a secret field (`{"password": "…`) may hold its value.
        if any(name in text for name in secrets) or text_has_card_number(text):
            return json.dumps({REDACTED: f"a body of {len(body)} bytes that is not JSON"}).encode()
        return body
    scrubbed = _scrub(value, secrets)
    return body if scrubbed == value else json.dumps(scrubbed).encode()


def redact_headers(headers: dict[str, Any]) -> dict[str, Any]:
    return {key: REDACTED if key.lower() in SECRET_HEADERS else value for key, value in headers.items()}


def _scrub(value: Any, secrets: frozenset[str] = frozenset()) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if key in secrets else _scrub(item)
            for key, item in value.items()
            if not text_has_card_number(str(key))
        }
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if contains_card_number(value):
        return REDACTED
    return value
