"""Notification rules, pure: who gets what on which channel, when to try again, what to say.

- Transactional categories (account, orders, security, seller) go by email always;
  marketing email only with consent. No marketing events exist yet: the rule is here
  for when they do.
- SMS only with consent for the category (orders, security, marketing; account and
  seller notices have no SMS), to a valid phone number, and where the template has an
  SMS version.
- Erased and disabled accounts get nothing (the delivery is recorded as skipped).
- A low-stock notice names the variant (its label and SKU). One whose variant is not
  known here yet waits for the catalog's news of it a little (VARIANT_WAIT), then names
  it by its id; a product's default variant has no label to name.
- A sign-in is news only from a client fingerprint not seen before on an account that
  has signed in before: the first sign-in after registering is not an alarm.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import quote
from uuid import UUID

from contracts.catalog import VariantDetails
from contracts.money import for_people
from contracts.notifications import TRANSACTIONAL, Category, Channel, NotificationPreferences
from contracts.orders import OrderTaxLine
from contracts.users import Contact

# Consent for SMS per category; a category missing here is never sent by SMS.
_SMS_CONSENT: dict[Category, Callable[[NotificationPreferences], bool]] = {
    "orders": lambda p: p.sms_orders,
    "security": lambda p: p.sms_security,
    "marketing": lambda p: p.marketing_sms,
}

# How long an order event waits for the order's placement to be known here (events
# arrive on separate queues, so a confirmation can overtake its placement).
ORDER_WAIT = timedelta(minutes=1)
# The same for a low-stock event and its variant's listing (a product or a variant just
# listed, then its stock set at once); shorter: the notice is worth less late.
VARIANT_WAIT = timedelta(seconds=30)


@dataclass(frozen=True)
class Notice:
    """One notification to one user, before channels are chosen: the template and its variables."""

    template: str
    recipient_id: UUID
    category: Category
    variables: Mapping[str, object] = field(default_factory=dict)


def skip_reason(contact: Contact | None) -> str | None:
    """Why this recipient gets nothing, or None if they can be reached."""
    if contact is None:
        return "unknown user"
    if contact.erased:
        return "erased"
    if contact.disabled:
        return "disabled"
    return None


def channels(
    category: Category, preferences: NotificationPreferences, *, phone_ok: bool, has_sms_template: bool
) -> tuple[Channel, ...]:
    """The channels a notice of `category` goes by, given the user's choices."""
    chosen: list[Channel] = []
    if category in TRANSACTIONAL or preferences.marketing_email:
        chosen.append("email")
    consent = _SMS_CONSENT.get(category)
    if consent is not None and consent(preferences) and phone_ok and has_sms_template:
        chosen.append("sms")
    return tuple(chosen)


def is_new_sign_in(known: Collection[str], fingerprint: str | None) -> bool:
    """Warn of a sign-in from somewhere new, but not of the account's very first one."""
    return fingerprint is not None and bool(known) and fingerprint not in known


# --- retries -------------------------------------------------------------------------------

Retry = float | Literal["give_up"]


def after_transient_failure(attempts: int, *, max_attempts: int, base: float, cap: float) -> Retry:
    """After `attempts` attempts failed for now: seconds to wait before the next, or give up."""
    if attempts >= max_attempts:
        return "give_up"
    return min(base * 2 ** (attempts - 1), cap)


def order_wait_over(event_at: datetime, now: datetime) -> bool:
    """An order event whose order is not known yet stops waiting for it after ORDER_WAIT."""
    return now - event_at >= ORDER_WAIT


# --- what the templates are given ------------------------------------------------------------


def money(minor: int, currency: str) -> str:
    return for_people(minor, currency)


# Carriers whose public tracking page takes the number in its URL (each carrier's own
# documented link); any other carrier's number is given as text only, never a guessed link.
_TRACKING_PAGES = {
    "dhl": "https://www.dhl.com/global-en/home/tracking/tracking-parcel.html?submit=1&tracking-id={}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={}",
    "ups": "https://www.ups.com/track?tracknum={}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
}


def shipment_variables(carrier: str | None, tracking_number: str | None) -> dict[str, object]:
    """`order_shipped`'s parcel: `carrier` and `tracking_number` ("" when not given), and
    `tracking_url`, the carrier's tracking page for a carrier known here, else ""."""
    page = _TRACKING_PAGES.get((carrier or "").strip().lower().replace(" ", ""))
    url = page.format(quote(tracking_number, safe="")) if page and tracking_number else ""
    return {"carrier": carrier or "", "tracking_number": tracking_number or "", "tracking_url": url}


