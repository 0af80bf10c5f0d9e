"""The catalog domain: pure rules, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from contracts.catalog import CategoryNode, CategoryView, ProductCreated, ProductDeleted, ProductUpdated, ProductView
from contracts.money import MoneyError, currency, to_amount, to_minor
from kernel.tokens import Actor
from workers.runtime.errors import invalid

# Roles that may list products; anyone else (members, partners, services) may only read.
SELLING_ROLES = frozenset({"seller", "admin"})


def may_sell(actor: Actor) -> bool:
    return actor.role in SELLING_ROLES


def price_minor(amount: str, code: str, *, field: str = "price") -> int:
    try:
        return to_minor(amount, code)
    except MoneyError as exc:
        raise invalid(field, str(exc)) from None


@dataclass(frozen=True)
class Product:
    product_id: UUID
    seller_id: UUID
    name: str
    description: str
    price_minor: int
    currency: str
    category: str
    image_url: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    # What the inventory service last said is available (a read model for `in_stock`).
    available: int = 0

    @property
    def price_exponent(self) -> int:
        return currency(self.currency).exponent

    def view(self) -> ProductView:
        return ProductView(
            product_id=self.product_id,
            seller_id=self.seller_id,
            name=self.name,
            description=self.description,
            price=to_amount(self.price_minor, self.currency),
            currency=self.currency,
            category=self.category,
            image_url=self.image_url,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )

    def managed_by(self, actor: Actor) -> bool:
        """Its seller manages it, and admins manage everything. Anyone else: as if it did not exist."""
        return may_sell(actor) and (actor.role == "admin" or actor.user_id == self.seller_id)

    def updated(self, changes: Mapping[str, Any], now: datetime) -> tuple[Product, tuple[str, ...]]:
        """Apply a partial update (API field names); return the product and the names that changed."""
        fields = {k: v for k, v in changes.items() if k not in ("price", "currency")}
        if "currency" in changes and "price" not in changes:
            # The stored amount means something else in another currency: never reinterpret it.
            raise invalid("currency", "can change only together with price")
        if "price" in changes:
            code = changes.get("currency", self.currency)
            fields["price_minor"] = price_minor(changes["price"], code)
            fields["currency"] = code
        changed = tuple(sorted(k for k, v in fields.items() if getattr(self, k) != v))
        if not changed:
            return self, ()
        return replace(self, **{k: fields[k] for k in changed}, updated_at=now), changed

    def withdrawn(self, now: datetime) -> Product:
        return replace(self, deleted_at=now, updated_at=now)

    # The events that announce a product's life (the handlers emit what these return).

    def created_event(self) -> ProductCreated:
        """Its `available` is the stock inventory starts it with."""
        return ProductCreated(
            product_id=self.product_id,
            seller_id=self.seller_id,
            name=self.name,
            category=self.category,
            price_minor=self.price_minor,
            currency=self.currency,
            initial_stock=self.available,
            created_at=self.created_at,
        )

    def updated_event(self, changed: tuple[str, ...]) -> ProductUpdated:
        """The update that made this product, changing the fields named."""
        return ProductUpdated(
            product_id=self.product_id,
            seller_id=self.seller_id,
            changed=changed,
            updated_at=self.updated_at,
            price_minor=self.price_minor,
            currency=self.currency,
            name=self.name,
        )

    def deleted_event(self) -> ProductDeleted:
        assert self.deleted_at is not None
        return ProductDeleted(product_id=self.product_id, seller_id=self.seller_id, deleted_at=self.deleted_at)


@dataclass(frozen=True)
class Category:
    slug: str
    name: str
    parent: str | None
    created_at: datetime
    updated_at: datetime

    def view(self) -> CategoryView:
        return CategoryView(slug=self.slug, name=self.name, parent=self.parent)


def creates_cycle(slug: str, new_parent: str | None, parents: Mapping[str, str | None]) -> bool:
    """Whether hanging `slug` under `new_parent` would make it its own ancestor."""
    seen: set[str] = set()
    node = new_parent
    while node is not None and node not in seen:
        if node == slug:
            return True
        seen.add(node)
        node = parents.get(node)
    return False


def category_tree(categories: Iterable[Category]) -> tuple[CategoryNode, ...]:
    """The categories as a forest, each level sorted by name."""
    by_parent: dict[str | None, list[Category]] = {}
    for category in categories:
        by_parent.setdefault(category.parent, []).append(category)

    def level(parent: str | None) -> tuple[CategoryNode, ...]:
        children = sorted(by_parent.get(parent, ()), key=lambda c: (c.name.lower(), c.slug))
        return tuple(CategoryNode(slug=c.slug, name=c.name, parent=c.parent, children=level(c.slug)) for c in children)

    return level(None)
