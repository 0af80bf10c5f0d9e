"""The cart rules: pure, no I/O.

A cart holds variants (of products) and quantities, never prices: what it costs is
worked out on every read from the variants' current prices (`ProductSnapshot`). A line
that names no variant is the product's default variant (whose id is the product's); a
product with options has none, and such a line is refused. One cart, one currency: a
product in another currency is refused (conflict). Only variants on sale may be added;
one withdrawn later (or whose product was) stays in the cart's rows but is neither shown
nor counted (the view lists it as `unavailable`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from contracts.carts import MAX_QUANTITY, CartItem, CartView
from contracts.money import ZERO, to_amount
from workers.orders.products.model import ProductSnapshot, VariantSnapshot, needs_variant, refuse_without_variant

# Carts belong to people: partner systems and services order with explicit lines.
CART_ROLES = frozenset({"member", "seller", "admin"})


class CartError(Exception):
    """A change the rules refuse; `code` is the error code the handler answers with."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True)
class Line:
    product_id: UUID
    quantity: int
    added_at: datetime
    # The variant; left out, the product's default variant (whose id is the product's).
    variant_id: UUID = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.variant_id is None:
            object.__setattr__(self, "variant_id", self.product_id)


def _offered(products: Mapping[UUID, ProductSnapshot], line: Line) -> tuple[ProductSnapshot, VariantSnapshot] | None:
    """The line's product and variant, if both are on sale."""
    product = products.get(line.product_id)
    variant = product.variant(line.variant_id) if product is not None else None
    return (product, variant) if product is not None and variant is not None else None


def chosen(product: ProductSnapshot | None, variant_id: UUID | None, title: str) -> UUID | None:
    """The variant a command names (None: the product's default one). A product with
    options has no default: a command about it that names none is refused as malformed."""
    if needs_variant(product, variant_id):
        refuse_without_variant(title, [("variant_id",)])
    return variant_id


@dataclass(frozen=True)
class Cart:
    cart_id: UUID
    user_id: UUID | None
    lines: tuple[Line, ...]

    def line(self, variant_id: UUID) -> Line | None:
        return next((line for line in self.lines if line.variant_id == variant_id), None)

    def currency(self, products: Mapping[UUID, ProductSnapshot]) -> str | None:
        """The currency of the lines on sale (None if empty; the first one if mixed)."""
        currencies = _currencies(self.lines, products)
        return currencies[0] if currencies else None

    def add(
        self,
        product: ProductSnapshot | None,
        quantity: int,
        products: Mapping[UUID, ProductSnapshot],
        now: datetime,
        variant_id: UUID | None = None,
    ) -> Cart:
        """Add `quantity` of the product's variant (`variant_id`; left out: its default variant)."""
        if product is None or not product.on_sale:
            raise CartError("not_found", "product not found")
        variant = product.variant(chosen(product, variant_id, "AddCartItem"))
        if variant is None:
            raise CartError("not_found", "variant not found")
        currency = self.currency(products)
        if currency is not None and product.currency != currency:
            raise CartError(
                "conflict", f"the cart is in {currency}: a product priced in {product.currency} cannot join it"
            )
        existing = self.line(variant.variant_id)
        total = quantity + (existing.quantity if existing else 0)
        if total > MAX_QUANTITY:
            raise CartError("conflict", f"at most {MAX_QUANTITY} of a variant per cart")
        added_at = existing.added_at if existing else now
        return self._with(Line(product.product_id, total, added_at, variant.variant_id))

    def set(
        self,
        product_id: UUID,
        quantity: int,
        products: Mapping[UUID, ProductSnapshot],
        variant_id: UUID | None = None,
    ) -> Cart:
        existing = self.line(chosen(products.get(product_id), variant_id, "SetCartItem") or product_id)
        if existing is None or existing.product_id != product_id or _offered(products, existing) is None:
            raise CartError("not_found", "product not in the cart")
        return self._with(replace(existing, quantity=quantity))

    def remove(
        self, product_id: UUID, products: Mapping[UUID, ProductSnapshot] | None = None, variant_id: UUID | None = None
    ) -> Cart:
        key = chosen((products or {}).get(product_id), variant_id, "RemoveCartItem") or product_id
        existing = self.line(key)
        if existing is None or existing.product_id != product_id:
            raise CartError("not_found", "product not in the cart")
        return replace(self, lines=tuple(line for line in self.lines if line.variant_id != key))

    def merged(self, guest: Cart, products: Mapping[UUID, ProductSnapshot], now: datetime) -> Cart:
        """This (member's) cart with a guest cart's lines added.

        Quantities of a variant in both add up, capped at the maximum. Lines of
        variants no longer on sale are dropped, and so are lines in another currency
        than this cart's (a cart has one currency, and the member's cart was there first).
        """
        merged = self
        for line in sorted(guest.lines, key=lambda line: line.added_at):
            offered = _offered(products, line)
            if offered is None:
                continue
            currency = merged.currency(products)
            if currency is not None and offered[0].currency != currency:
                continue
            existing = merged.line(line.variant_id)
            quantity = min(line.quantity + (existing.quantity if existing else 0), MAX_QUANTITY)
            added_at = existing.added_at if existing else now
            merged = merged._with(Line(line.product_id, quantity, added_at, line.variant_id))
        return merged

    def _with(self, line: Line) -> Cart:
        others = tuple(other for other in self.lines if other.variant_id != line.variant_id)
        return replace(self, lines=tuple(sorted((*others, line), key=lambda x: (x.added_at, x.variant_id))))


def _currencies(lines: tuple[Line, ...], products: Mapping[UUID, ProductSnapshot]) -> list[str]:
    found: list[str] = []
    for line in lines:
        offered = _offered(products, line)
        if offered is not None and offered[0].currency not in found:
            found.append(offered[0].currency)
    return found


def view(cart: Cart | None, products: Mapping[UUID, ProductSnapshot], *, cart_id: UUID | None = None) -> CartView:
    """The cart at current prices. `cart_id` names a cart that has no row yet."""
    if cart is None:
        return CartView(cart_id=cart_id, items=(), total=ZERO, currency=None)
    items: list[CartItem] = []
    unavailable: list[UUID] = []
    minor = 0
    for line in cart.lines:
        offered = _offered(products, line)
        if offered is None:
            unavailable.append(line.variant_id)
            continue
        product, variant = offered
        minor += line.quantity * variant.price_minor
        items.append(
            CartItem(
                product_id=line.product_id,
                variant_id=line.variant_id,
                name=product.name,
                sku=variant.sku,
                variant=variant.label,
                quantity=line.quantity,
                unit_price=to_amount(variant.price_minor, product.currency),
            )
        )
    currencies = _currencies(cart.lines, products)
    total: str | None = ZERO
    currency: str | None = None
    if len(currencies) == 1:
        currency = currencies[0]
        total = to_amount(minor, currency)
    elif len(currencies) > 1:
        total = None  # a seller changed a product's currency: checkout refuses such a cart
    return CartView(
        cart_id=cart.cart_id, items=tuple(items), total=total, currency=currency, unavailable=tuple(unavailable)
    )
