"""The error reply a worker sends instead of a result, and the codes it may carry."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from contracts.base import Contract

# code -> (HTTP status, title). The edge maps a reply to problem+json with these.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "validation_failed": (422, "Validation failed"),
    "unauthorized": (401, "Unauthorized"),
    "forbidden": (403, "Forbidden"),
    "not_found": (404, "Not found"),
    "conflict": (409, "Conflict"),
    "unavailable": (503, "Service unavailable"),
    "internal": (500, "Internal error"),
}


class FieldError(Contract):
    field: str
    message: str


class ErrorReply(Contract):
    code: str
    detail: str
    errors: tuple[FieldError, ...] = ()

    @property
    def status(self) -> int:
        return ERROR_CODES.get(self.code, (500, ""))[0]

    @property
    def title(self) -> str:
        return ERROR_CODES.get(self.code, (500, "Internal error"))[1]


class Reply(Contract):
    """What goes back on an RPC reply queue: a result or an error, never both."""

    ok: bool
    data: dict[str, Any] | None = None
    error: ErrorReply | None = None


def field_errors(exc: ValidationError) -> tuple[FieldError, ...]:
    """Turn a pydantic error into field paths a client can show next to inputs."""
    return tuple(
        FieldError(
            field=".".join(str(p) for p in err["loc"]) or "body",
            message=err["msg"],
        )
        for err in exc.errors(include_url=False, include_input=False)
    )
