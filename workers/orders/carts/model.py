"""The cart rules: pure, no I/O.

A cart holds product ids and quantities, never prices: what it costs is worked out
on every read from the products' current prices (`ProductSnapshot`). One cart, one
currency: a product in another currency is refused (conflict). Only products on sale
may be added; a product withdrawn later stays in the cart's rows but is neither
shown nor counted (the view lists it as `unavailable`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from contracts.carts import MAX_QUANTITY, CartItem, CartView
from contracts.money import to_amount
from workers.orders.products.model import ProductSnapshot

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


@dataclass(frozen=True)
class Cart:
    cart_id: UUID
    user_id: UUID | None
    lines: tuple[Line, ...]

    def line(self, product_id: UUID) -> Line | None:
        return next((line for line in self.lines if line.product_id == product_id), None)

    def currency(self, products: Mapping[UUID, ProductSnapshot]) -> str | None:
        """The currency of the lines on sale (None if empty; the first one if mixed)."""
        currencies = _currencies(self.lines, products)
        return currencies[0] if currencies else None

    def add(
        self, product: ProductSnapshot | None, quantity: int, products: Mapping[UUID, ProductSnapshot], now: datetime
    ) -> Cart:
        if product is None or not product.on_sale:
            raise CartError("not_found", "product not found")
        currency = self.currency(products)
        if currency is not None and product.currency != currency:
            raise CartError(
                "conflict", f"the cart is in {currency}: a product priced in {product.currency} cannot join it"
            )
        existing = self.line(product.product_id)
        total = quantity + (existing.quantity if existing else 0)
        if total > MAX_QUANTITY:
            raise CartError("conflict", f"at most {MAX_QUANTITY} of a product per cart")
        return self._with(Line(product.product_id, total, existing.added_at if existing else now))

    def set(self, product_id: UUID, quantity: int, products: Mapping[UUID, ProductSnapshot]) -> Cart:
        existing = self.line(product_id)
        product = products.get(product_id)
        if existing is None or product is None or not product.on_sale:
            raise CartError("not_found", "product not in the cart")
        return self._with(replace(existing, quantity=quantity))

    def remove(self, product_id: UUID) -> Cart:
        if self.line(product_id) is None:
            raise CartError("not_found", "product not in the cart")
        return replace(self, lines=tuple(line for line in self.lines if line.product_id != product_id))

    def merged(self, guest: Cart, products: Mapping[UUID, ProductSnapshot], now: datetime) -> Cart:
        """This (member's) cart with a guest cart's lines added.

        Quantities of a product in both add up, capped at the maximum. Lines of
        products no longer on sale are dropped, and so are lines in another currency
        than this cart's (a cart has one currency, and the member's cart was there first).
        """
        merged = self
        for line in sorted(guest.lines, key=lambda line: line.added_at):
            product = products.get(line.product_id)
            if product is None or not product.on_sale:
                continue
            currency = merged.currency(products)
            if currency is not None and product.currency != currency:
                continue
            existing = merged.line(line.product_id)
            quantity = min(line.quantity + (existing.quantity if existing else 0), MAX_QUANTITY)
            merged = merged._with(Line(line.product_id, quantity, existing.added_at if existing else now))
        return merged

    def _with(self, line: Line) -> Cart:
        others = tuple(other for other in self.lines if other.product_id != line.product_id)
        return replace(self, lines=tuple(sorted((*others, line), key=lambda x: (x.added_at, x.product_id))))


def _currencies(lines: tuple[Line, ...], products: Mapping[UUID, ProductSnapshot]) -> list[str]:
    found: list[str] = []
    for line in lines:
        product = products.get(line.product_id)
        if product is not None and product.on_sale and product.currency not in found:
            found.append(product.currency)
    return found


def view(cart: Cart | None, products: Mapping[UUID, ProductSnapshot], *, cart_id: UUID | None = None) -> CartView:
    """The cart at current prices. `cart_id` names a cart that has no row yet."""
    if cart is None:
        return CartView(cart_id=cart_id, items=(), total="0", currency=None)
    items: list[CartItem] = []
    unavailable: list[UUID] = []
    for line in cart.lines:
        product = products.get(line.product_id)
        if product is None or not product.on_sale:
            unavailable.append(line.product_id)
            continue
        items.append(
            CartItem(
                product_id=line.product_id,
                name=product.name,
                quantity=line.quantity,
                unit_price=to_amount(product.price_minor, product.currency),
            )
        )
    currencies = _currencies(cart.lines, products)
    total: str | None = "0"
    currency: str | None = None
    if len(currencies) == 1:
        currency = currencies[0]
        minor = sum(
            line.quantity * products[line.product_id].price_minor
            for line in cart.lines
            if line.product_id not in unavailable
        )
        total = to_amount(minor, currency)
    elif len(currencies) > 1:
        total = None  # a seller changed a product's currency: checkout refuses such a cart
    return CartView(
        cart_id=cart.cart_id, items=tuple(items), total=total, currency=currency, unavailable=tuple(unavailable)
    )
