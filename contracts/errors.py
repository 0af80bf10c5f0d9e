"""The error reply a worker sends instead of a result, and the codes it may carry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

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
    """Turn a pydantic error into field paths a client can show next to inputs.

    A field typed `X | None` fails once per branch of the union, under locations such as
    `name.constrained-str` and `name.none`: the path keeps the field names and list
    positions only, and the "should be None" branch is dropped when the other says more.
    """
    found: list[FieldError] = []
    for err in exc.errors(include_url=False, include_input=False):
        if err["type"] == "none_required" and len(exc.errors()) > 1:
            continue
        path = [str(p) for p in err["loc"] if isinstance(p, int) or (str(p).isidentifier() and p not in _BRANCHES)]
        error = FieldError(field=".".join(path) or "body", message=err["msg"])
        if error not in found:
            found.append(error)
    return tuple(found)


# The names pydantic gives a union's branches in an error's location.
_BRANCHES = frozenset({"none", "int", "str", "float", "bool", "list", "dict", "tuple", "is-instance", "lax-or-strict"})


def invalid_input(title: str, problems: Sequence[tuple[tuple[str | int, ...], str]]) -> ValidationError:
    """A validation error at the given places (`("items", 0, "variant_id")`, "choose a variant").

    Raised inside a contract's validator, it reports the places a field validator would;
    raised inside a handler, it is a validation error no retry can fix (the runtime answers
    it and dead-letters the message at once, workers/runtime/failures.py): for input that
    is malformed for the object it names, such as an order line without a variant for a
    product that has options.
    """
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(type=PydanticCustomError("invalid", message), loc=loc, input=None)
            for loc, message in problems
        ],
    )
