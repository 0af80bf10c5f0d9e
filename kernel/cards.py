"""Spotting card numbers in request and message bodies, so Agora never receives one.

Clients pay with a PSP token (`tok_visa`); a body that holds anything shaped like a
primary account number is refused (422 at the edge, dead-lettered on the broker) before
it can reach a log line or a table. "Shaped like" is what card-data scanners use:
13 to 19 digits, written together or in groups split by up to three separators (spaces,
non-breaking spaces, tabs, newlines, dashes, dots, slashes, underscores), that pass the
Luhn check; one number with a decimal point (`813891503150.09`) is an amount, not a
card. Within a longer run of groups ("4111 1111 1111 1111 2030") every
window of whole groups is tried. Not flagged: digit runs led by `+` (E.164 phone
numbers) or touching a letter (inside a hex digest or base64 secret; `tok_4111...` is
still caught), UUIDs, and anything with fewer than 13 or, written together, more than 19
digits. About one random 13-19 digit number in ten passes Luhn, so a client must not
send long bare numeric ids; Agora's ids are UUIDs and its prices are decimal strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

MIN_DIGITS = 13
MAX_DIGITS = 19

# What people put between the groups of a card number: `4111 1111`, `4111-1111`,
# `4111.1111`, `4111/1111`, `4111_1111`, a non-breaking or doubled space, a line break.
_SEPARATOR = r"[\s\u00a0\u2007\u202f._/-]{1,3}"
# A run of digit groups; `\+?` lets a phone number's leading plus be seen and skipped.
_RUN = re.compile(rf"\+?\d+(?:{_SEPARATOR}\d+)*")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# JSON nesting deeper than this is refused by the caller's parser long before.
_MAX_DEPTH = 64


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of digits."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _candidates(text: str) -> Iterator[str]:
    text = _UUID.sub(" ", text)
    for run in _RUN.finditer(text):
        if run.group().startswith("+"):
            continue
        # Digits inside a word are part of something else (a hex digest, a base64 secret).
        if _letter_at(text, run.start() - 1) or _letter_at(text, run.end()):
            continue
        groups = re.split(_SEPARATOR, run.group())
        if len(groups) == 2 and run.group()[len(groups[0])] == ".":
            continue  # a decimal number (a price, an amount), not two groups of a card number
        if len(groups) == 1:
            if MIN_DIGITS <= len(groups[0]) <= MAX_DIGITS:
                yield groups[0]
            continue
        for start in range(len(groups)):
            digits = ""
            for group in groups[start:]:
                digits += group
                if len(digits) > MAX_DIGITS:
                    break
                if len(digits) >= MIN_DIGITS:
                    yield digits


def _letter_at(text: str, index: int) -> bool:
    return 0 <= index < len(text) and text[index].isascii() and text[index].isalpha()


def text_has_card_number(text: str) -> bool:
    return any(luhn_valid(digits) for digits in _candidates(text))


def contains_card_number(value: Any, _depth: int = 0) -> bool:
    """True if a parsed JSON value holds a card-shaped number anywhere: in a string, a
    number, or an object key, at any depth."""
    if _depth > _MAX_DEPTH:
        return False
    if isinstance(value, str):
        return text_has_card_number(value)
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return text_has_card_number(str(abs(value)))
    if isinstance(value, float):
        return value.is_integer() and abs(value) < 1e20 and text_has_card_number(str(int(abs(value))))
    if isinstance(value, dict):
        return any(
            text_has_card_number(str(key)) or contains_card_number(item, _depth + 1) for key, item in value.items()
        )
    if isinstance(value, list | tuple):
        return any(contains_card_number(item, _depth + 1) for item in value)
    return False
