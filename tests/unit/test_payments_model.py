"""The payments model: which step needs the provider, and what a repeat answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from workers.payments.model import Outcome, Payment, ProviderAnswer
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
    assert authorized.refund_plan() is not None and authorized.refund_plan().outcome == "failed"  # type: ignore[union-attr]
    captured, _ = authorized.captured(NOW)
    assert captured.capture_plan() == Outcome("captured")
    assert captured.void_plan(2, 1) is not None and captured.void_plan(2, 1).outcome == "failed"  # type: ignore[union-attr]
    assert captured.refund_plan() is None
    refunded, _ = captured.refunded(NOW)
    assert refunded.refund_plan() == Outcome("refunded") and refunded.capture_plan() == Outcome("captured")


def test_a_void_is_final() -> None:
    voided, outcome = Payment.unseen(uuid.uuid4(), NOW).voided(NOW)
    assert outcome == Outcome("voided") and voided.void_plan(2, 1) == Outcome("voided")
    for plan in (voided.authorize_plan(), voided.capture_plan(), voided.refund_plan()):
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
