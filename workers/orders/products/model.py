"""A product as the orders service knows it (pure: the carts' and orders' models price
from it)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class ProductSnapshot:
    product_id: UUID
    seller_id: UUID
    name: str
    price_minor: int
    currency: str
    deleted: bool

    @property
    def on_sale(self) -> bool:
        # No currency: a placeholder row whose creation event has not arrived yet.
        return not self.deleted and bool(self.currency)
