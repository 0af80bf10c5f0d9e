"""A product as the orders service knows them, with its variants (pure: the carts' and
orders' models price from it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from uuid import UUID

from contracts.errors import invalid_input
from contracts.taxes import DEFAULT_TAX_CLASS


@dataclass(frozen=True)
class VariantSnapshot:
    variant_id: UUID
    sku: str | None
    label: str
    price_minor: int
    deleted: bool = False


@dataclass(frozen=True)
class ProductSnapshot:
    product_id: UUID
    seller_id: UUID
    name: str
    # The product's own price: its default variant's when it has no options (and the
    # default variant's row is not there yet), otherwise its "from" price, never charged.
    price_minor: int
    currency: str
    deleted: bool
    # A product with options is sold only as one of its variants.
    has_options: bool = False
    variants: Mapping[UUID, VariantSnapshot] = field(default_factory=dict)
    # Its main image's URL (an order line keeps it); None: none, or not heard of yet.
    image_url: str | None = None
    # Which tax rates apply to it.
    tax_class: str = DEFAULT_TAX_CLASS
    # Its category's slug (vouchers may be limited to categories); None: not heard of yet.
    category: str | None = None

    @property
    def on_sale(self) -> bool:
        # No currency: a placeholder row whose creation event has not arrived yet.
        return not self.deleted and bool(self.currency)

    def variant(self, variant_id: UUID | None) -> VariantSnapshot | None:
        """The variant named, on sale, or None; without a name, the default variant (whose
        id is the product's). Call `needs_variant` first: a product with options has none."""
        if not self.on_sale:
            return None
        key = variant_id or self.product_id
        found = self.variants.get(key)
        if found is None and key == self.product_id and not self.has_options:
            found = VariantSnapshot(self.product_id, None, "", self.price_minor)
        if found is None or found.deleted or (self.has_options and key == self.product_id):
            return None
        return found


def needs_variant(product: ProductSnapshot | None, variant_id: UUID | None) -> bool:
    """A line that names no variant of a product that has options: malformed for that product."""
    return product is not None and product.on_sale and product.has_options and variant_id is None


def refuse_without_variant(title: str, places: list[tuple[str | int, ...]], product: str = "product") -> None:
    """Refuse lines that name no variant of a product with options: a validation error no
    retry can fix (answered, and on the broker dead-lettered at once, not redelivered)."""
    if places:
        message = f"choose a variant: the {product} has options (size, colour, ...)"
        raise invalid_input(title, [(place, message) for place in places])
