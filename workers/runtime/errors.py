"""Outcomes a handler can signal besides success."""

from __future__ import annotations

from contracts.errors import ErrorReply, FieldError


class DomainError(Exception):
    """A business rule said no (duplicate email, not found, ...).

    The message was handled: its error reply is sent and the message is
    acknowledged. Nothing the handler wrote is kept.
    """

    def __init__(self, code: str, detail: str, errors: tuple[FieldError, ...] = ()) -> None:
        super().__init__(detail)
        self.reply = ErrorReply(code=code, detail=detail, errors=errors)


def not_found(what: str) -> DomainError:
    return DomainError("not_found", f"{what} not found")


def invalid(field: str, message: str) -> DomainError:
    return DomainError("validation_failed", f"{field}: {message}", (FieldError(field=field, message=message),))
