"""The template catalogue: what each notification says by default, and how it is rendered.

A template is `(key, channel)`. Its defaults live here, in code; an admin's edit is a row
in `notifications.templates` that takes their place (`load`). Templates are Jinja2 in
the immutable sandbox with `StrictUndefined`: a template can read the variables its key
provides (`VARIABLES`) and nothing of Python beyond them, and a name it does not know is
an error, not an empty string. Only the HTML part is autoescaped. Every edit is rendered
with the key's sample values before it is saved (`validate`), so a template that would
fail to send is refused at the admin's desk, not found out at 3 a.m. by a customer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from jinja2 import StrictUndefined
from jinja2 import TemplateError as JinjaError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.notifications import Category, Channel, RenderedMessage, TemplateBody
from db.tables.notifications import notification_templates

Part = Literal["subject", "text", "html"]

# Several SMS segments are joined up to this length by carriers (and Twilio's limit).
MAX_SMS = 1600

# --- the variables each template gets ----------------------------------------------------------
#
# Every template gets `name` (the recipient's username) and `shop_name`. Order
# templates also get `order_id`, `total` ("$39.98"), `items` (a list of
# {"name", "quantity", "price"}, price per unit as "$19.99", written by Babel for people) and `order_url`,
# and what the total is made of (workers/notifications/model.py `amount_variables`): `subtotal`,
# `discount` and `voucher_code`, `shipping` and `shipping_method`, `tax` (the total) and
# `tax_lines` (a list of {"name", "rate", "amount"}, rate in percent as "10"), and
# `prices_include_tax` (true or false); each "" (or empty) where there is none, and all of
# them for an order placed before they were recorded.
# `low_stock` names the variant: `variant_label` ("M / Red"; "" for a product without
# options, whose one variant has no label) and `sku` ("" when the variant has none).
# Values are strings, numbers, or lists of dicts of those.

_COMMON = ("name", "shop_name")
_ORDER = (
    *_COMMON,
    "order_id",
    "total",
    "items",
    "order_url",
    "subtotal",
    "discount",
    "voucher_code",
    "shipping",
    "shipping_method",
    "tax",
    "tax_lines",
    "prices_include_tax",
)

VARIABLES: dict[str, tuple[str, ...]] = {
    "welcome": _COMMON,
    "order_confirmed": _ORDER,
    "order_cancelled": (*_ORDER, "reason"),
    "payment_failed": (*_ORDER, "due_by"),
    "order_shipped": (*_ORDER, "carrier", "tracking_number", "tracking_url"),
    "order_delivered": _ORDER,
    "payment_refunded": (*_ORDER, "amount"),
    "return_approved": (*_ORDER, "returned", "note"),
    "low_stock": (*_COMMON, "product_name", "variant_label", "sku", "available", "threshold"),
    "password_changed": _COMMON,
    "new_sign_in": (*_COMMON, "at"),
}

# `reason` of `order_cancelled`, in words, by the order's `cancel_reason`.
CANCEL_REASONS: dict[str, str] = {
    "out_of_stock": "some items are out of stock",
    "payment_declined": "the payment was declined",
    "payment_timeout": "the payment could not be confirmed in time",
    "customer_request": "you asked us to cancel it",
    "admin": "our support team cancelled it",
}

_SAMPLE_ORDER_ID = "0b9f3c5e-7a41-4d2e-9c1a-5f6e8d7c3b21"
SAMPLE: dict[str, object] = {
    "name": "ada",
    "shop_name": "Agora",
    "order_id": _SAMPLE_ORDER_ID,
    "total": "$44.97",
    "items": [
        {"name": "Desk lamp", "quantity": 2, "price": "$19.99"},
        {"name": "Notebook", "quantity": 1, "price": "$4.99"},
    ],
    "order_url": f"https://agora.example/orders/{_SAMPLE_ORDER_ID}",
    # Adds up: 44.97 - 4.50 + 4.50, the VAT (44.97 / 6, rounded) in the prices.
    "subtotal": "$44.97",
    "discount": "$4.50",
    "voucher_code": "WELCOME10",
    "shipping": "$4.50",
    "shipping_method": "Standard",
    "tax": "$7.50",
    "tax_lines": [{"name": "VAT", "rate": "20", "amount": "$7.50"}],
    "prices_include_tax": True,
    "reason": CANCEL_REASONS["payment_declined"],
    "amount": "$44.97",
    "product_name": "Organic tee",
    "variant_label": "M / Red",
    "sku": "TEE-M-RED",
    "available": 3,
    "threshold": 5,
    "at": "2025-03-14 09:26 UTC",
    "due_by": "2025-03-14 09:41 UTC",
    "carrier": "UPS",
    "tracking_number": "1Z999AA10123456784",
    "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
    "returned": [{"name": "Desk lamp", "quantity": 1}],
    "note": "Please use the prepaid label in the parcel.",
}


@dataclass(frozen=True)
class TemplateSpec:
    """One template of the catalogue: what it is for, what it may use, and its default body."""

    key: str
    channel: Channel
    category: Category
    description: str
    body: TemplateBody
    variables: tuple[str, ...] = field(init=False)
    sample: Mapping[str, object] = field(init=False)

    def __post_init__(self) -> None:
        names = VARIABLES[self.key]
        object.__setattr__(self, "variables", names)
        object.__setattr__(self, "sample", {name: SAMPLE[name] for name in names})


# --- the default bodies ------------------------------------------------------------------------

_SIGN_OFF = "\n\nThe {{ shop_name }} team"
_LINES_TEXT = "{% for item in items %}- {{ item.name }}: {{ item.quantity }} at {{ item.price }} each\n{% endfor %}"
_ITEMS_TEXT = _LINES_TEXT + "Total: {{ total }}"
# The confirmation's receipt: the items, then what the total is made of, as the order
# shows it. Tax added on top is a line before the total; tax in the prices is said beside
# it ("Total: £49.00 (includes VAT 20 %: £8.17)"), as receipts do. An order without these amounts: items and total.
_RECEIPT_TEXT = (
    _LINES_TEXT + "{% if subtotal %}Subtotal: {{ subtotal }}\n{% endif %}"
    "{% if discount %}Discount{% if voucher_code %} ({{ voucher_code }}){% endif %}: -{{ discount }}\n{% endif %}"
    "{% if shipping_method %}Shipping ({{ shipping_method }}): {{ shipping }}\n{% endif %}"
    "{% if not prices_include_tax %}"
    "{% for t in tax_lines %}{{ t.name }} {{ t.rate }} %: {{ t.amount }}\n{% endfor %}"
    "{% endif %}"
    "Total: {{ total }}{% if prices_include_tax and tax_lines %} (includes "
    "{% for t in tax_lines %}{{ t.name }} {{ t.rate }} %: {{ t.amount }}{% if not loop.last %}, {% endif %}{% endfor %}"
    # `+%}`: keep the newline that follows (trim_blocks would eat it).
    "){% endif +%}"
)
_TABLE_HTML = '<table style="border-collapse: collapse; width: 100%; margin: 16px 0;">\n'
_LINES_HTML = (
    "{% for item in items %}"
    '<tr><td style="padding: 4px 0;">{{ item.quantity }} &times; {{ item.name }}</td>'
    '<td style="padding: 4px 0; text-align: right;">{{ item.price }} each</td></tr>\n'
    "{% endfor %}"
)
_TOTAL_HTML = (
    '<tr><td style="padding: 8px 0; border-top: 1px solid #ddd; font-weight: bold;">Total</td>'
    '<td style="padding: 8px 0; border-top: 1px solid #ddd; font-weight: bold; text-align: right;">'
    "{{ total }}</td></tr>\n"
)
_ITEMS_HTML = _TABLE_HTML + _LINES_HTML + _TOTAL_HTML + "</table>\n"


def _row(label: str, amount: str, style: str = "padding: 4px 0;") -> str:
    """One line of a receipt's table: a label and its amount, right-aligned."""
    return f'<tr><td style="{style}">{label}</td><td style="{style} text-align: right;">{amount}</td></tr>\n'


