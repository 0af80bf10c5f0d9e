"""Loading and saving a user's notification preferences, and gathering what is held about them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.notifications import NotificationPreferences
from db.tables.notifications import deliveries, notification_orders, notification_preferences, sign_in_fingerprints

_CHOICES = tuple(NotificationPreferences.model_fields)
# The delivery log as the user sees it: no error texts (they may quote an address).
_DELIVERY_COLUMNS = (
    "event_id",
    "channel",
    "recipient_id",
    "template",
    "status",
    "attempts",
    "provider_id",
    "created_at",
    "sent_at",
)


class SettingsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def preferences(self, user_id: UUID) -> tuple[NotificationPreferences, datetime | None]:
        """The user's choices and when they made them; the defaults (and None) without a row."""
        row = (
            await self._session.execute(
                select(notification_preferences).where(notification_preferences.c.user_id == user_id)
            )
        ).first()
        if row is None:
            return NotificationPreferences(), None
        return NotificationPreferences.model_validate({name: getattr(row, name) for name in _CHOICES}), row.updated_at

    async def save_preferences(self, user_id: UUID, choices: NotificationPreferences, now: datetime) -> None:
        values = {**choices.model_dump(), "updated_at": now}
        await self._session.execute(
            insert(notification_preferences)
            .values(user_id=user_id, **values)
            .on_conflict_do_update(index_elements=["user_id"], set_=values)
        )

    async def personal_records(self, user_id: UUID) -> dict[str, list[dict[str, Any]]]:
        """What else this service holds about the user: what was sent, sign-ins, orders seen."""
        queries = {
            "deliveries": select(*(deliveries.c[name] for name in _DELIVERY_COLUMNS))
            .where(deliveries.c.recipient_id == user_id)
            .order_by(deliveries.c.id),
            "sign_ins": select(
                sign_in_fingerprints.c.fingerprint,
                sign_in_fingerprints.c.first_seen_at,
                sign_in_fingerprints.c.last_seen_at,
            )
            .where(sign_in_fingerprints.c.user_id == user_id)
            .order_by(sign_in_fingerprints.c.first_seen_at),
            "orders": select(notification_orders)
            .where(notification_orders.c.user_id == user_id)
            .order_by(notification_orders.c.placed_at),
        }
        return {
            name: [dict(row._mapping) for row in (await self._session.execute(query)).all()]
            for name, query in queries.items()
        }
