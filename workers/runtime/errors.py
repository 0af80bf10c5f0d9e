"""Outcomes a handler can signal besides success."""

from __future__ import annotations

from contracts.errors import ErrorReply, FieldError


class DomainError(Exception):
    """A business rule said no (duplicate email, not found, ...).

    The message was handled: its error reply is sent and the message is
    acknowledged. Nothing the handler wrote is kept, unless `keep_changes` says the
    refusal itself must leave a trace (a session revoked because a token was reused).
    """

    def __init__(
        self, code: str, detail: str, errors: tuple[FieldError, ...] = (), *, keep_changes: bool = False
    ) -> None:
        super().__init__(detail)
        self.reply = ErrorReply(code=code, detail=detail, errors=errors)
        self.keep_changes = keep_changes


def not_found(what: str) -> DomainError:
    return DomainError("not_found", f"{what} not found")


def invalid(field: str, message: str) -> DomainError:
    return DomainError("validation_failed", f"{field}: {message}", (FieldError(field=field, message=message),))


class RetryLater(Exception):
    """A failure the handler expects to pass (a mail relay down): handle the message again
    in about `after` seconds, through a delay queue, without holding it meanwhile.

    Nothing the handler wrote in its transaction is kept (the inbox claim neither), so
    the handler must record anything that has to survive (an attempt counted) in a
    transaction of its own. After `delivery_limit` such retries the message is dead-lettered.
    """

    def __init__(self, reason: str, *, after: float) -> None:
        super().__init__(reason)
        self.after = after


class GiveUp(Exception):
    """The handler decided no retry can help: dead-letter the message now (its
    transaction is rolled back, like for `RetryLater`)."""
