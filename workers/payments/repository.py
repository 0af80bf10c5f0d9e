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
from db.tables.payments import payment_attempts, payments
from workers.payments.model import Outcome, Payment, Step

# Statements compiled once and run on the transaction's asyncpg connection (db/prepared.py).
_LOCK = Prepared(select(payments).where(payments.c.order_id == bindparam("order_id")).with_for_update())
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
    .values(**bind_columns(payments, ("status", "amount_minor", "currency", "authorization_id", "updated_at"), "p_"))
    .returning(payments.c.order_id)
    .cte("saved")
)
_SAVE_AND_RECORD = Prepared(select(_SAVED.c.order_id).add_cte(_RECORDING.cte("recorded")))
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
    )