_RECEIPT_HTML = (
    _TABLE_HTML
    + _LINES_HTML
    + "{% if subtotal %}"
    + _row("Subtotal", "{{ subtotal }}", "padding: 4px 0; border-top: 1px solid #ddd;")
    + "{% endif %}{% if discount %}"
    + _row("Discount{% if voucher_code %} ({{ voucher_code }}){% endif %}", "-{{ discount }}")
    + "{% endif %}{% if shipping_method %}"
    + _row("Shipping ({{ shipping_method }})", "{{ shipping }}")
    + "{% endif %}{% if not prices_include_tax %}{% for t in tax_lines %}"
    + _row("{{ t.name }} {{ t.rate }} %", "{{ t.amount }}")
    + "{% endfor %}{% endif %}"
    + _TOTAL_HTML
    + "{% if prices_include_tax %}{% for t in tax_lines %}"
    + _row("includes {{ t.name }} {{ t.rate }} %", "{{ t.amount }}", "padding: 2px 0; color: #777777;")
    + "{% endfor %}{% endif %}"
    + "</table>\n"
)

# A product's variant as low-stock notices name it: "Organic tee (M / Red), SKU TEE-M-RED,";
# a product without options is named alone ("Desk lamp"), or with its SKU if it has one.
_VARIANT = "{{ product_name }}{% if variant_label %} ({{ variant_label }}){% endif %}"
_SKU = "{% if sku %}, SKU {{ sku }},{% endif %}"
_ORDER_BUTTON = (
    '<p><a href="{{ order_url }}" style="display: inline-block; padding: 10px 18px; background: #1a73e8; '
    'color: #ffffff; text-decoration: none; border-radius: 4px;">View your order</a></p>\n'
)


