"""Loading and saving payments, and the append-only record of payment steps.

A payment row is locked (`FOR UPDATE`) for the whole of a step, provider call
included: two steps of one order, in any replicas, run one after the other, so a
void waits for an authorization in flight and then finds what it made.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.tables import payment_attempts, payments
from db.writes import insert_if_new
from workers.payments.model import Outcome, Payment, Step


class PaymentsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock(self, order_id: UUID) -> Payment | None:
        row = (
            await self._session.execute(select(payments).where(payments.c.order_id == order_id).with_for_update())
        ).first()
        return _payment(row) if row else None

    async def claim(self, payment: Payment) -> bool:
        """Insert the order's payment; False if it has one (a concurrent insert waits for
        the first to commit, then gets False)."""
        return await insert_if_new(
            self._session,
            payments,
            {
                "order_id": payment.order_id,
                "status": payment.status,
                "amount_minor": payment.amount_minor,
                "currency": payment.currency,
                "authorization_id": payment.authorization_id,
                "created_at": payment.created_at,
                "updated_at": payment.updated_at,
            },
        )

    async def save(self, payment: Payment) -> None:
        await self._session.execute(
            update(payments)
            .where(payments.c.order_id == payment.order_id)
            .values(status=payment.status, authorization_id=payment.authorization_id, updated_at=payment.updated_at)
        )

    async def record(
        self,
        order_id: UUID,
        step: Step,
        *,
        attempt: int,
        idempotency_key: str,
        outcome: Outcome,
        called_provider: bool,
        provider_reference: str | None,
        correlation_id: str | None,
        at: datetime,
    ) -> None:
        await self._session.execute(
            payment_attempts.insert().values(
                order_id=order_id,
                step=step,
                attempt=attempt,
                idempotency_key=idempotency_key,
                outcome=outcome.outcome,
                reason=outcome.reason,
                called_provider=called_provider,
                provider_reference=provider_reference,
                correlation_id=correlation_id,
                at=at,
            )
        )


def _payment(row: Any) -> Payment:
    return Payment(
        order_id=row.order_id,
        status=row.status,
        amount_minor=row.amount_minor,
        currency=row.currency,
        authorization_id=row.authorization_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