@dataclass(frozen=True)
class OrderLine:
    product_id: UUID
    quantity: int
    price: str  # unit price, decimal string in the order's currency


@dataclass(frozen=True)
class OrderAmounts:
    """What an order's total is made of, as placed (minor units; `taxes` as the order shows
    them). `subtotal_minor` 0: not known (an order placed before its event carried them)."""

    subtotal_minor: int = 0
    discount_minor: int = 0
    voucher_code: str | None = None
    shipping_minor: int = 0
    shipping_method: str | None = None
    tax_minor: int = 0
    taxes: tuple[OrderTaxLine, ...] = ()
    prices_include_tax: bool = False


def amount_variables(amounts: OrderAmounts, currency: str) -> dict[str, object]:
    """`subtotal`, `discount` and `voucher_code`, `shipping` and `shipping_method`, `tax` and
    `tax_lines` ({name, rate, amount}, rate in percent as "10"), `prices_include_tax`.
    An amount is "" where there is none (no voucher, no shipping method, no tax); a
    shipping method that cost nothing is "$0.00". All empty for an order whose amounts
    are not known, whose templates then show its items and total alone, as before."""
    if not amounts.subtotal_minor:
        amounts = OrderAmounts()  # not known: nothing of it, whatever else the row holds
    return {
        "subtotal": money(amounts.subtotal_minor, currency) if amounts.subtotal_minor else "",
        "discount": money(amounts.discount_minor, currency) if amounts.discount_minor else "",
        "voucher_code": amounts.voucher_code or "",
        "shipping": money(amounts.shipping_minor, currency) if amounts.shipping_method is not None else "",
        "shipping_method": amounts.shipping_method or "",
        "tax": money(amounts.tax_minor, currency) if amounts.tax_minor else "",
        "tax_lines": [
            {"name": t.name, "rate": t.rate, "amount": for_people(t.amount, currency)} for t in amounts.taxes
        ],
        "prices_include_tax": amounts.prices_include_tax,
    }


def order_variables(
    order_id: UUID,
    total_minor: int,
    currency: str,
    lines: Iterable[OrderLine],
    names: Mapping[UUID, str],
    *,
    shop_url: str,
    amounts: OrderAmounts | None = None,
) -> dict[str, object]:
    """The variables every order template gets (see workers/notifications/templates.py)."""
    return {
        "order_id": str(order_id),
        "total": money(total_minor, currency),
        **amount_variables(amounts or OrderAmounts(), currency),
        "items": [
            {
                "name": names.get(line.product_id, f"item {str(line.product_id)[:8]}"),
                "quantity": line.quantity,
                "price": for_people(line.price, currency),
            }
            for line in lines
        ],
        "order_url": f"{shop_url.rstrip('/')}/orders/{order_id}",
    }


@dataclass(frozen=True)
class KnownVariant:
    """A variant as notices name it: `label` is "" for a product's default variant."""

    label: str
    sku: str | None


def listed_variants(product_id: UUID, variants: Iterable[VariantDetails]) -> dict[UUID, KnownVariant]:
    """The variants a listing names, by id; none (an older publisher): the default one."""
    return {v.variant_id: KnownVariant(v.label, v.sku) for v in variants} or {product_id: KnownVariant("", None)}


def variant_wait_over(variant_id: UUID | None, known: KnownVariant | None, event_at: datetime, now: datetime) -> bool:
    """Whether a low-stock notice may go now: its variant is known here, or none is named
    (an older publisher's event: the default variant), or it has waited VARIANT_WAIT."""
    return known is not None or variant_id is None or now - event_at >= VARIANT_WAIT


def low_stock_variables(
    product_id: UUID,
    variant_id: UUID | None,
    product_name: str | None,
    variant: KnownVariant | None,
    *,
    available: int,
    threshold: int,
) -> dict[str, object]:
    """The variables of the `low_stock` template. A variant never heard of is named by its
    id, unless it is the product's default one (its id is the product's)."""
    if variant is None:
        default = variant_id is None or variant_id == product_id
        variant = KnownVariant("" if default else f"variant {variant_id}", None)
    return {
        "product_name": product_name or f"product {product_id}",
        "variant_label": variant.label,
        "sku": variant.sku or "",
        "available": available,
        "threshold": threshold,
    }


def when(at: datetime) -> str:
    """A time as a message shows it: `2025-03-14 09:26 UTC`."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