# The parcel of a shipped order: its carrier and number when the shipper gave them, and a
# link to the carrier's tracking page only where one is known (workers/notifications/model.py).
_PARCEL_TEXT = (
    "{% if tracking_number %}Tracking number: {{ tracking_number }}{% if carrier %} ({{ carrier }}){% endif %}\n"
    "{% if tracking_url %}Follow your parcel: {{ tracking_url }}\n{% endif %}\n"
    "{% elif carrier %}Carrier: {{ carrier }}\n\n{% endif %}"
)
_PARCEL_HTML = (
    "{% if tracking_number %}<p>Tracking number: <strong>{{ tracking_number }}</strong>"
    "{% if carrier %} ({{ carrier }}){% endif %}"
    '{% if tracking_url %}. <a href="{{ tracking_url }}">Follow your parcel</a>{% endif %}</p>\n'
    "{% elif carrier %}<p>Carrier: {{ carrier }}</p>\n{% endif %}"
)


def _html(heading: str, content: str) -> str:
    """A plain, single-column email that most clients show as written (inline styles only)."""
    return (
        '<div style="font-family: Helvetica, Arial, sans-serif; font-size: 15px; line-height: 1.5; '
        'color: #222222; max-width: 560px; margin: 0 auto; padding: 16px;">\n'
        '<h1 style="font-size: 20px; margin: 0 0 16px;">' + heading + "</h1>\n"
        "<p>Hi {{ name }},</p>\n" + content + '<p style="color: #777777; font-size: 13px; margin-top: 24px;">'
        "The {{ shop_name }} team</p>\n"
        "</div>\n"
    )


def _email(key: str, category: Category, description: str, subject: str, text: str, html: str) -> TemplateSpec:
    return TemplateSpec(key, "email", category, description, TemplateBody(subject=subject, text=text, html=html))


