"""The notification rules, without I/O (workers/notifications/model.py), and the delay tiers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.catalog import VariantDetails
from contracts.notifications import Category, NotificationPreferences
from contracts.orders import OrderTaxLine
from contracts.topology import DELAY_TIERS, delay_tier
from contracts.users import Contact
from workers.notifications.model import (
    ORDER_WAIT,
    VARIANT_WAIT,
    KnownVariant,
    OrderAmounts,
    OrderLine,
    after_transient_failure,
    channels,
    is_new_sign_in,
    listed_variants,
    low_stock_variables,
    money,
    order_variables,
    order_wait_over,
    shipment_variables,
    skip_reason,
    variant_wait_over,
    when,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NONE = NotificationPreferences()
ALL = NotificationPreferences(sms_orders=True, sms_security=True, marketing_email=True, marketing_sms=True)


def _contact(*, erased: bool = False, disabled: bool = False) -> Contact:
    return Contact(
        user_id=uuid.uuid4(), email="ada@example.com", username="ada", phone=None, erased=erased, disabled=disabled
    )


@pytest.mark.parametrize("category", ["account", "orders", "security", "seller"])
def test_transactional_mail_goes_whatever_the_preferences(category: Category) -> None:
    assert channels(category, NONE, phone_ok=True, has_sms_template=True) == ("email",)


def test_sms_needs_consent_for_the_category_a_valid_phone_and_a_template() -> None:
    orders_only = NotificationPreferences(sms_orders=True)
    assert channels("orders", orders_only, phone_ok=True, has_sms_template=True) == ("email", "sms")
    assert channels("security", orders_only, phone_ok=True, has_sms_template=True) == ("email",)
    assert channels("orders", orders_only, phone_ok=False, has_sms_template=True) == ("email",)
    assert channels("orders", orders_only, phone_ok=True, has_sms_template=False) == ("email",)
    assert channels("security", NotificationPreferences(sms_security=True), phone_ok=True, has_sms_template=True) == (
        "email",
        "sms",
    )


@pytest.mark.parametrize("category", ["account", "seller"])
def test_account_and_seller_notices_never_go_by_sms(category: Category) -> None:
    assert channels(category, ALL, phone_ok=True, has_sms_template=True) == ("email",)


def test_marketing_only_with_consent() -> None:
    assert channels("marketing", NONE, phone_ok=True, has_sms_template=True) == ()
    assert channels(
        "marketing", NotificationPreferences(marketing_email=True), phone_ok=True, has_sms_template=True
    ) == ("email",)
    assert channels("marketing", NotificationPreferences(marketing_sms=True), phone_ok=True, has_sms_template=True) == (
        "sms",
    )
    # Consent to order texts is not consent to marketing texts.
    assert channels("marketing", NotificationPreferences(sms_orders=True), phone_ok=True, has_sms_template=True) == ()


def test_erased_disabled_and_unknown_recipients_are_skipped() -> None:
    assert skip_reason(_contact()) is None
    assert skip_reason(_contact(erased=True)) == "erased"
    assert skip_reason(_contact(disabled=True)) == "disabled"
    assert skip_reason(None) == "unknown user"


def test_a_sign_in_is_news_only_from_somewhere_new_on_an_account_seen_before() -> None:
    home, cafe = "a" * 64, "b" * 64
    assert not is_new_sign_in(set(), home)  # the first sign-in after registering
    assert not is_new_sign_in({home}, home)
    assert is_new_sign_in({home}, cafe)
    assert not is_new_sign_in({home}, None)  # no fingerprint: nothing to compare


def test_transient_failures_back_off_exponentially_then_give_up() -> None:
    waits = [after_transient_failure(n, max_attempts=6, base=1.0, cap=10.0) for n in range(1, 7)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 10.0, "give_up"]


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=1, max_value=50))
def test_backoff_is_bounded_and_attempts_are_bounded(attempts: int, max_attempts: int) -> None:
    retry = after_transient_failure(attempts, max_attempts=max_attempts, base=0.5, cap=300.0)
    if attempts >= max_attempts:
        assert retry == "give_up"
    else:
        assert retry != "give_up" and 0.5 <= retry <= 300.0


@given(st.floats(min_value=0, max_value=10_000, allow_nan=False))
def test_a_delay_waits_at_least_as_asked_up_to_the_longest_tier(seconds: float) -> None:
    tier = delay_tier(seconds)
    assert tier in DELAY_TIERS
    assert tier >= seconds or tier == DELAY_TIERS[-1]
    assert all(t < seconds for t in DELAY_TIERS if t < tier)  # the shortest that is long enough


def test_order_events_wait_a_little_for_the_placement() -> None:
    assert not order_wait_over(NOW, NOW + timedelta(seconds=5))
    assert order_wait_over(NOW, NOW + ORDER_WAIT)


def test_a_listing_names_its_variants_or_its_default_one() -> None:
    product_id, m_red = uuid.uuid4(), uuid.uuid4()
    listed = [VariantDetails(variant_id=m_red, sku="TEE-M-RED", label="M / Red", price_minor=2000)]
    assert listed_variants(product_id, listed) == {m_red: KnownVariant("M / Red", "TEE-M-RED")}
    # From an older publisher, without variants: the default one, the product's id.
    assert listed_variants(product_id, []) == {product_id: KnownVariant("", None)}


def test_a_low_stock_notice_waits_a_little_for_its_variant() -> None:
    variant_id, known = uuid.uuid4(), KnownVariant("M / Red", None)
    assert variant_wait_over(variant_id, known, NOW, NOW)
    assert not variant_wait_over(variant_id, None, NOW, NOW + timedelta(seconds=5))
    assert variant_wait_over(variant_id, None, NOW, NOW + VARIANT_WAIT)
    assert variant_wait_over(None, None, NOW, NOW)  # an older publisher's: the default variant


def test_low_stock_variables_name_the_variant() -> None:
    product_id, variant_id = uuid.uuid4(), uuid.uuid4()

    def variables(variant_id: uuid.UUID | None, name: str | None, known: KnownVariant | None) -> dict[str, object]:
        return low_stock_variables(product_id, variant_id, name, known, available=2, threshold=3)

    assert variables(variant_id, "Tee", KnownVariant("M / Red", "TEE-M-RED")) == {
        "product_name": "Tee",
        "variant_label": "M / Red",
        "sku": "TEE-M-RED",
        "available": 2,
        "threshold": 3,
    }
    assert variables(product_id, "Mug", KnownVariant("", None)) == {
        "product_name": "Mug",
        "variant_label": "",
        "sku": "",
        "available": 2,
        "threshold": 3,
    }
    # Never heard of here: a default variant needs no label; another is named by its id.
    assert variables(product_id, None, None)["product_name"] == f"product {product_id}"
    assert variables(product_id, "Mug", None)["variant_label"] == ""
    assert variables(None, "Mug", None)["variant_label"] == ""
    assert variables(variant_id, "Tee", None)["variant_label"] == f"variant {variant_id}"


def test_order_variables() -> None:
    order_id, lamp, pen = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    lines = [OrderLine(lamp, 2, "19.99"), OrderLine(pen, 1, "4.99")]
    variables = order_variables(order_id, 4497, "USD", lines, {lamp: "Desk lamp"}, shop_url="https://shop.example/")
    assert variables["order_id"] == str(order_id)
    assert variables["total"] == "$44.97"
    assert variables["order_url"] == f"https://shop.example/orders/{order_id}"
    assert variables["items"] == [
        {"name": "Desk lamp", "quantity": 2, "price": "$19.99"},
        {"name": f"item {str(pen)[:8]}", "quantity": 1, "price": "$4.99"},  # a product never seen here
    ]


def test_order_variables_say_what_the_total_is_made_of() -> None:
    # The voucher test's order (tests/integration/test_vouchers.py): GST added on top.
    amounts = OrderAmounts(
        subtotal_minor=9242,
        discount_minor=1275,
        voucher_code="SPRING15",
        shipping_minor=990,
        shipping_method="Australia Post",
        tax_minor=897,
        taxes=(OrderTaxLine(name="GST", rate="10", amount="8.97"),),
    )
    variables = order_variables(uuid.uuid4(), 9854, "AUD", [], {}, shop_url="https://s.example", amounts=amounts)
    assert {
        k: variables[k] for k in ("subtotal", "discount", "voucher_code", "shipping", "shipping_method", "tax")
    } == {
        "subtotal": "A$92.42",
        "discount": "A$12.75",
        "voucher_code": "SPRING15",
        "shipping": "A$9.90",
        "shipping_method": "Australia Post",
        "tax": "A$8.97",
    }
    assert variables["tax_lines"] == [{"name": "GST", "rate": "10", "amount": "A$8.97"}]
    assert variables["prices_include_tax"] is False and variables["total"] == "A$98.54"


def test_what_an_order_lacks_is_empty_and_free_shipping_is_still_named() -> None:
    free = OrderAmounts(subtotal_minor=25000, shipping_minor=0, shipping_method="Post", prices_include_tax=True)
    variables = order_variables(uuid.uuid4(), 25000, "EUR", [], {}, shop_url="https://s.example", amounts=free)
    assert (variables["subtotal"], variables["shipping"], variables["shipping_method"]) == ("€250.00", "€0.00", "Post")
    assert (variables["discount"], variables["voucher_code"], variables["tax"], variables["tax_lines"]) == (
        "",
        "",
        "",
        [],
    )
    assert variables["prices_include_tax"] is True


@pytest.mark.parametrize("amounts", [None, OrderAmounts(), OrderAmounts(subtotal_minor=0, shipping_method="Post")])
def test_an_order_placed_before_its_amounts_were_announced_has_none(amounts: OrderAmounts | None) -> None:
    variables = order_variables(uuid.uuid4(), 1999, "USD", [], {}, shop_url="https://s.example", amounts=amounts)
    empty = {"subtotal", "discount", "voucher_code", "shipping", "shipping_method", "tax"}
    assert {k: variables[k] for k in empty} == dict.fromkeys(empty, "")
    assert (variables["tax_lines"], variables["prices_include_tax"], variables["total"]) == ([], False, "$19.99")


def test_money_and_time_in_words() -> None:
    assert money(1500, "JPY") == "¥1,500"
    assert money(1999, "EUR") == "€19.99"
    assert when(datetime(2026, 3, 14, 10, 26, tzinfo=UTC) + timedelta()) == "2026-03-14 10:26 UTC"


def test_a_parcel_links_to_its_carriers_tracking_page_only_when_one_is_known() -> None:
    assert shipment_variables("UPS", "1Z 999") == {
        "carrier": "UPS",
        "tracking_number": "1Z 999",
        "tracking_url": "https://www.ups.com/track?tracknum=1Z%20999",
    }
    assert shipment_variables(" fedex ", "12&34")["tracking_url"] == "https://www.fedex.com/fedextrack/?trknbr=12%2634"
    assert shipment_variables("PostNL", "3SABC")["tracking_url"] == ""  # no guessed links
    assert shipment_variables("UPS", None) == {"carrier": "UPS", "tracking_number": "", "tracking_url": ""}
    assert shipment_variables(None, None) == {"carrier": "", "tracking_number": "", "tracking_url": ""}
