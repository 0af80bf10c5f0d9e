"""The notification template catalogue and its sandboxed rendering."""

from __future__ import annotations

import pytest

from contracts.notifications import Channel, TemplateBody
from workers.notifications.templates import (
    DEFAULTS,
    MAX_SMS,
    SAMPLE,
    VARIABLES,
    TemplateError,
    render,
    validate,
)

EMAIL_ONLY = {"welcome", "payment_refunded", "return_approved", "low_stock"}


def test_the_catalogue_has_every_template() -> None:
    assert set(VARIABLES) == {key for key, _ in DEFAULTS}
    sms = {key for key, channel in DEFAULTS if channel == "sms"}
    assert sms == set(VARIABLES) - EMAIL_ONLY
    assert all((key, "email") in DEFAULTS for key in VARIABLES)


@pytest.mark.parametrize("ident", sorted(DEFAULTS), ids=lambda ident: f"{ident[1]}/{ident[0]}")
def test_every_default_renders_with_its_sample(ident: tuple[str, Channel]) -> None:
    spec = DEFAULTS[ident]
    rendered = validate(spec.key, spec.channel, spec.body)
    assert "{{" not in rendered.text and "{%" not in rendered.text
    assert str(SAMPLE["name"]) in rendered.text or spec.channel == "sms"
    if spec.channel == "email":
        assert rendered.subject and "\n" not in rendered.subject
        assert rendered.html is not None and rendered.html.startswith("<div")
    else:
        assert rendered.subject is None and rendered.html is None
        assert len(rendered.text) <= MAX_SMS
    # The sample is exactly what the key provides: a template cannot lean on more.
    assert set(spec.sample) == set(spec.variables) == set(VARIABLES[spec.key])


def test_html_is_autoescaped_and_text_is_not() -> None:
    body = TemplateBody(subject="Hi {{ name }}", text="Hi {{ name }}", html="<p>Hi {{ name }}</p>")
    rendered = render(body, {"name": "<script>alert(1)</script>"})
    assert rendered.html == "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert rendered.text == "Hi <script>alert(1)</script>"


def test_a_subject_is_one_line() -> None:
    rendered = render(TemplateBody(subject="Hi {{ name }}", text="x"), {"name": "ada\r\nBcc: all@example.com"})
    assert rendered.subject == "Hi ada Bcc: all@example.com"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ name.__init__.__globals__ }}",
        "{{ items.append(1) }}",  # immutable: the variables cannot be changed either
        "{{ items.pop() }}",
    ],
)
def test_the_sandbox_refuses_python_internals(source: str) -> None:
    with pytest.raises(TemplateError, match="unsafe") as caught:
        render(TemplateBody(text=source), {"name": "ada", "items": [1]})
    assert caught.value.part == "text"


def test_an_undefined_variable_is_an_error() -> None:
    with pytest.raises(TemplateError, match="'nickname' is undefined") as caught:
        render(TemplateBody(subject="x", text="x", html="<p>{{ nickname }}</p>"), {"name": "ada"})
    assert caught.value.part == "html"


@pytest.mark.parametrize(
    ("body", "part", "message"),
    [
        (TemplateBody(subject="Hi", text="{% if name %}unclosed"), "text", "line 1"),
        (TemplateBody(subject="Hi {{ name", text="x"), "subject", "line 1"),
        (TemplateBody(subject="Hi", text="{{ 1 / 0 }}"), "text", "ZeroDivisionError"),
        # `welcome` has no order: its sample has no `total`.
        (TemplateBody(subject="Hi", text="Your total: {{ total }}"), "text", "'total' is undefined"),
        (TemplateBody(text="Hi {{ name }}"), "subject", "need a subject"),
        (TemplateBody(subject="  ", text="Hi {{ name }}"), "subject", "need a subject"),
        (TemplateBody(subject="{{ '' }}", text="Hi {{ name }}"), "subject", "renders empty"),
    ],
)
def test_validate_names_the_part_that_fails(body: TemplateBody, part: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message) as caught:
        validate("welcome", "email", body)
    assert caught.value.part == part


def test_sms_templates_are_text_only_and_short() -> None:
    with pytest.raises(TemplateError) as caught:
        validate("password_changed", "sms", TemplateBody(subject="Hi", text="x"))
    assert caught.value.part == "subject"
    with pytest.raises(TemplateError) as caught:
        validate("password_changed", "sms", TemplateBody(text="x", html="<p>x</p>"))
    assert caught.value.part == "html"
    with pytest.raises(TemplateError, match="at most 1600") as caught:
        validate("password_changed", "sms", TemplateBody(text="{% for i in range(300) %}{{ name }} hi {% endfor %}"))
    assert caught.value.part == "text"


def test_order_variables_render_lists() -> None:
    body = TemplateBody(
        subject="Order",
        text="{% for item in items %}{{ item.name }}={{ item.quantity }}@{{ item.price }};{% endfor %}{{ total }}",
    )
    assert validate("order_confirmed", "email", body).text == ("Desk lamp=2@$19.99;Notebook=1@$4.99;$44.97")