def _sms(key: str, category: Category, description: str, text: str) -> TemplateSpec:
    return TemplateSpec(key, "sms", category, description, TemplateBody(text=text))


_CATALOGUE = (
    _email(
        "welcome",
        "account",
        "A new account was registered.",
        "Welcome to {{ shop_name }}, {{ name }}!",
        "Hi {{ name }},\n\nWelcome to {{ shop_name }}! Your account is ready: browse the shop, fill your cart "
        "and check out whenever you like.\n\nIf you did not create this account, please let us know." + _SIGN_OFF,
        _html(
            "Welcome to {{ shop_name }}!",
            "<p>Your account is ready: browse the shop, fill your cart and check out whenever you like.</p>\n"
            "<p>If you did not create this account, please let us know.</p>\n",
        ),
    ),
    _email(
        "order_confirmed",
        "orders",
        "An order was paid for and confirmed.",
        "Your {{ shop_name }} order is confirmed",
        "Hi {{ name }},\n\nThank you for your order! It is confirmed, and we will let you know when it ships."
        "\n\nOrder {{ order_id }}\n" + _RECEIPT_TEXT + "\n\nSee your order: {{ order_url }}" + _SIGN_OFF,
        _html(
            "Thank you for your order!",
            "<p>Your order is confirmed, and we will let you know when it ships.</p>\n"
            '<p style="color: #777777;">Order {{ order_id }}</p>\n' + _RECEIPT_HTML + _ORDER_BUTTON,
        ),
    ),
    _sms(
        "order_confirmed",
        "orders",
        "An order was paid for and confirmed.",
        "{{ shop_name }}: thank you! Your order of {{ total }} is confirmed. Details: {{ order_url }}",
    ),
    _email(
        "order_cancelled",
        "orders",
        "An order was cancelled (by the customer, an admin, or because stock or payment failed).",
        "Your {{ shop_name }} order was cancelled",
        "Hi {{ name }},\n\nWe are sorry: your order {{ order_id }} was cancelled because {{ reason }}.\n\n"
        + _ITEMS_TEXT
        + "\n\nIf any payment was taken, it will be refunded in full.\n\nSee your order: {{ order_url }}"
        + _SIGN_OFF,
        _html(
            "Your order was cancelled",
            "<p>We are sorry: your order {{ order_id }} was cancelled because {{ reason }}.</p>\n"
            + _ITEMS_HTML
            + "<p>If any payment was taken, it will be refunded in full.</p>\n"
            + _ORDER_BUTTON,
        ),
    ),
    _sms(
        "order_cancelled",
        "orders",
        "An order was cancelled (by the customer, an admin, or because stock or payment failed).",
        "{{ shop_name }}: your order of {{ total }} was cancelled because {{ reason }}. Details: {{ order_url }}",
    ),
    _email(
        "payment_failed",
        "orders",
        "An order's payment was declined or could not be confirmed: it can be paid again until a deadline.",
        "Your {{ shop_name }} payment did not go through",
        "Hi {{ name }},\n\nThe payment for your order {{ order_id }} did not go through. We are holding your "
        "items until {{ due_by }}: pay again with another card before then, or the order will be cancelled.\n\n"
        + _ITEMS_TEXT
        + "\n\nPay again: {{ order_url }}"
        + _SIGN_OFF,
        _html(
            "Your payment did not go through",
            "<p>The payment for your order {{ order_id }} did not go through. We are holding your items until "
            "<strong>{{ due_by }}</strong>: pay again with another card before then, or the order will be "
            "cancelled.</p>\n"
            + _ITEMS_HTML
            + '<p><a href="{{ order_url }}" style="display: inline-block; padding: 10px 18px; background: #1a73e8; '
            'color: #ffffff; text-decoration: none; border-radius: 4px;">Pay again</a></p>\n',
        ),
    ),
    _sms(
        "payment_failed",
        "orders",
        "An order's payment was declined or could not be confirmed: it can be paid again until a deadline.",
        "{{ shop_name }}: the payment for your order of {{ total }} did not go through. Pay again by {{ due_by }}: "
        "{{ order_url }}",
    ),
    _email(
        "order_shipped",
        "orders",
        "An order was handed to the carrier.",
        "Your {{ shop_name }} order is on its way",
        "Hi {{ name }},\n\nGood news: your order {{ order_id }} is on its way.\n\n"
        + _PARCEL_TEXT
        + _ITEMS_TEXT
        + "\n\nSee your order: {{ order_url }}"
        + _SIGN_OFF,
        _html(
            "Your order is on its way",
            "<p>Good news: your order {{ order_id }} has shipped.</p>\n" + _PARCEL_HTML + _ITEMS_HTML + _ORDER_BUTTON,
        ),
    ),
    _sms(
        "order_shipped",
        "orders",
        "An order was handed to the carrier.",
        "{{ shop_name }}: your order of {{ total }} is on its way!"
        "{% if tracking_number %} Tracking: {% if carrier %}{{ carrier }} {% endif %}{{ tracking_number }}.{% endif %}"
        " Details: {{ order_url }}",
    ),
    _email(
        "order_delivered",
        "orders",
        "An order was delivered.",
        "Your {{ shop_name }} order was delivered",
        "Hi {{ name }},\n\nYour order {{ order_id }} was delivered. We hope you enjoy it!\n\n"
        + _ITEMS_TEXT
        + "\n\nSee your order: {{ order_url }}"
        + _SIGN_OFF,
        _html(
            "Your order was delivered",
            "<p>Your order {{ order_id }} was delivered. We hope you enjoy it!</p>\n" + _ITEMS_HTML + _ORDER_BUTTON,
        ),
    ),
    _sms(
        "order_delivered",
        "orders",
        "An order was delivered.",
        "{{ shop_name }}: your order of {{ total }} was delivered. Enjoy! Details: {{ order_url }}",
    ),
    _email(
        "payment_refunded",
        "orders",
        "Money was refunded: a cancelled order that had been paid for, a return, or an admin's refund.",
        "Your refund of {{ amount }} is on its way",
        "Hi {{ name }},\n\nWe have refunded {{ amount }} for your order {{ order_id }}. Depending on your bank, "
        "it can take a few business days to appear on your statement.\n\nSee your order: {{ order_url }}" + _SIGN_OFF,
        _html(
            "Your refund is on its way",
            "<p>We have refunded <strong>{{ amount }}</strong> for your order {{ order_id }}. Depending on your "
            "bank, it can take a few business days to appear on your statement.</p>\n" + _ORDER_BUTTON,
        ),
    ),
    _email(
        "return_approved",
        "orders",
        "A return the customer asked for was approved: the goods may be sent back.",
        "Your return was approved",
        "Hi {{ name }},\n\nYour return for order {{ order_id }} was approved. Please send back:\n"
        "{% for item in returned %}- {{ item.name }}: {{ item.quantity }}\n{% endfor %}"
        "{% if note %}\n{{ note }}\n{% endif %}"
        "\nWe refund you once the goods are back.\n\nSee your order: {{ order_url }}" + _SIGN_OFF,
        _html(
            "Your return was approved",
            "<p>Your return for order {{ order_id }} was approved. Please send back:</p>\n<ul>\n"
            "{% for item in returned %}<li>{{ item.quantity }} &times; {{ item.name }}</li>\n{% endfor %}</ul>\n"
            "{% if note %}<p>{{ note }}</p>\n{% endif %}"
            "<p>We refund you once the goods are back.</p>\n" + _ORDER_BUTTON,
        ),
    ),
    _email(
        "low_stock",
        "seller",
        "A variant of a seller's product fell to its low-stock threshold or below.",
        "Low stock: " + _VARIANT,
        "Hi {{ name }},\n\n" + _VARIANT + _SKU + " is running low: {{ available }} left (your alert threshold is "
        "{{ threshold }}). Restock soon so you do not miss any sales." + _SIGN_OFF,
        _html(
            _VARIANT + " is running low",
            "<p><strong>" + _VARIANT + "</strong>" + _SKU + " is running low: {{ available }} left (your alert "
            "threshold is {{ threshold }}).</p>\n<p>Restock soon so you do not miss any sales.</p>\n",
        ),
    ),
    _email(
        "password_changed",
        "security",
        "The account's password was changed.",
        "Your {{ shop_name }} password was changed",
        "Hi {{ name }},\n\nThe password of your {{ shop_name }} account was just changed. If this was you, "
        "there is nothing more to do.\n\nIf it was not you, contact us right away: someone else may have "
        "access to your account." + _SIGN_OFF,
        _html(
            "Your password was changed",
            "<p>The password of your {{ shop_name }} account was just changed. If this was you, there is nothing "
            "more to do.</p>\n<p><strong>If it was not you, contact us right away</strong>: someone else may have "
            "access to your account.</p>\n",
        ),
    ),
    _sms(
        "password_changed",
        "security",
        "The account's password was changed.",
        "{{ shop_name }}: your password was just changed. Not you? Contact us right away.",
    ),
    _email(
        "new_sign_in",
        "security",
        "Someone signed in to the account from a device or browser not seen before.",
        "New sign-in to your {{ shop_name }} account",
        "Hi {{ name }},\n\nSomeone just signed in to your {{ shop_name }} account from a new device or browser "
        "({{ at }}). If this was you, there is nothing more to do.\n\nIf it was not you, change your password "
        "right away." + _SIGN_OFF,
        _html(
            "New sign-in to your account",
            "<p>Someone just signed in to your {{ shop_name }} account from a new device or browser ({{ at }}). "
            "If this was you, there is nothing more to do.</p>\n"
            "<p><strong>If it was not you, change your password right away.</strong></p>\n",
        ),
    ),
    _sms(
        "new_sign_in",
        "security",
        "Someone signed in to the account from a device or browser not seen before.",
        "{{ shop_name }}: new sign-in to your account ({{ at }}). Not you? Change your password now.",
    ),
)

