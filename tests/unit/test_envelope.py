from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.envelope import Envelope, EnvelopeError


def test_headers_round_trip() -> None:
    env = Envelope.new(correlation_id="req-1", causation_id="m-0", authorization="Bearer t")
    back = Envelope.from_message(env.to_headers())
    assert back == env


def test_amqp_properties_are_a_fallback_for_partners() -> None:
    mid = uuid4()
    env = Envelope.from_message({}, message_id=str(mid), correlation_id="c-1")
    assert env.message_id == mid
    assert env.correlation_id == "c-1"


def test_correlation_defaults_to_the_message_id() -> None:
    mid = str(uuid4())
    assert Envelope.from_message({"message_id": mid}).correlation_id == mid


@pytest.mark.parametrize("headers", [{}, {"message_id": "not-a-uuid"}, {"message_id": 42}])
def test_a_message_that_cannot_be_deduplicated_is_refused(headers: dict[str, object]) -> None:
    with pytest.raises(EnvelopeError):
        Envelope.from_message(headers)


def test_a_header_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(EnvelopeError):
        Envelope.from_message({"message_id": str(uuid4()), "authorization": b"\xff\xfe"})


def test_byte_headers_are_decoded() -> None:
    env = Envelope.from_message({"message_id": str(uuid4()), "authorization": b"Bearer x"})
    assert env.authorization == "Bearer x"


@given(
    correlation_id=st.text(alphabet=st.characters(codec="ascii", exclude_categories=("Cc",)), min_size=1, max_size=64),
    authorization=st.none() | st.text(alphabet="abcdefghijklmnopqrstuvwxyz.-_", min_size=1, max_size=200),
)
def test_any_envelope_survives_the_trip_through_headers(correlation_id: str, authorization: str | None) -> None:
    env = Envelope.new(correlation_id=correlation_id, causation_id=str(uuid4()), authorization=authorization)
    assert Envelope.from_message(env.to_headers()) == env
