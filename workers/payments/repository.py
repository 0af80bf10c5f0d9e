"""Loading and saving payments, and the append-only record of payment steps.

A payment row is locked (`FOR UPDATE`) for the whole of a step, provider call
included: two steps of one order, in any replicas, run one after the other, so a
void waits for an authorization in flight and then finds what it made.

Every step ends with its record in the append-only ledger of steps (`record`); what a
step changed in the payment (`save`) is written with it, in one statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from db.prepared import Prepared, bind_columns
from db.tables.payments import payment_attempts, payment_refunds, payments, provider_events
from workers.payments.gateway import ProviderEvent
from workers.payments.model import Outcome, Payment, Refund, Step

# Statements compiled once and run on the transaction's asyncpg connection (db/prepared.py).
_LOCK = Prepared(select(payments).where(payments.c.order_id == bindparam("order_id")).with_for_update())
_LOCK_IF_FREE = Prepared(
    select(payments).where(payments.c.order_id == bindparam("order_id")).with_for_update(skip_locked=True)
)
_EXISTS = Prepared(select(payments.c.order_id).where(payments.c.order_id == bindparam("order_id")))
_CLAIM = Prepared(
    pg_insert(payments)
    .values(
        **bind_columns(
            payments,
            ("order_id", "status", "amount_minor", "currency", "authorization_id", "created_at", "updated_at"),
            "p_",
        )
    )
    .on_conflict_do_nothing()
    .returning(payments.c.order_id)
)
_ATTEMPT_COLUMNS = (
    "order_id",
    "step",
    "attempt",
    "idempotency_key",
    "outcome",
    "reason",
    "called_provider",
    "provider_reference",
    "correlation_id",
    "at",
)
_RECORDING = payment_attempts.insert().values(**bind_columns(payment_attempts, _ATTEMPT_COLUMNS, "a_"))
_RECORD = Prepared(_RECORDING)
_SAVED = (
    update(payments)
    .where(payments.c.order_id == bindparam("p_order_id"))
    .values(
        **bind_columns(
            payments,
            ("status", "amount_minor", "currency", "authorization_id", "updated_at", "amount_refunded_minor"),
            "p_",
        )
    )
    .returning(payments.c.order_id)
    .cte("saved")
)
_SAVE_AND_RECORD = Prepared(select(_SAVED.c.order_id).add_cte(_RECORDING.cte("recorded")))
_REFUND = Prepared(
    select(payment_refunds).where(
        payment_refunds.c.order_id == bindparam("order_id"),
        payment_refunds.c.idempotency_key == bindparam("idempotency_key"),
    )
)
_ADD_REFUND = Prepared(
    payment_refunds.insert().values(
        **bind_columns(
            payment_refunds,
            ("order_id", "idempotency_key", "amount_minor", "reference", "provider_refund_id", "at"),
            "r_",
        )
    )
)
_RECORD_EVENT = Prepared(
    pg_insert(provider_events)
    .values(
        **bind_columns(
            provider_events, ("event_id", "type", "object_id", "order_id", "created_at", "received_at"), "e_"
        )
    )
    .on_conflict_do_nothing()
    .returning(provider_events.c.event_id)
)
_PROVIDER_VIEW = Prepared(
    update(payments)
    .where(payments.c.order_id == bindparam("v_order_id"))
    .values(**bind_columns(payments, ("provider_status", "provider_status_at", "provider_disagreement"), "v_"))
)
_STEP_ATTEMPTS = payment_attempts.c.attempt
# The latest attempts of the order's authorizations and voids (0: none): which of two is newer.
_LATEST = Prepared(
    select(
        func.coalesce(func.max(_STEP_ATTEMPTS).filter(payment_attempts.c.step == "authorize"), 0).label("authorize"),
        func.coalesce(func.max(_STEP_ATTEMPTS).filter(payment_attempts.c.step == "void"), 0).label("void"),
    ).where(payment_attempts.c.order_id == bindparam("order_id"))
)


class PaymentsRepository:
    def __init__(self, db: asyncpg.Connection) -> None:
        self._db = db
        self._unsaved: Payment | None = None

    async def lock(self, order_id: UUID) -> Payment | None:
        row = await _LOCK.fetchrow(self._db, order_id=order_id)
        return _payment(row) if row else None

    async def lock_if_free(self, order_id: UUID) -> tuple[Payment | None, bool]:
        """The order's payment, locked, unless a step holds it now: (None, True) then, and
        (None, False) when the order has no payment."""
        row = await _LOCK_IF_FREE.fetchrow(self._db, order_id=order_id)
        if row is not None:
            return _payment(row), False
        return None, await _EXISTS.fetchrow(self._db, order_id=order_id) is not None

    async def claim(self, payment: Payment) -> bool:
        """Insert the order's payment; False if it has one (a concurrent insert waits for
        the first to commit, then gets False)."""
        row = await _CLAIM.fetchrow(
            self._db,
            p_order_id=payment.order_id,
            p_status=payment.status,
            p_amount_minor=payment.amount_minor,
            p_currency=payment.currency,
            p_authorization_id=payment.authorization_id,
            p_created_at=payment.created_at,
            p_updated_at=payment.updated_at,
        )
        return row is not None

    async def latest_attempts(self, order_id: UUID) -> tuple[int, int]:
        """The latest saga attempts of the order's authorizations and of its voids (0: none)."""
        row = await _LATEST.fetchrow(self._db, order_id=order_id)
        assert row is not None  # an aggregate: one row
        return int(row["authorize"]), int(row["void"])

    async def refund(self, order_id: UUID, idempotency_key: str) -> Refund | None:
        """The refund made under this key, if one was."""
        row = await _REFUND.fetchrow(self._db, order_id=order_id, idempotency_key=idempotency_key)
        return _refund(row) if row else None

    async def add_refund(self, refund: Refund) -> None:
        await _ADD_REFUND.execute(
            self._db,
            r_order_id=refund.order_id,
            r_idempotency_key=refund.idempotency_key,
            r_amount_minor=refund.amount_minor,
            r_reference=refund.reference,
            r_provider_refund_id=refund.provider_refund_id,
            r_at=refund.at,
        )

    async def record_event(self, event: ProviderEvent, received_at: datetime) -> bool:
        """Keep a provider's event; False if it was kept before (the same event id)."""
        row = await _RECORD_EVENT.fetchrow(
            self._db,
            e_event_id=event.id,
            e_type=event.type,
            e_object_id=event.object_id,
            e_order_id=event.order_id,
            e_created_at=event.created,
            e_received_at=received_at,
        )
        return row is not None

    async def save_provider_view(self, payment: Payment) -> None:
        """Write the provider's view of the payment (from its events), and nothing else."""
        await _PROVIDER_VIEW.execute(
            self._db,
            v_order_id=payment.order_id,
            v_provider_status=payment.provider_status,
            v_provider_status_at=payment.provider_status_at,
            v_provider_disagreement=payment.provider_disagreement,
        )

    def save(self, payment: Payment) -> None:
        """Write what the step changed in the payment, with the step's record."""
        self._unsaved = payment

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
        """Append the step to the ledger, and write the payment `save` was given, if any."""
        values = {
            "a_order_id": order_id,
            "a_step": step,
            "a_attempt": attempt,
            "a_idempotency_key": idempotency_key,
            "a_outcome": outcome.outcome,
            "a_reason": outcome.reason,
            "a_called_provider": called_provider,
            "a_provider_reference": provider_reference,
            "a_correlation_id": correlation_id,
            "a_at": at,
        }
        payment, self._unsaved = self._unsaved, None
        if payment is None:
            await _RECORD.execute(self._db, **values)
            return
        await _SAVE_AND_RECORD.execute(
            self._db,
            p_order_id=payment.order_id,
            p_status=payment.status,
            p_amount_minor=payment.amount_minor,
            p_currency=payment.currency,
            p_authorization_id=payment.authorization_id,
            p_updated_at=payment.updated_at,
            p_amount_refunded_minor=payment.amount_refunded_minor,
            **values,
        )


def _payment(row: Mapping[str, Any]) -> Payment:
    return Payment(
        order_id=row["order_id"],
        status=row["status"],
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        authorization_id=row["authorization_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        amount_refunded_minor=row["amount_refunded_minor"],
        provider_status=row["provider_status"],
        provider_status_at=row["provider_status_at"],
        provider_disagreement=row["provider_disagreement"],
    )


def _refund(row: Mapping[str, Any]) -> Refund:
    return Refund(
        order_id=row["order_id"],
        idempotency_key=row["idempotency_key"],
        amount_minor=row["amount_minor"],
        reference=row["reference"],
        provider_refund_id=row["provider_refund_id"],
        at=row["at"],
    )
