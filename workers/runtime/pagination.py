"""Keyset pagination cursors: where the previous page ended, opaque to clients.

A cursor is the sort key of the last row served (a timestamp and an id), so the next
page is `WHERE (created_at, id) < (:at, :id)`: stable while rows are added, and as
fast on page 1,000 as on page 1. It only narrows a query the caller may already run,
so it needs no signature; a cursor that does not decode is a validation error.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any
from uuid import UUID

from workers.runtime.errors import invalid


def encode_cursor(at: datetime, row_id: UUID) -> str:
    raw = json.dumps([at.isoformat(), str(row_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        at, row_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(at), UUID(row_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise invalid("cursor", "is not a cursor this API returned") from exc


def encode_keys(*keys: str | int | float | None) -> str:
    """A cursor for any keyset order: the sort keys of the last row served, in order."""
    raw = json.dumps(list(keys), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_keys(cursor: str) -> list[Any]:
    """The keys `encode_keys` packed; the caller checks their number and types."""
    try:
        keys = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise invalid("cursor", "is not a cursor this API returned") from exc
    if not isinstance(keys, list):
        raise invalid("cursor", "is not a cursor this API returned")
    return keys
