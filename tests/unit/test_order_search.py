"""What the dashboard's search text means (workers/orders/orders/search.py) and the blind index."""

from __future__ import annotations

from uuid import UUID

from kernel.crypto import FieldCipher, new_key
from workers.orders.customers.repository import email_indexes, normal_email
from workers.orders.orders.search import OrderSearch, like_pattern, order_search


def test_an_order_reference_is_a_range_of_ids() -> None:
    search = order_search("0A1B2C3D")
    assert search.order_ids == (
        UUID("0a1b2c3d-0000-0000-0000-000000000000"),
        UUID("0a1b2c3d-ffff-ffff-ffff-ffffffffffff"),
    )
    assert search.name == "0A1B2C3D"  # a name may look like hex too
    whole = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    assert order_search(whole).order_ids == (UUID(whole), UUID(whole))
    assert order_search("0a1b2c3").order_ids is None  # too short to be a reference
    assert order_search("anna").order_ids is None


def test_an_email_is_matched_whole_and_a_name_in_part() -> None:
    assert order_search(" Ann@Example.com ") == OrderSearch(email="Ann@Example.com")
    assert order_search("ann") == OrderSearch(name="ann")
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


def test_the_blind_index_ignores_case_and_spaces_and_survives_a_rotation() -> None:
    key = new_key()
    old = FieldCipher.from_config(f"k1:{key}", "k1")
    assert normal_email(" Ann@Example.COM ") == "ann@example.com"
    (digest,) = email_indexes(old, "ann@example.com")
    assert email_indexes(old, " ANN@example.com") == [digest]
    assert email_indexes(old, "anne@example.com") != [digest]
    assert old.blind_index("x", "a").ciphertext != old.blind_index("x", "b").ciphertext  # bound to its purpose
    rotated = FieldCipher.from_config(f"k1:{key},k2:{new_key()}", "k2")  # the old key, and a new current one
    assert digest in email_indexes(rotated, "ann@example.com")
    assert rotated.blind_index("ann@example.com", "orders.customer_email").key_id == "k2"
    assert FieldCipher.from_config(f"k1:{new_key()}", "k1").blind_indexes("ann@example.com", "p") != [digest]
