"""The payments model: which step needs the provider, and what a repeat answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from workers.payments.model import Outcome, Payment, ProviderAnswer, ProviderView, Refund, RefundPlan
from workers.runtime.context import may_take_saga_steps

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def requested() -> Payment:
    return Payment.requested(uuid.uuid4(), 1999, "EUR", NOW)


def test_a_new_or_unanswered_authorization_asks_the_provider_again() -> None:
    payment = requested()
    assert payment.authorize_plan() is None
    unknown, outcome = payment.authorized(None, NOW, None)
    assert unknown.status == "unknown" and outcome.outcome == "failed"
    assert unknown.authorize_plan() is None  # same key again: the provider answers the first call


def test_a_decided_authorization_is_answered_from_the_row() -> None:
    authorized, outcome = requested().authorized(ProviderAnswer("auth_1", "authorized"), NOW, None)
    assert outcome == Outcome("authorized") and authorized.authorization_id == "auth_1"
    assert authorized.authorize_plan() == Outcome("authorized")
    declined, _ = requested().authorized(ProviderAnswer("auth_2", "declined"), NOW, None)
    assert declined.authorize_plan() is not None and declined.authorize_plan().outcome == "declined"  # type: ignore[union-attr]


def test_capture_void_refund_follow_the_payment() -> None:
    authorized, _ = requested().authorized(ProviderAnswer("auth_1", "authorized"), NOW, None)
    assert authorized.capture_plan() is None and authorized.void_plan(2, 1) is None
    early = authorized.refund_plan(None, None)
    assert early.outcome is not None and early.outcome.outcome == "failed"
    captured, _ = authorized.captured(NOW)
    assert captured.capture_plan() == Outcome("captured")
    assert captured.void_plan(2, 1) is not None and captured.void_plan(2, 1).outcome == "failed"  # type: ignore[union-attr]
    assert captured.refund_plan(None, None) == RefundPlan(1999, None)
    refunded, _ = captured.refunded(1999, NOW)
    assert refunded.status == "refunded" and refunded.amount_refunded_minor == 1999
    assert refunded.refund_plan(None, None) == RefundPlan(0, Outcome("refunded"))
    assert refunded.capture_plan() == Outcome("captured")


def test_partial_refunds_up_to_what_was_captured() -> None:
    authorized, _ = requested().authorized(ProviderAnswer("auth_1", "authorized"), NOW, None)
    captured, _ = authorized.captured(NOW)
    assert captured.refund_plan(500, None) == RefundPlan(500, None)
    part, outcome = captured.refunded(500, NOW)
    assert (part.status, part.amount_refunded_minor, part.refundable_minor, outcome) == (
        "captured",
        500,
        1499,
        Outcome("refunded"),
    )
    over = part.refund_plan(1500, None)
    assert over.amount_minor == 0 and over.outcome is not None and over.outcome.outcome == "failed"
    assert part.refund_plan(None, None) == RefundPlan(1499, None)  # all that is left
    # The same key again: the refund it made, whatever is left now; another amount is refused.
    earlier = Refund(part.order_id, "k", 500, None, "re_1", NOW)
    assert part.refund_plan(500, earlier) == RefundPlan(500, Outcome("refunded"))
    assert part.refund_plan(None, earlier) == RefundPlan(500, Outcome("refunded"))
    mismatch = part.refund_plan(400, earlier)
    assert mismatch.outcome is not None and mismatch.outcome.outcome == "failed"
    whole, _ = part.refunded(1499, NOW)
    assert (whole.status, whole.refundable_minor) == ("refunded", 0)


def test_a_void_is_final() -> None:
    voided, outcome = Payment.unseen(uuid.uuid4(), NOW).voided(NOW)
    assert outcome == Outcome("voided") and voided.void_plan(2, 1) == Outcome("voided")
    for plan in (voided.authorize_plan(), voided.capture_plan(), voided.refund_plan(None, None).outcome):
        assert plan is not None and plan.outcome == "failed"
    # A late copy of an authorization the void barred (an attempt it has seen) stays barred.
    assert voided.paid_again(1, 2, 1999, "EUR", NOW) == voided


def test_a_later_attempt_pays_a_declined_or_voided_order_again() -> None:
    declined, _ = requested().authorized(ProviderAnswer("auth_1", "declined"), NOW, None)
    assert declined.paid_again(1, 1, 1999, "EUR", NOW) == declined  # the same attempt again
    again = declined.paid_again(2, 1, 1999, "EUR", NOW)
    assert (again.status, again.authorization_id, again.authorize_plan()) == ("unknown", None, None)
    # Voided before it was ever authorized (no amount known then): the new attempt brings it.
    voided, _ = Payment.unseen(uuid.uuid4(), NOW).voided(NOW)
    fresh = voided.paid_again(3, 2, 1999, "EUR", NOW)
    assert (fresh.status, fresh.amount_minor, fresh.currency) == ("unknown", 1999, "EUR")
    # Authorized (or captured): a later attempt changes nothing.
    authorized, _ = again.authorized(ProviderAnswer("auth_2", "authorized"), NOW, None)
    assert authorized.paid_again(4, 2, 1999, "EUR", NOW) == authorized


def test_a_void_older_than_the_latest_authorization_leaves_it_alone() -> None:
    authorized, _ = requested().authorized(ProviderAnswer("auth_2", "authorized"), NOW, None)
    stale = authorized.void_plan(2, 3)  # void of attempt 2, the order paid again with attempt 3
    assert stale is not None and stale.outcome == "failed"
    assert authorized.void_plan(4, 3) is None


@pytest.mark.parametrize(
    ("role", "allowed"), [("service", True), ("admin", True), ("member", False), ("partner", False)]
)
def test_only_services_and_admins_move_money(role: str, allowed: bool) -> None:
    assert may_take_saga_steps(role) is allowed


def test_the_providers_view_is_kept_beside_ours_and_a_disagreement_named() -> None:
    later = datetime(2026, 11, 25, 0, 1, tzinfo=UTC)
    authorized, _ = requested().authorized(ProviderAnswer("pi_1", "authorized"), NOW, None)
    captured, _ = authorized.captured(NOW)
    # Its own intent, behind us (the capture's event not here yet): kept, no disagreement.
    seen = captured.reconciled(ProviderView("pi_1", "requires_capture", NOW))
    assert seen is not None and (seen.provider_status, seen.provider_disagreement) == ("requires_capture", None)
    seen = seen.reconciled(ProviderView("pi_1", "succeeded", later))
    assert seen is not None and (seen.provider_status, seen.provider_disagreement) == ("succeeded", None)
    # An older event arriving late changes nothing.
    assert seen.reconciled(ProviderView("pi_1", "requires_capture", NOW)) is None
    # Canceled at the provider while we captured: a disagreement, in words.
    odd = captured.reconciled(ProviderView("pi_1", "canceled", later))
    assert odd is not None and odd.provider_disagreement == "the provider says canceled, Agora says captured"
    # A refund made outside Agora.
    outside = seen.reconciled(ProviderView("pi_1", "succeeded", later, amount_refunded=300))
    assert outside is not None and "refunded 300, Agora knows of 0" in (outside.provider_disagreement or "")
    # An authorization the payment never got an answer for holds money until it is canceled.
    unknown, _ = requested().authorized(None, NOW, None)
    stray = unknown.reconciled(ProviderView("pi_9", "requires_capture", NOW))
    assert stray is not None and "pi_9" in (stray.provider_disagreement or "")
    cleared = stray.reconciled(ProviderView("pi_9", "canceled", later))
    assert cleared is not None and cleared.provider_disagreement is None
    assert unknown.reconciled(ProviderView("pi_9", "canceled", later)) is None


def test_of_two_events_in_one_second_the_later_state_wins() -> None:
    authorized, _ = requested().authorized(ProviderAnswer("pi_1", "authorized"), NOW, None)
    captured, _ = authorized.captured(NOW)
    seen = captured.reconciled(ProviderView("pi_1", "succeeded", NOW))
    assert seen is not None
    # The authorization's event, made in the same second, handled after the capture's.
    assert seen.reconciled(ProviderView("pi_1", "requires_capture", NOW)) is None
