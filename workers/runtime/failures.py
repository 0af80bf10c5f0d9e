"""What a handler's failure means: worth retrying, hopeless, or not known yet.

The one place that decides (architecture §3): only connection loss, serialization
failures, deadlocks, lock and pool timeouts and the like are transient; PostgreSQL's
data, constraint, syntax and program-limit errors and a validation error inside a
handler are permanent, whatever message caused them. Anything else is unexpected: it is
tried once more, and if it fails again with the same cause it is permanent too, so a
bug or a poison message never holds a consumer slot through a whole delivery limit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import aiohttp
import asyncpg
import httpx
from aiormq.exceptions import AMQPConnectionError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from contracts.errors import ErrorReply, field_errors

Kind = Literal["transient", "permanent", "unexpected"]

# SQLSTATE classes and codes (PostgreSQL appendix A). Retrying can help these:
_TRANSIENT_STATES = ("08", "40", "53", "55P03", "57P01", "57P02", "57P03", "57014", "58")
# and cannot help these: the same statement with the same input fails the same way.
_PERMANENT_CLASSES = {"22": "validation_failed", "23": "conflict", "42": "internal", "54": "validation_failed"}


@dataclass(frozen=True)
class Failure:
    kind: Kind
    reason: str  # the dead-letter reason, and the metric label
    reply: ErrorReply  # what the caller is told if it is given up on
    fingerprint: str  # "the same cause": the exception's type and message


def classify(exc: BaseException) -> Failure:
    """Look through the exception and what caused it (SQLAlchemy wraps asyncpg's)."""
    fingerprint = _fingerprint(exc)
    for cause in causes(exc):
        if isinstance(cause, ValidationError):
            errors = field_errors(cause)
            reply = ErrorReply(code="validation_failed", detail="the request failed validation", errors=errors)
            return Failure("permanent", "handler_validation", reply, fingerprint)
        if isinstance(cause, DBAPIError) and cause.connection_invalidated:
            return _transient(fingerprint)
        state = getattr(cause, "sqlstate", None)
        if isinstance(state, str):
            if state.startswith(_TRANSIENT_STATES):
                return _transient(fingerprint)
            if (code := _PERMANENT_CLASSES.get(state[:2])) is not None:
                detail = "the request cannot be carried out with this input"
                if code == "internal":
                    detail = "the service failed to carry out the request"
                return Failure("permanent", f"database_{state}", ErrorReply(code=code, detail=detail), fingerprint)
        if isinstance(
            cause,
            ConnectionError
            | TimeoutError
            | asyncpg.InterfaceError
            | asyncpg.PostgresConnectionError
            # Every database address reached answers read-only: a standby not yet
            # promoted after its primary was lost (scripts/pg-pair).
            | asyncpg.TargetServerAttributeNotMatched
            | InterfaceError
            | PoolTimeout
            | AMQPConnectionError
            | httpx.TransportError
            | aiohttp.ClientConnectionError,
        ):
            return _transient(fingerprint)
        if isinstance(cause, asyncpg.InternalClientError) and "another operation" in str(cause):
            # The connection's protocol is out of step (the server ended it while it was
            # idle, and its notice came first): the runtime drops it, a retry gets another.
            return _transient(fingerprint)
    reply = ErrorReply(code="internal", detail="the service failed to carry out the request")
    return Failure("unexpected", "repeated_failure", reply, fingerprint)


def _transient(fingerprint: str) -> Failure:
    return Failure("transient", "transient", ErrorReply(code="unavailable", detail="try again later"), fingerprint)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what caused it, in turn (SQLAlchemy's wrapped driver error included)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, DBAPIError) and isinstance(current.orig, BaseException):
            yield current.orig
        # `raise ... from None` says the context is not the cause.
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def _fingerprint(exc: BaseException) -> str:
    text = f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
