import pytest
from pydantic import ValidationError

from contracts.errors import field_errors
from contracts.registry import COMMANDS, EVENTS
from contracts.topology import dead_letter_queue
from contracts.users import RegisterUser, UpdateUser

GOOD = {"email": "a@example.com", "username": "alice", "password": "correct horse battery"}


def _fields(body: dict[str, object]) -> set[str]:
    with pytest.raises(ValidationError) as info:
        RegisterUser.model_validate(body)
    return {e.field for e in field_errors(info.value)}


def test_a_good_registration_validates() -> None:
    RegisterUser.model_validate({**GOOD, "phone": "+14155550101"})


def test_unknown_fields_like_role_are_refused_and_listed() -> None:
    assert _fields({**GOOD, "role": "admin"}) == {"role"}


def test_every_bad_field_is_listed() -> None:
    assert _fields({"email": "nope", "username": "a", "password": "short", "phone": "12345"}) == {
        "email",
        "username",
        "password",
        "phone",
    }


@pytest.mark.parametrize("phone", ["+1", "0044123456789", "+44 1234", "+1234567890123456"])
def test_phone_must_be_e164(phone: str) -> None:
    assert _fields({**GOOD, "phone": phone}) == {"phone"}


@pytest.mark.parametrize(
    ("written", "kept"),
    [("+1 415 555 2671", "+14155552671"), ("+1 (415) 555-2671", "+14155552671"), ("+33 6 12 34 56 78", "+33612345678")],
)
def test_a_phone_written_as_people_write_it_is_kept_in_e164(written: str, kept: str) -> None:
    assert RegisterUser.model_validate({**GOOD, "phone": written}).phone == kept


def test_address_country_is_iso_alpha2() -> None:
    bad = {"line1": "x", "city": "y", "postal_code": "1", "country": "USA"}
    assert _fields({**GOOD, "address": bad}) == {"address.country"}


def test_partial_update_remembers_which_fields_were_sent() -> None:
    cmd = UpdateUser.model_validate({"user_id": "6c0b8a40-8d0c-4a56-9a8e-3a4f3f0e0a01", "phone": None})
    assert cmd.model_fields_set == {"user_id", "phone"}


def test_routing_keys_follow_the_convention_and_are_unique() -> None:
    keys = [s.routing_key for s in (*COMMANDS, *EVENTS)]
    assert len(keys) == len(set(keys))
    for key in keys:
        service, name, version = key.split(".")
        assert service and name and version.startswith("v")
    assert all(c.queue.startswith(f"{c.service}.") for c in COMMANDS)
    assert dead_letter_queue("users.register_user_v1") == "users.register_user_v1.dlq"
