"""Payment use cases: lock the order's payment, decide (model.py), call the provider if the
decision needs it, save, record the step, emit. One transaction per message.

Every step answers with an event carrying the command's `attempt`, also when it changed
nothing (a repeat gets the outcome of the first time), so the saga, which sends through
its outbox and keeps no reply queue, hears back on every attempt. The idempotency key
of the command goes to the provider unchanged: a repeated step is never a second charge.

When the provider gives no answer (unreachable, 5xx after the gateway's retries, a
timeout): an authorization reports `payment_failed` with outcome `failed` at once (the
payment is `unknown`; the saga cancels and voids, and the void finds the authorization
at the provider if one was made), while a capture, void or refund raises, so the
runtime redelivers it with backoff: those must happen eventually, and their keys make
the retries safe.

An order paid again sends another authorization, of a later attempt and with a key of
its own: after a decline or a void it is asked for anew (model.py, `paid_again`).
`check_payment_token` answers the edge's question whether the provider knows a token.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from uuid import UUID

from contracts.errors import invalid_input
from contracts.payments import (
    PAYMENT_AUTHORIZED,
    PAYMENT_CAPTURED,
    PAYMENT_FAILED,
    PAYMENT_REFUNDED,
    PAYMENT_VOIDED,
    AuthorizePayment,
    CapturePayment,
    CheckPaymentToken,
    PaymentResult,
    PaymentTokenCheck,
    ProviderEventReceipt,
    ReceiveProviderEvent,
    RefundPayment,
    VoidPayment,
)
from contracts.topology import EventSpec
from workers.payments.gateway import (
    BadSignature,
    PaymentGateway,
    ProviderRefused,
    ProviderUnavailable,
    verify_event,
)
from workers.payments.model import (
    NO_CURRENCY,
    Outcome,
    Payment,
    ProviderAnswer,
    ProviderView,
    Refund,
    Step,
    no_payment,
)
from workers.payments.repository import PaymentsRepository
from workers.runtime.context import HandlerContext
from workers.runtime.errors import RetryLater

log = logging.getLogger("agora.payments")

EVENTS: dict[str, EventSpec] = {
    "authorized": PAYMENT_AUTHORIZED,
    "declined": PAYMENT_FAILED,
    "failed": PAYMENT_FAILED,
    "captured": PAYMENT_CAPTURED,
    "voided": PAYMENT_VOIDED,
    "refunded": PAYMENT_REFUNDED,
}

Command = AuthorizePayment | CapturePayment | VoidPayment | RefundPayment
# A webhook event about a payment a step holds waits this long in a delay queue.
_BUSY_RETRY_SECONDS = 1.0


class PaymentHandlers:
    """The four saga steps, the token check, and the provider's webhook events, over one
    payment gateway."""

    def __init__(self, gateway: PaymentGateway, webhook_secret: str) -> None:
        self.gateway = gateway
        self._webhook_secret = webhook_secret

    async def receive_provider_event(self, cmd: ReceiveProviderEvent, ctx: HandlerContext) -> ProviderEventReceipt:
        """A provider's webhook event: verified by its signature (no actor: the signature is
        the authentication; a bad one is invalid input, dead-lettered), kept once by its id,
        and the provider's view of the intent set beside the order's payment, with a
        disagreement logged (model.py, `reconciled`). The saga is not moved by events: its
        steps' own answers do that."""
        try:
            event = verify_event(cmd.payload, cmd.signature, self._webhook_secret)
        except BadSignature as exc:
            raise invalid_input("the webhook was refused", [(("signature",), str(exc))]) from None
        repo = PaymentsRepository(ctx.db)
        receipt = ProviderEventReceipt(received=True, event_id=event.id, type=event.type, duplicate=False)
        if not await repo.record_event(event, datetime.now(UTC)):
            return receipt.model_copy(update={"duplicate": True})
        if event.order_id is None or event.intent_id is None or event.intent_status is None:
            return receipt
        # A step in flight holds the payment (the provider's call included) and often made
        # this very event: come back in a moment rather than hold a handler slot waiting.
        payment, busy = await repo.lock_if_free(event.order_id)
        if busy:
            raise RetryLater("a step of the payment is in flight", after=_BUSY_RETRY_SECONDS)
        if payment is None:
            return receipt  # not (yet) a payment here: the event stays recorded with its order
        view = ProviderView(event.intent_id, event.intent_status, event.created, event.amount_refunded)
        seen = payment.reconciled(view)
        if seen is not None and seen != payment:
            if seen.provider_disagreement and seen.provider_disagreement != payment.provider_disagreement:
                log.warning(
                    "the payment provider disagrees",
                    extra={"order_id": str(payment.order_id), "event": event.id, "detail": seen.provider_disagreement},
                )
            await repo.save_provider_view(seen)
        return receipt

    async def check_payment_token(self, query: CheckPaymentToken, ctx: HandlerContext) -> PaymentTokenCheck:
        """Whether the provider knows the token; `known` null when it did not say (the
        order goes ahead, and its authorization tells)."""
        try:
            known: bool | None = await self.gateway.token_known(query.payment_token)
        except (ProviderUnavailable, ProviderRefused) as exc:
            log.warning("payment token unchecked", extra={"detail": str(exc)})
            known = None
        return PaymentTokenCheck(payment_token=query.payment_token, known=known)

    async def authorize_payment(self, cmd: AuthorizePayment, ctx: HandlerContext) -> PaymentResult:
        ctx.require_saga_actor("payment steps")
        repo = PaymentsRepository(ctx.db)
        now = datetime.now(UTC)
        payment = await _claim_or_lock(repo, Payment.requested(cmd.order_id, cmd.amount_minor, cmd.currency, now))
        if payment.may_be_paid_again:  # declined or voided: a later attempt is paying it again
            latest = max(await repo.latest_attempts(cmd.order_id))
            payment = payment.paid_again(cmd.attempt, latest, cmd.amount_minor, cmd.currency, now)
        outcome = payment.authorize_plan()
        called = outcome is None
        if outcome is None:
            try:
                answer = await self.gateway.authorize(
                    order_id=cmd.order_id,
                    amount_minor=payment.amount_minor,
                    currency=payment.currency,
                    token=cmd.payment_token,
                    idempotency_key=cmd.idempotency_key,
                )
            except ProviderUnavailable as exc:
                log.warning("authorization unanswered", extra={"order_id": str(cmd.order_id), "detail": str(exc)})
                payment, outcome = payment.authorized(None, now, "the payment provider did not answer in time")
            except ProviderRefused as exc:
                payment, outcome = payment.refused(now, f"the payment provider refused: {exc}")
            else:
                payment, outcome = payment.authorized(ProviderAnswer(answer.id, answer.status), now, None)
            repo.save(payment)
        return await _answer(ctx, repo, cmd, "authorize", payment, outcome, called, now)

    async def capture_payment(self, cmd: CapturePayment, ctx: HandlerContext) -> PaymentResult:
        ctx.require_saga_actor("payment steps")
        repo = PaymentsRepository(ctx.db)
        now = datetime.now(UTC)
        payment = await repo.lock(cmd.order_id)
        if payment is None:
            return await _nothing(ctx, repo, cmd, "capture", now)
        outcome = payment.capture_plan()
        called = outcome is None
        if outcome is None:
            assert payment.authorization_id is not None  # authorized payments have one
            try:
                await self.gateway.capture(payment.authorization_id, idempotency_key=cmd.idempotency_key)
            except ProviderRefused as exc:
                outcome = Outcome("failed", f"the payment provider refused the capture: {exc}")
            else:
                payment, outcome = payment.captured(now)
                repo.save(payment)
        return await _answer(ctx, repo, cmd, "capture", payment, outcome, called, now)

    async def void_payment(self, cmd: VoidPayment, ctx: HandlerContext) -> PaymentResult:
        ctx.require_saga_actor("payment steps")
        repo = PaymentsRepository(ctx.db)
        now = datetime.now(UTC)
        # No payment yet (the authorization never came, or its transaction died with a
        # crash mid-call): one is made, voided, so an authorization that comes later is refused.
        payment = await _claim_or_lock(repo, Payment.unseen(cmd.order_id, now))
        latest_authorization, _ = await repo.latest_attempts(cmd.order_id)
        outcome = payment.void_plan(cmd.attempt, latest_authorization)
        called = outcome is None
        if outcome is None:
            # Whatever the provider holds for the order, found by its metadata: also an
            # authorization whose answer never reached us (a timeout, a crash mid-call).
            for held in await self.gateway.authorizations_for(cmd.order_id):
                if held.status == "authorized":
                    await self.gateway.void(held.id, idempotency_key=f"{cmd.idempotency_key}:{held.id}")
                    log.info("authorization voided", extra={"order_id": str(cmd.order_id), "authorization": held.id})
            payment, outcome = payment.voided(now)
            repo.save(payment)
        return await _answer(ctx, repo, cmd, "void", payment, outcome, called, now)

    async def refund_payment(self, cmd: RefundPayment, ctx: HandlerContext) -> PaymentResult:
        """All that is left (`amount_minor` null) or a part; the same key twice is one refund."""
        ctx.require_saga_actor("payment steps")
        repo = PaymentsRepository(ctx.db)
        now = datetime.now(UTC)
        payment = await repo.lock(cmd.order_id)
        if payment is None:
            return await _nothing(ctx, repo, cmd, "refund", now)
        plan = payment.refund_plan(cmd.amount_minor, await repo.refund(cmd.order_id, cmd.idempotency_key))
        outcome = plan.outcome
        if outcome is None:
            assert payment.authorization_id is not None  # captured payments have one
            try:
                made = await self.gateway.refund(
                    payment.authorization_id, amount_minor=plan.amount_minor, idempotency_key=cmd.idempotency_key
                )
            except ProviderRefused as exc:
                outcome = Outcome("failed", f"the payment provider refused the refund: {exc}")
            else:
                payment, outcome = payment.refunded(plan.amount_minor, now)
                repo.save(payment)
                refund = Refund(cmd.order_id, cmd.idempotency_key, plan.amount_minor, cmd.reference, made.id, now)
                await repo.add_refund(refund)
        called = plan.outcome is None
        amount = plan.amount_minor if outcome.outcome == "refunded" else 0
        return await _answer(
            ctx, repo, cmd, "refund", payment, outcome, called, now, amount=amount, reference=cmd.reference
        )


