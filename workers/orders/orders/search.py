"""What an operator's search box means for the order list (pure: no I/O).

One text finds orders three ways, any of which may match: an order id, whole or its first
8 or more hex digits (the short reference the dashboard shows); a customer's email, whole
(it is sealed: only an exact match is possible, through its blind index); or part of a
customer's name (their username).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

_HEX = re.compile(r"[0-9a-f]{8,32}")


@dataclass(frozen=True)
class OrderSearch:
    order_ids: tuple[UUID, UUID] | None = None  # the ids from, to (both included) sharing a prefix
    email: str | None = None
    name: str | None = None


def order_search(text: str) -> OrderSearch:
    text = text.strip()
    digits = text.lower().replace("-", "")
    ids = None
    if _HEX.fullmatch(digits):
        ids = (UUID(digits.ljust(32, "0")), UUID(digits.ljust(32, "f")))
    if "@" in text:
        return OrderSearch(order_ids=ids, email=text)
    return OrderSearch(order_ids=ids, name=text or None)


def like_pattern(text: str) -> str:
    """`text` anywhere, its `%`, `_` and `\\` taken literally (escape character `\\`)."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"