DEFAULTS: dict[tuple[str, Channel], TemplateSpec] = {(spec.key, spec.channel): spec for spec in _CATALOGUE}


# --- rendering -----------------------------------------------------------------------------------


class TemplateError(Exception):
    """A template that cannot be rendered: bad syntax, an unknown variable, or unsafe access."""

    def __init__(self, part: Part, message: str) -> None:
        super().__init__(f"{part}: {message}")
        self.part = part
        self.message = message


def _environment(*, autoescape: bool) -> ImmutableSandboxedEnvironment:
    # Immutable: a template cannot change the lists and dicts it is given either.
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=autoescape, trim_blocks=True, lstrip_blocks=True
    )


_PLAIN = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


def _render_part(part: Part, source: str, variables: Mapping[str, object]) -> str:
    env = _HTML if part == "html" else _PLAIN
    try:
        return env.from_string(source).render(variables)
    except JinjaError as exc:
        line = getattr(exc, "lineno", None)
        raise TemplateError(part, f"line {line}: {exc.message}" if line else str(exc.message)) from None
    except Exception as exc:  # an admin's template can fail any way Python can (`{{ 1 / 0 }}`)
        raise TemplateError(part, f"{type(exc).__name__}: {exc}") from None


def render(body: TemplateBody, variables: Mapping[str, object]) -> RenderedMessage:
    """Render every part of `body`; raises `TemplateError` naming the part that failed."""
    subject = _render_part("subject", body.subject, variables) if body.subject is not None else None
    return RenderedMessage(
        # One line, whatever the template or a variable holds: it becomes a mail header.
        subject=" ".join(subject.split()) if subject is not None else None,
        text=_render_part("text", body.text, variables),
        html=_render_part("html", body.html, variables) if body.html is not None else None,
    )