async def _claim_or_lock(repo: PaymentsRepository, new: Payment) -> Payment:
    """`new` if the order had no payment (one statement: the first authorization's case),
    else the order's payment, locked."""
    if await repo.claim(new):
        return new
    payment = await repo.lock(new.order_id)  # rows are never deleted
    assert payment is not None
    return payment


async def _nothing(
    ctx: HandlerContext, repo: PaymentsRepository, cmd: Command, step: Step, now: datetime
) -> PaymentResult:
    outcome = no_payment(step)
    await repo.record(
        cmd.order_id,
        step,
        attempt=cmd.attempt,
        idempotency_key=cmd.idempotency_key,
        outcome=outcome,
        called_provider=False,
        provider_reference=None,
        correlation_id=ctx.envelope.correlation_id,
        at=now,
    )
    reference = cmd.reference if isinstance(cmd, RefundPayment) else None
    result = _result(cmd.order_id, cmd.attempt, step, outcome, 0, NO_CURRENCY, None, now, reference=reference)
    await ctx.emit(EVENTS[outcome.outcome], result)
    return result


async def _answer(
    ctx: HandlerContext,
    repo: PaymentsRepository,
    cmd: Command,
    step: Step,
    payment: Payment,
    outcome: Outcome,
    called: bool,
    now: datetime,
    *,
    amount: int | None = None,
    reference: str | None = None,
) -> PaymentResult:
    """Record the step and emit its event; `amount` is a refund's own (default: the payment's)."""
    await repo.record(
        payment.order_id,
        step,
        attempt=cmd.attempt,
        idempotency_key=cmd.idempotency_key,
        outcome=outcome,
        called_provider=called,
        provider_reference=payment.authorization_id,
        correlation_id=ctx.envelope.correlation_id,
        at=now,
    )
    result = _result(
        payment.order_id,
        cmd.attempt,
        step,
        outcome,
        payment.amount_minor if amount is None else amount,
        payment.currency,
        payment.authorization_id,
        now,
        amount_refunded_minor=payment.amount_refunded_minor,
        reference=reference,
    )
    await ctx.emit(EVENTS[outcome.outcome], result)
    return result


def _result(
    order_id: UUID,
    attempt: int,
    step: Step,
    outcome: Outcome,
    amount_minor: int,
    currency: str,
    provider_reference: str | None,
    now: datetime,
    *,
    amount_refunded_minor: int = 0,
    reference: str | None = None,
) -> PaymentResult:
    return PaymentResult(
        order_id=order_id,
        attempt=attempt,
        step=step,
        outcome=outcome.outcome,
        amount_minor=amount_minor,
        currency=currency,
        provider_reference=provider_reference,
        reason=outcome.reason,
        at=now,
        amount_refunded_minor=amount_refunded_minor,
        reference=reference,
    )
