"""Envelope headers carried by every message (architecture §3)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict

MESSAGE_ID = "message_id"
CORRELATION_ID = "correlation_id"
CAUSATION_ID = "causation_id"
OCCURRED_AT = "occurred_at"
AUTHORIZATION = "authorization"


class EnvelopeError(ValueError):
    """The headers do not make a valid envelope (bad input: dead-letter it)."""


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_id: UUID
    correlation_id: str
    causation_id: str | None = None
    occurred_at: datetime
    authorization: str | None = None

    @classmethod
    def new(
        cls,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        authorization: str | None = None,
    ) -> Envelope:
        message_id = uuid4()
        return cls(
            message_id=message_id,
            correlation_id=correlation_id or str(message_id),
            causation_id=causation_id,
            occurred_at=datetime.now(UTC),
            authorization=authorization,
        )

    def to_headers(self) -> dict[str, str]:
        headers = {
            MESSAGE_ID: str(self.message_id),
            CORRELATION_ID: self.correlation_id,
            OCCURRED_AT: self.occurred_at.isoformat(),
        }
        if self.causation_id:
            headers[CAUSATION_ID] = self.causation_id
        if self.authorization:
            headers[AUTHORIZATION] = self.authorization
        return headers

    @classmethod
    def from_message(
        cls,
        headers: Mapping[str, Any],
        *,
        message_id: str | None = None,
        correlation_id: str | None = None,
    ) -> Envelope:
        """Read the envelope of an incoming message.

        Partners may set only the AMQP `message_id`/`correlation_id` properties; the
        headers win where both are present. A message without any message id cannot
        be deduplicated, so it is refused.
        """
        mid = headers.get(MESSAGE_ID) or message_id
        if not mid:
            raise EnvelopeError("message_id is required (header or AMQP property)")
        try:
            return cls(
                message_id=str(mid),
                correlation_id=str(headers.get(CORRELATION_ID) or correlation_id or mid),
                causation_id=_str_or_none(headers.get(CAUSATION_ID)),
                occurred_at=headers.get(OCCURRED_AT) or datetime.now(UTC),
                authorization=_str_or_none(headers.get(AUTHORIZATION)),
            )
        except ValueError as exc:  # a failed validation, or a header that is not UTF-8
            raise EnvelopeError(str(exc)) from exc


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    return str(value)
