"""The notifications schema: read models of other services' events, and the delivery records.

`ReadModels` works in the handler's transaction. `Deliveries` does not: each call is a
transaction of its own, committed at once, because a delivery's record must outlive a
handler that fails after the provider accepted the message (see delivery.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.notifications import Channel
from contracts.orders import OrderPlaced, OrderTaxLine
from db.tables.notifications import (
    deliveries,
    notification_orders,
    notification_preferences,
    notification_products,
    notification_variants,
    sign_in_fingerprints,
)
from workers.notifications.model import KnownVariant, OrderAmounts, OrderLine

# last_error is kept short: a reason for an operator, not a transcript.
_MAX_ERROR = 500


@dataclass(frozen=True)
class KnownOrder:
    order_id: UUID
    user_id: UUID
    total_minor: int
    currency: str
    lines: tuple[OrderLine, ...]
    amounts: OrderAmounts = field(default_factory=OrderAmounts)


class ReadModels:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- orders (from orders.order_placed.v1) ---

    async def add_order(self, event: OrderPlaced) -> None:
        items = [{"product_id": str(i.product_id), "quantity": i.quantity, "price": i.price} for i in event.items]
        await self._session.execute(
            insert(notification_orders)
            .values(
                order_id=event.order_id,
                user_id=event.user_id,
                total_minor=event.total_minor,
                currency=event.currency,
                items=items,
                placed_at=event.at,
                subtotal_minor=event.subtotal_minor,
                discount_minor=event.discount_minor,
                voucher_code=event.voucher_code,
                shipping_minor=event.shipping_minor,
                shipping_method=event.shipping_method,
                tax_minor=event.tax_minor,
                taxes=[t.model_dump(mode="json") for t in event.taxes],
                prices_include_tax=event.prices_include_tax,
            )
            .on_conflict_do_nothing(index_elements=["order_id"])
        )

    async def order(self, order_id: UUID) -> KnownOrder | None:
        row = (
            await self._session.execute(select(notification_orders).where(notification_orders.c.order_id == order_id))
        ).first()
        if row is None:
            return None
        lines = tuple(OrderLine(UUID(i["product_id"]), int(i["quantity"]), str(i["price"])) for i in row.items)
        amounts = OrderAmounts(
            subtotal_minor=row.subtotal_minor,
            discount_minor=row.discount_minor,
            voucher_code=row.voucher_code,
            shipping_minor=row.shipping_minor,
            shipping_method=row.shipping_method,
            tax_minor=row.tax_minor,
            taxes=tuple(OrderTaxLine.model_validate(t) for t in row.taxes),
            prices_include_tax=row.prices_include_tax,
        )
        return KnownOrder(row.order_id, row.user_id, row.total_minor, row.currency, lines, amounts)

    # --- products (from catalog events) ---

    async def save_product(self, product_id: UUID, seller_id: UUID, name: str | None, at: datetime) -> None:
        """Insert or update, unless a newer event got here first. `name` None: unchanged."""
        values: dict[str, Any] = {"seller_id": seller_id, "updated_at": at}
        if name is not None:
            values["name"] = name
        newer = notification_products.c.updated_at < at
        statement = insert(notification_products).values({"product_id": product_id, "name": "", **values})
        await self._session.execute(
            statement.on_conflict_do_update(index_elements=["product_id"], set_=values, where=newer)
        )

    async def product_names(self, product_ids: Iterable[UUID]) -> dict[UUID, str]:
        ids = list(product_ids)
        if not ids:
            return {}
        rows = await self._session.execute(
            select(notification_products.c.product_id, notification_products.c.name).where(
                notification_products.c.product_id.in_(ids), notification_products.c.name != ""
            )
        )
        return {row.product_id: row.name for row in rows}

    async def save_variants(self, product_id: UUID, variants: Mapping[UUID, KnownVariant], at: datetime) -> None:
        """Insert or update each variant's label and SKU, unless a newer event got here first."""
        if not variants:
            return
        statement = insert(notification_variants).values(
            [
                {"variant_id": variant_id, "product_id": product_id, "label": v.label, "sku": v.sku, "updated_at": at}
                for variant_id, v in variants.items()
            ]
        )
        changed = {name: statement.excluded[name] for name in ("label", "sku", "updated_at")}
        newer = notification_variants.c.updated_at < statement.excluded.updated_at
        await self._session.execute(
            statement.on_conflict_do_update(index_elements=["variant_id"], set_=changed, where=newer)
        )

    async def variant(self, variant_id: UUID) -> KnownVariant | None:
        row = (
            await self._session.execute(
                select(notification_variants.c.label, notification_variants.c.sku).where(
                    notification_variants.c.variant_id == variant_id
                )
            )
        ).first()
        return KnownVariant(row.label, row.sku) if row is not None else None

    # --- sign-ins (from users.signed_in.v1) ---

    async def fingerprints(self, user_id: UUID) -> set[str]:
        rows = await self._session.execute(
            select(sign_in_fingerprints.c.fingerprint).where(sign_in_fingerprints.c.user_id == user_id)
        )
        return set(rows.scalars())

    async def remember_sign_in(self, user_id: UUID, fingerprint: str, at: datetime) -> None:
        statement = insert(sign_in_fingerprints).values(
            user_id=user_id, fingerprint=fingerprint, first_seen_at=at, last_seen_at=at
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=["user_id", "fingerprint"],
                set_={"last_seen_at": at},
                where=sign_in_fingerprints.c.last_seen_at < at,
            )
        )

    # --- erasure ---

    async def forget(self, user_id: UUID) -> None:
        """Everything personal about the user goes; delivery records keep the bare id.

        Their orders stay as order → user id (what a later refund notice needs to find
        the account, and then skip it as erased), without the items bought."""
        await self._session.execute(
            delete(notification_preferences).where(notification_preferences.c.user_id == user_id)
        )
        await self._session.execute(delete(sign_in_fingerprints).where(sign_in_fingerprints.c.user_id == user_id))
        await self._session.execute(
            update(notification_orders).where(notification_orders.c.user_id == user_id).values(items=[])
        )


