from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """A message body: immutable, and strict about unknown fields.

    `extra="forbid"` is what turns a caller's `"role": "admin"` into a 422 instead of
    a silently ignored (or worse, honoured) field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
