import re
from datetime import date
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class Contract(BaseModel):
    """A message body: immutable, and strict about unknown fields.

    `extra="forbid"` is what turns a caller's `"role": "admin"` into a 422 instead of
    a silently ignored (or worse, honoured) field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


# A field that holds a credential (a password, a refresh token, a client secret, an ID
# token): `Annotated[str, ..., SECRET]`. It is never kept in a dead letter and never
# shown by the dead-letter tools (kernel/redaction.py); the API documents mark it too.
SECRET_MARK = "x-agora-secret"
# Text a person writes: something besides spaces, and no NUL (PostgreSQL text cannot hold
# one), said in the documents' pattern so a client learns it there rather than from a 422.
WORDS = r"^[^\x00]*[^\s\x00][^\x00]*$"
SECRET = Field(json_schema_extra={SECRET_MARK: True})


def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """The names of a contract's secret fields (top level: no contract nests one)."""
    return frozenset(
        name
        for name, info in model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get(SECRET_MARK)
    )


def _iso_date(value: object) -> object:
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A calendar day as the documents write it (YYYY-MM-DD): left to itself pydantic also
# reads "0" or a Unix time as a date, which no client means.
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
def _whole_number(value: object) -> object:
    if isinstance(value, bool | str):
        raise ValueError("must be a whole number")
    return value


# A whole number in a JSON body, as JSON Schema's `integer` says: 5 or 5.0, but not `true`
# (pydantic would read it as 1) nor "5". Last in an `Annotated`, after the bounds
# (`Annotated[int, Field(ge=1), WHOLE]`), so the documents keep `minimum` and `maximum`.
WHOLE = BeforeValidator(_whole_number)


def not_null(value: object) -> object:
    """A field validator for a field that may be left out but not sent as null: only an
    explicit null reaches a validator (defaults are not validated)."""
    if value is None:
        raise ValueError("must not be null (leave it out)")
    return value