# --- deliveries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryKey:
    """One delivery: an event, a channel, a recipient. Its record is unique by this."""

    event_id: UUID
    channel: Channel
    recipient_id: UUID
    template: str


@dataclass(frozen=True)
class Delivery:
    id: int
    status: str
    attempts: int

    @property
    def done(self) -> bool:
        """Sent, failed for good, or skipped: nothing more to do, whatever redelivers the event."""
        return self.status != "pending"


class Deliveries:
    """Delivery records, each change committed at once (not in the handler's transaction)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def open(self, key: DeliveryKey, now: datetime, *, status: str = "pending") -> Delivery:
        """The delivery's record, created `pending` (or `status`) if it is new."""
        async with self._sessions.begin() as session:
            await session.execute(
                insert(deliveries)
                .values(
                    event_id=key.event_id,
                    channel=key.channel,
                    recipient_id=key.recipient_id,
                    template=key.template,
                    status=status,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["event_id", "channel", "recipient_id"])
            )
            row = (
                await session.execute(
                    select(deliveries.c.id, deliveries.c.status, deliveries.c.attempts).where(
                        deliveries.c.event_id == key.event_id,
                        deliveries.c.channel == key.channel,
                        deliveries.c.recipient_id == key.recipient_id,
                    )
                )
            ).one()
        return Delivery(row.id, row.status, row.attempts)

    async def sent(self, delivery: Delivery, provider_id: str, now: datetime) -> None:
        await self._update(
            delivery,
            status="sent",
            attempts=delivery.attempts + 1,
            provider_id=provider_id[:128],
            last_error=None,
            sent_at=now,
            updated_at=now,
        )

    async def attempt_failed(self, delivery: Delivery, error: str, now: datetime, *, final: bool) -> Delivery:
        """Count a failed attempt; `final` marks the delivery failed for good."""
        failed = Delivery(delivery.id, "failed" if final else "pending", delivery.attempts + 1)
        await self._update(
            delivery, status=failed.status, attempts=failed.attempts, last_error=error[:_MAX_ERROR], updated_at=now
        )
        return failed

    async def _update(self, delivery: Delivery, **values: Any) -> None:
        async with self._sessions.begin() as session:
            await session.execute(update(deliveries).where(deliveries.c.id == delivery.id).values(**values))
