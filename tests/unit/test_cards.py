"""Card numbers are spotted in any shape a client might send them, and nothing else is."""

from __future__ import annotations

import json
import uuid

from hypothesis import given
from hypothesis import strategies as st

from kernel.cards import contains_card_number, luhn_valid, text_has_card_number


def _with_check_digit(body: str) -> str:
    """`body` plus the digit that makes it pass Luhn."""
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


card_numbers = st.integers(min_value=13, max_value=19).flatmap(
    lambda n: st.text("0123456789", min_size=n - 1, max_size=n - 1).map(_with_check_digit)
)


def _grouped(digits: str, sizes: list[int], separator: str) -> str:
    groups, rest = [], digits
    for size in sizes:
        if not rest:
            break
        groups.append(rest[:size])
        rest = rest[size:]
    if rest:
        groups.append(rest)
    return separator.join(groups)


@st.composite
def written_cards(draw: st.DrawFn) -> str:
    digits = draw(card_numbers)
    # The review found `.` `/` `_`, non-breaking and double spaces and line breaks let through.
    separator = draw(st.sampled_from(["", " ", "-", ".", "/", "_", "\u00a0", "  ", "\n", "\r\n", " - "]))
    sizes = draw(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=8))
    written = _grouped(digits, sizes, separator) if separator else digits
    if separator == "." and written.count(".") == 1:
        return written.replace(".", " ")  # one dot makes a decimal amount, which is not a card
    return written


surroundings = st.sampled_from(["", "card ", "my card: ", "pay with ", "(", "tok_", '"'])
endings = st.sampled_from(["", " please", " exp 12/30", ")", ".", " 123"])


@given(written_cards(), surroundings, endings)
def test_a_luhn_valid_number_is_found_however_it_is_written(card: str, before: str, after: str) -> None:
    assert text_has_card_number(before + card + after)


@given(written_cards(), st.sampled_from(["payment_token", "note", "address"]), st.integers(0, 3))
def test_it_is_found_at_any_depth_of_a_json_body(card: str, key: str, depth: int) -> None:
    body: object = {key: card}
    for _ in range(depth):
        body = {"items": [{"x": 1}, body]}
    assert contains_card_number(json.loads(json.dumps(body)))


@given(card_numbers.filter(lambda digits: digits[0] != "0"))
def test_a_card_number_sent_as_a_json_number_is_found(digits: str) -> None:
    assert contains_card_number(json.loads(f'{{"n": {int(digits)}}}'))


@given(card_numbers)
def test_a_card_number_as_an_object_key_is_found(digits: str) -> None:
    assert contains_card_number({digits: "x"})


def test_well_known_test_cards() -> None:
    for card in ("4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "6011111111111117"):
        assert text_has_card_number(card), card
    assert text_has_card_number("4111 1111 1111 1111 2030")  # a card followed by a year


@given(st.uuids())
def test_uuids_are_not_cards(value: uuid.UUID) -> None:
    assert not contains_card_number({"id": str(value), "hex": value.hex.upper()})


@given(st.integers(min_value=0, max_value=10**12 - 1), st.integers(min_value=0, max_value=99))
def test_prices_and_small_numbers_are_not_cards(units: int, cents: int) -> None:
    assert not contains_card_number({"price": f"{units}.{cents:02d}", "amount": units, "total": units + cents / 100})


@given(
    st.text("0123456789", min_size=1, max_size=3),
    st.lists(st.text("0123456789", min_size=2, max_size=4), min_size=1, max_size=4),
    st.sampled_from([" ", "-", ""]),
)
def test_international_phone_numbers_are_not_cards(country: str, groups: list[str], separator: str) -> None:
    number = "+" + country + (separator or "") + separator.join(groups)
    assert not contains_card_number({"phone": number})


@given(st.text("0123456789", min_size=3, max_size=12))
def test_numbers_under_thirteen_digits_are_not_cards(digits: str) -> None:
    assert not text_has_card_number(digits)


@given(st.text("0123456789", min_size=20, max_size=40))
def test_an_unbroken_run_of_more_than_nineteen_digits_is_not_a_card(digits: str) -> None:
    assert not text_has_card_number(digits)


def test_ordinary_values_pass() -> None:
    body = {
        "payment_token": "tok_visa",
        "shipping_address": {"line1": "221B Baker Street", "postcode": "NW1 6XE", "phone": "+44 20 7946 0958"},
        "items": [{"product_id": str(uuid.uuid4()), "quantity": 3}],
        "at": "2026-11-25T10:00:00.123456+00:00",
        "digest": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "price": "19.99",
        "flag": True,
        "nothing": None,
    }
    assert not contains_card_number(body)


def test_a_number_that_fails_luhn_passes() -> None:
    assert not text_has_card_number("4111 1111 1111 1112")
