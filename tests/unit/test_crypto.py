import base64
import os

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st

from kernel.crypto import FieldCipher, KeyConfigError, Sealed


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_seal_and_open() -> None:
    cipher = FieldCipher.from_config(f"k1:{_key()}", "k1")
    sealed = cipher.seal("+14155550101", "users.phone:1")
    assert "+1415" not in sealed.ciphertext
    assert sealed.key_id == "k1"
    assert cipher.open(sealed, "users.phone:1") == "+14155550101"


def test_same_plaintext_gives_different_ciphertexts() -> None:
    cipher = FieldCipher.from_config(f"k1:{_key()}", "k1")
    assert cipher.seal("x", "c").ciphertext != cipher.seal("x", "c").ciphertext


def test_a_value_moved_to_another_row_does_not_decrypt() -> None:
    cipher = FieldCipher.from_config(f"k1:{_key()}", "k1")
    sealed = cipher.seal("secret", "users.phone:alice")
    with pytest.raises(InvalidTag):
        cipher.open(sealed, "users.phone:mallory")


def test_rotation_keeps_old_values_readable() -> None:
    old, new = _key(), _key()
    before = FieldCipher.from_config(f"k1:{old}", "k1").seal("v", "c")
    after = FieldCipher.from_config(f"k1:{old},k2:{new}", "k2")
    assert after.open(before, "c") == "v"
    assert after.seal("v", "c").key_id == "k2"


def test_a_retired_key_is_reported_not_guessed() -> None:
    cipher = FieldCipher.from_config(f"k2:{_key()}", "k2")
    with pytest.raises(KeyConfigError):
        cipher.open(Sealed("AAAA", "k1"), "c")


@pytest.mark.parametrize(
    ("keys", "current"),
    [("", ""), (f"k1:{base64.b64encode(b'short').decode()}", "k1"), (f"k1:{_key()}", "k9")],
)
def test_bad_key_configuration_fails_at_start(keys: str, current: str) -> None:
    with pytest.raises(KeyConfigError):
        FieldCipher.from_config(keys, current)


CIPHER = FieldCipher.from_config(f"k1:{_key()}", "k1")


@given(plaintext=st.text(max_size=500), context=st.text(min_size=1, max_size=80))
def test_any_text_round_trips_under_its_own_context_only(plaintext: str, context: str) -> None:
    sealed = CIPHER.seal(plaintext, context)
    assert CIPHER.open(sealed, context) == plaintext
    with pytest.raises(InvalidTag):
        CIPHER.open(sealed, context + "x")