def test_the_low_stock_email_names_the_variant_and_its_sku() -> None:
    rendered = validate("low_stock", "email", DEFAULTS[("low_stock", "email")].body)
    assert rendered.subject == "Low stock: Organic tee (M / Red)"
    assert "Organic tee (M / Red), SKU TEE-M-RED, is running low: 3 left (your alert threshold is 5)." in rendered.text
    assert rendered.html is not None and "<strong>Organic tee (M / Red)</strong>, SKU TEE-M-RED, is" in rendered.html


@pytest.mark.parametrize(
    ("sku", "sentence"),
    [("", "Desk lamp is running low: 3 left"), ("LAMP-1", "Desk lamp, SKU LAMP-1, is running low: 3 left")],
)
def test_the_low_stock_email_of_a_default_variant_reads_without_a_label(sku: str, sentence: str) -> None:
    body = DEFAULTS[("low_stock", "email")].body
    rendered = render(body, {**SAMPLE, "product_name": "Desk lamp", "variant_label": "", "sku": sku})
    assert rendered.subject == "Low stock: Desk lamp"
    assert f"Hi ada,\n\n{sentence} (your alert threshold is 5)." in rendered.text
    assert rendered.html is not None and "()" not in rendered.text + rendered.html
    assert (sku == "") == ("SKU" not in rendered.text + rendered.html)


def test_a_low_stock_email_edited_before_variants_still_renders() -> None:
    """An admin's edit made when the template had no variant variables: they are extra, not required."""
    edited = TemplateBody(
        subject="Restock {{ product_name }}", text="{{ product_name }}: {{ available }} of {{ threshold }}"
    )
    assert validate("low_stock", "email", edited).text == "Organic tee: 3 of 5"


# --- the confirmation's receipt (issue 18) ---------------------------------------------------

_CONFIRMED = DEFAULTS[("order_confirmed", "email")].body
_ADDED = {
    "subtotal": "A$92.42",
    "discount": "A$12.75",
    "voucher_code": "SPRING15",
    "shipping": "A$9.90",
    "shipping_method": "Australia Post",
    "tax": "A$8.97",
    "tax_lines": [{"name": "GST", "rate": "10", "amount": "A$8.97"}],
    "prices_include_tax": False,
    "total": "A$98.54",
}


def test_the_confirmation_lists_subtotal_discount_shipping_and_added_tax_before_the_total() -> None:
    rendered = render(_CONFIRMED, {**SAMPLE, **_ADDED})
    receipt = (
        "- Notebook: 1 at $4.99 each\n"
        "Subtotal: A$92.42\n"
        "Discount (SPRING15): -A$12.75\n"
        "Shipping (Australia Post): A$9.90\n"
        "GST 10 %: A$8.97\n"
        "Total: A$98.54\n"
    )
    assert receipt in rendered.text
    html = rendered.html or ""
    for cell in ("Discount (SPRING15)", "-A$12.75", "Shipping (Australia Post)", "GST 10 %", "A$8.97", "A$98.54"):
        assert cell in html, cell
    assert html.index("GST 10 %") < html.index(">Total<")


def test_tax_in_the_prices_is_said_beside_the_total_per_rate() -> None:
    included = {
        **_ADDED,
        "prices_include_tax": True,
        "tax_lines": [
            {"name": "VAT", "rate": "20", "amount": "£8.17"},
            {"name": "VAT", "rate": "5", "amount": "£0.50"},
        ],
        "total": "£49.00",
    }
    rendered = render(_CONFIRMED, {**SAMPLE, **included})
    assert "Total: £49.00 (includes VAT 20 %: £8.17, VAT 5 %: £0.50)\n" in rendered.text
    assert "\nVAT 20 %" not in rendered.text  # not a line of its own, as if added
    html = rendered.html or ""
    assert "includes VAT 20 %" in html and html.index(">Total<") < html.index("includes VAT 20 %")


def test_a_confirmation_without_discount_shipping_or_tax_has_no_such_lines() -> None:
    bare = {**_ADDED, "discount": "", "voucher_code": "", "shipping": "", "shipping_method": "", "tax": ""}
    rendered = render(_CONFIRMED, {**SAMPLE, **bare, "tax_lines": []})
    assert "Subtotal: A$92.42\nTotal: A$98.54\n" in rendered.text
    for word in ("Discount", "Shipping", "GST", "includes"):
        assert word not in rendered.text + (rendered.html or ""), word


def test_an_order_placed_before_the_receipt_reads_as_before() -> None:
    """No amounts known (all empty): the items and the total, as the email said before."""
    unknown = dict.fromkeys(("subtotal", "discount", "voucher_code", "shipping", "shipping_method", "tax"), "")
    rendered = render(_CONFIRMED, {**SAMPLE, **unknown, "tax_lines": [], "prices_include_tax": False})
    assert "- Notebook: 1 at $4.99 each\nTotal: $44.97\n\nSee your order" in rendered.text
    assert "Subtotal" not in rendered.text + (rendered.html or "")


def test_the_sample_receipt_adds_up() -> None:
    """The preview an admin sees: every part of the receipt, and sums that hold."""
    rendered = validate("order_confirmed", "email", _CONFIRMED)
    assert (
        "Subtotal: $44.97\nDiscount (WELCOME10): -$4.50\nShipping (Standard): $4.50\n"
        "Total: $44.97 (includes VAT 20 %: $7.50)" in rendered.text
    )
