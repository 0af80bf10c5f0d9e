"""Personal data across services: every service that holds some answers an export query.

`GET /api/users/{userId}/export` asks each of them (over the bus, with the caller's
token) and puts the answers side by side; erasure is the users service's
`users.user_erased.v1` event, on which each service anonymises what it holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from contracts.base import Contract
from contracts.topology import CommandSpec

EXPORT_NAME = "export_user_data"


class ExportUserData(Contract):
    user_id: UUID


class PersonalData(Contract):
    """What one service holds about one person, in its own shape."""

    service: str
    data: dict[str, Any] = Field(description="The service's records about the user, as JSON")


class UserDataExport(Contract):
    """The answer to `GET /api/users/{userId}/export`: every service's records, by service."""

    user_id: UUID
    exported_at: datetime
    services: dict[str, dict[str, Any]]


def export_spec(service: str) -> CommandSpec:
    """The export query of `service` (owner or admin only; the service checks)."""
    return CommandSpec(
        service,
        EXPORT_NAME,
        1,
        ExportUserData,
        PersonalData,
        kind="query",
        requires_actor=True,
        summary=f"Everything the {service} service holds about a user (GDPR access).",
    )