def validate(key: str, channel: Channel, body: TemplateBody) -> RenderedMessage:
    """Check `body` can stand in for the template `(key, channel)`: the right parts, and it
    renders with the key's sample values (so it uses no variable the key does not provide).

    Returns the sample rendering; raises `TemplateError` on the first part at fault.
    """
    spec = DEFAULTS[(key, channel)]
    if channel == "sms":
        if body.subject is not None:
            raise TemplateError("subject", "SMS templates have no subject")
        if body.html is not None:
            raise TemplateError("html", "SMS templates have no HTML part")
    elif body.subject is None or not body.subject.strip():
        raise TemplateError("subject", "email templates need a subject")
    rendered = render(body, spec.sample)
    if channel == "sms" and len(rendered.text) > MAX_SMS:
        raise TemplateError("text", f"the SMS is {len(rendered.text)} characters with sample data; at most {MAX_SMS}")
    if channel == "email" and not rendered.subject:
        raise TemplateError("subject", "the subject renders empty")
    return rendered


# --- stored edits --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredTemplate:
    body: TemplateBody
    updated_at: datetime | None  # None: the default, never edited
    updated_by: UUID | None


async def stored(session: AsyncSession, key: str, channel: Channel) -> StoredTemplate:
    """The template as it stands: an admin's edit if there is one, else the default."""
    row = (
        await session.execute(
            select(notification_templates).where(
                notification_templates.c.key == key, notification_templates.c.channel == channel
            )
        )
    ).first()
    return _stored(row) if row is not None else StoredTemplate(DEFAULTS[(key, channel)].body, None, None)


