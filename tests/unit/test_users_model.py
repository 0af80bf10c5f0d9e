from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from contracts.users import Address
from workers.users.model import (
    RefreshToken,
    UpdateRefused,
    User,
    decide_update,
    normalize_email,
    password_problem,
    refresh_verdict,
    refuse_admin_fields,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _user(**kw: object) -> User:
    base = User(
        user_id=uuid4(),
        email="a@example.com",
        username="alice",
        role="member",
        password_hash="h",
        phone=None,
        address=None,
        created_at=NOW,
        updated_at=NOW,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("password", ["password", "12345678", "qwertyuiop", "PASSWORD1", "iloveyou"])
def test_common_passwords_are_refused(password: str) -> None:
    assert password_problem(password, email="a@example.com", username="alice") == "is too common"


@pytest.mark.parametrize("password", ["alice@example.com", "Alice_Smith", "alice@example.com".upper()])
def test_password_equal_to_identity_is_refused(password: str) -> None:
    assert password_problem(password, email="alice@example.com", username="alice_smith") is not None


def test_a_decent_password_passes() -> None:
    assert password_problem("correct horse battery", email="a@example.com", username="alice") is None


def test_email_is_normalised_for_uniqueness() -> None:
    assert normalize_email("  Alice@Example.COM ") == "alice@example.com"


def test_update_reports_only_changed_fields() -> None:
    user = _user(phone="+14155550101")
    later = NOW + timedelta(minutes=1)
    address = Address(line1="1 Main", city="X", postal_code="1", country="US")
    updated, changed = user.updated({"phone": "+14155550101", "address": address}, later)
    assert changed == ("address",)
    assert updated.address == address
    assert updated.updated_at == later


def test_update_with_no_change_keeps_the_timestamp() -> None:
    user = _user(username="alice")
    updated, changed = user.updated({"username": "alice"}, NOW + timedelta(days=1))
    assert changed == ()
    assert updated is user


def test_members_see_only_themselves_and_admins_see_all() -> None:
    user = _user()
    assert user.visible_to(user.user_id, "member")
    assert not user.visible_to(uuid4(), "member")
    assert not user.visible_to(uuid4(), "seller")
    assert user.visible_to(uuid4(), "admin")


def test_unknown_email_costs_the_same_hash_as_a_real_account() -> None:
    import base64
    import os

    from passlib.hash import bcrypt_sha256

    from kernel.crypto import FieldCipher
    from kernel.settings import Settings
    from workers.users.handlers import UserHandlers
    from workers.users.keys import KeyRing

    settings = Settings(bcrypt_rounds=5)
    cipher = FieldCipher.from_config(f"k:{base64.b64encode(os.urandom(32)).decode()}", "k")
    handlers = UserHandlers(cipher, KeyRing(cipher, settings), settings)
    dummy = bcrypt_sha256.from_string(handlers._dummy_hash)
    real = bcrypt_sha256.from_string(handlers._hasher.hash("any password"))
    assert (dummy.ident, dummy.rounds, dummy.version) == (real.ident, real.rounds, real.version) == (real.ident, 5, 2)


def _token(**kw: object) -> RefreshToken:
    base = RefreshToken(
        family_id=uuid4(), user_id=uuid4(), expires_at=NOW + timedelta(days=1), used_at=None, revoked_at=None
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_a_fresh_refresh_token_rotates() -> None:
    assert refresh_verdict(_token(), NOW) == "rotate"


def test_a_used_refresh_token_is_reuse() -> None:
    assert refresh_verdict(_token(used_at=NOW), NOW) == "reuse"


def test_revoked_expired_or_unknown_tokens_are_invalid() -> None:
    assert refresh_verdict(None, NOW) == "invalid"
    assert refresh_verdict(_token(revoked_at=NOW), NOW) == "invalid"
    assert refresh_verdict(_token(used_at=NOW, revoked_at=NOW), NOW) == "invalid"  # family already ended
    assert refresh_verdict(_token(expires_at=NOW), NOW) == "invalid"


# Deciding an update (workers/users/model.py `decide_update`)


def test_an_update_says_what_changed_and_announces_it() -> None:
    user = _user()
    later = NOW + timedelta(minutes=1)

    decided = decide_update(user, {"username": "Alicia"}, user.user_id, "member", later)

    assert decided.changed == ("username",) and decided.user.username == "Alicia"
    assert decided.new_username == "Alicia"  # to be checked free before saving
    assert decided.event is not None and decided.event.changed == ("username",)
    assert decided.event.username == "Alicia"  # what the orders service's customers read model keeps
    assert (decided.revoke, decided.audit) == (None, None)  # a member's own edit: no audit line


def test_an_update_that_changes_nothing_announces_nothing() -> None:
    user = _user()
    decided = decide_update(user, {"username": "ALICE"}, user.user_id, "member", NOW)
    assert decided.new_username is None  # only the case differs: the same username
    unchanged = decide_update(user, {"username": "alice"}, user.user_id, "member", NOW)
    assert (unchanged.changed, unchanged.event) == ((), None)


def test_an_admin_disabling_an_account_ends_its_sessions_and_is_audited() -> None:
    user, admin_id = _user(), uuid4()

    decided = decide_update(user, {"disabled": True}, admin_id, "admin", NOW)

    assert decided.user.disabled and decided.revoke == "disabled"
    assert decided.event is not None and decided.event.username is None  # the username did not change
    assert decided.audit == {"changed": ["disabled"], "disabled": True}
    promoted = decide_update(user, {"role": "seller"}, admin_id, "admin", NOW)
    assert promoted.revoke == "role_changed"
    assert promoted.audit == {"changed": ["role"], "role": {"from": "member", "to": "seller"}}


def test_refused_updates_say_why() -> None:
    admin = _user(role="admin")
    with pytest.raises(UpdateRefused) as lockout:
        decide_update(admin, {"role": "member"}, admin.user_id, "admin", NOW)
    assert lockout.value.code == "conflict"
    with pytest.raises(UpdateRefused) as removed:
        decide_update(admin, {"username": None}, admin.user_id, "admin", NOW)
    assert (removed.value.code, removed.value.field) == ("validation_failed", "username")
    with pytest.raises(UpdateRefused) as not_admin:
        refuse_admin_fields({"role": "admin"}, "member")
    assert not_admin.value.code == "forbidden"