async def stored_all(session: AsyncSession) -> dict[tuple[str, Channel], StoredTemplate]:
    """Every template of the catalogue as it stands, in catalogue order."""
    edits = {(row.key, row.channel): _stored(row) for row in await session.execute(select(notification_templates))}
    return {ident: edits.get(ident) or StoredTemplate(spec.body, None, None) for ident, spec in DEFAULTS.items()}


def _stored(row: Row[Any]) -> StoredTemplate:
    return StoredTemplate(
        TemplateBody(subject=row.subject, text=row.text, html=row.html), row.updated_at, row.updated_by
    )


async def load(session: AsyncSession, key: str, channel: Channel) -> TemplateBody:
    """The body to send for `(key, channel)`: the admin's edit, or the default."""
    return (await stored(session, key, channel)).body


async def seed_defaults(session: AsyncSession, now: datetime) -> int:
    """Store the default of every template not stored yet (`updated_by` null); an admin's
    edit is never overwritten. Run at every start, so a new template arrives with the
    code that sends it. Returns how many were added."""
    rows = [
        {
            "key": key,
            "channel": channel,
            "subject": spec.body.subject,
            "text": spec.body.text,
            "html": spec.body.html,
            "updated_at": now,
            "updated_by": None,
        }
        for (key, channel), spec in DEFAULTS.items()
    ]
    result = await session.execute(
        insert(notification_templates).values(rows).on_conflict_do_nothing(index_elements=["key", "channel"])
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def save(
    session: AsyncSession, key: str, channel: Channel, body: TemplateBody, *, by: UUID, now: datetime
) -> StoredTemplate:
    """Store an (already validated) edit; the last writer wins."""
    values = {"subject": body.subject, "text": body.text, "html": body.html, "updated_at": now, "updated_by": by}
    await session.execute(
        insert(notification_templates)
        .values(key=key, channel=channel, **values)
        .on_conflict_do_update(index_elements=["key", "channel"], set_=values)
    )
    return StoredTemplate(body, now, by)
