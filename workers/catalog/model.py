"""The catalog domain: pure rules, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from contracts.catalog import (
    LOW_STOCK_SHOWN,
    MAX_VARIANTS,
    AddVariant,
    Availability,
    CategoryNode,
    CategoryView,
    CreatedVariant,
    CreateProduct,
    ImageView,
    NewVariant,
    ProductCreated,
    ProductDeleted,
    ProductImage,
    ProductOption,
    ProductUpdated,
    ProductView,
    VariantAdded,
    VariantDetails,
    VariantUpdated,
    VariantView,
    VariantWithdrawn,
    variant_problems,
)
from contracts.errors import invalid_input
from contracts.money import MoneyError, currency, to_amount, to_minor
from contracts.taxes import DEFAULT_TAX_CLASS
from kernel.tokens import Actor
from workers.runtime.errors import DomainError, invalid

# Roles that may list products; anyone else (members, partners, services) may only read.
SELLING_ROLES = frozenset({"seller", "admin"})


def may_sell(actor: Actor) -> bool:
    return actor.role in SELLING_ROLES


def price_minor(amount: str, code: str, *, field: str = "price") -> int:
    try:
        return to_minor(amount, code)
    except MoneyError as exc:
        raise invalid(field, str(exc)) from None


def availability(available: int) -> Availability:
    """What a shopper is told of a stock level (the count itself is the seller's)."""
    if available <= 0:
        return "out_of_stock"
    return "low" if available <= LOW_STOCK_SHOWN else "in_stock"


@dataclass(frozen=True)
class StockApplied:
    """A variant's stock figure the catalog recorded: `available` before and after."""

    before: int
    after: int

    def shown_changed(self) -> bool:
        """Whether shoppers now see other than they did. They see a variant's `availability`
        (the count is the seller's); a product's is the best of its variants', and its
        `in_stock` (a sum above 0) changes only when a variant's comes to or leaves 0, so
        a product shows something new only when one of its variants does."""
        return availability(self.before) != availability(self.after)


def variant_label(values: Mapping[str, str], options: Sequence[ProductOption]) -> str:
    """The option values for display, in the product's order of options: `"M / Red"`."""
    return " / ".join(values[o.name] for o in options if o.name in values)


@dataclass(frozen=True)
class Image:
    url: str
    alt: str = ""


@dataclass(frozen=True)
class Variant:
    """One thing sold: a combination of the product's option values, with its price and stock.

    A product without options has one, its default variant, whose id is the product's.
    """

    variant_id: UUID
    product_id: UUID
    seller_id: UUID
    sku: str | None
    options: Mapping[str, str]
    price_minor: int
    compare_at_minor: int | None
    weight_grams: int | None
    position: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    # What the inventory service last said is available (at listing: the initial stock).
    available: int = 0

    def label(self, options: Sequence[ProductOption]) -> str:
        return variant_label(self.options, options)

    def details(self, options: Sequence[ProductOption]) -> VariantDetails:
        return VariantDetails(
            variant_id=self.variant_id,
            sku=self.sku,
            options=dict(self.options),
            label=self.label(options),
            price_minor=self.price_minor,
            compare_at_minor=self.compare_at_minor,
            weight_grams=self.weight_grams,
        )

    def created(self, options: Sequence[ProductOption]) -> CreatedVariant:
        return CreatedVariant(**self.details(options).model_dump(), initial_stock=self.available)

    def view(self, code: str, options: Sequence[ProductOption], *, full: bool) -> VariantView:
        return variant_view(
            variant_id=self.variant_id,
            sku=self.sku,
            options=self.options,
            price_minor=self.price_minor,
            compare_at_minor=self.compare_at_minor,
            weight_grams=self.weight_grams,
            available=self.available,
            code=code,
            product_options=options,
            full=full,
        )


def variant_view(
    *,
    variant_id: UUID | str,
    sku: str | None,
    options: Mapping[str, str],
    price_minor: int,
    compare_at_minor: int | None,
    weight_grams: int | None,
    available: int,
    code: str,
    product_options: Sequence[ProductOption],
    full: bool,
) -> VariantView:
    """A variant as shown (a search page builds it from the variant's columns alone)."""
    return VariantView(
        variant_id=variant_id,  # a page's JSON has it as text: pydantic reads it as a UUID
        sku=sku,
        options=dict(options),
        label=variant_label(options, product_options),
        price=to_amount(price_minor, code),
        compare_at_price=to_amount(compare_at_minor, code) if compare_at_minor else None,
        weight_grams=weight_grams,
        availability=availability(available),
        stock=available if full else None,
    )


def with_variants(view: ProductView, variants: Sequence[Variant], *, full: bool = False) -> ProductView:
    """A product's view (as a listing builds it, without variants) with its live variants:
    each one's price and availability, and the product's availability from theirs."""
    return with_variant_views(view, tuple(v.view(view.currency, view.options, full=full) for v in variants))


def with_variant_views(view: ProductView, shown: tuple[VariantView, ...]) -> ProductView:
    levels = {v.availability for v in shown}
    overall: Availability = next((a for a in ("in_stock", "low") if a in levels), "out_of_stock")
    return view.model_copy(update={"variants": shown, "availability": overall})


@dataclass(frozen=True)
class Product:
    product_id: UUID
    seller_id: UUID
    name: str
    description: str
    # The lowest price of its live variants (the "from" price search sorts and filters by).
    price_minor: int
    currency: str
    category: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    # What the inventory service last said is available, summed over its variants (a read
    # model for `in_stock`).
    available: int = 0
    images: tuple[Image, ...] = ()
    options: tuple[ProductOption, ...] = ()
    # Its live variants in order (loaded with the product; empty in a listing's rows).
    variants: tuple[Variant, ...] = ()
    tax_class: str = DEFAULT_TAX_CLASS

    @property
    def price_exponent(self) -> int:
        return currency(self.currency).exponent

    @property
    def image_url(self) -> str | None:
        return self.images[0].url if self.images else None

    def view(self, *, full: bool = False) -> ProductView:
        """`full`: with each variant's stock (its seller and admins)."""
        view = ProductView(
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
            images=tuple(ImageView(url=i.url, alt=i.alt) for i in self.images),
            options=self.options,
            availability=availability(self.available),
            tax_class=self.tax_class,
        )
        return with_variants(view, self.variants, full=full) if self.variants else view

    def managed_by(self, actor: Actor) -> bool:
        """Its seller manages it, and admins manage everything. Anyone else: as if it did not exist."""
        return may_sell(actor) and (actor.role == "admin" or actor.user_id == self.seller_id)

    def variant(self, variant_id: UUID) -> Variant:
        found = next((v for v in self.variants if v.variant_id == variant_id), None)
        if found is None:
            raise DomainError("not_found", "variant not found")
        return found

    def updated(self, changes: Mapping[str, Any], now: datetime) -> tuple[Product, tuple[str, ...]]:
        """Apply a partial update (API field names); return the product and the names that changed.

        A price (and a currency with it) is the default variant's: a product with options
        is priced per variant, and keeps its currency (its variants' prices are in it).
        """
        fields = {k: v for k, v in changes.items() if k not in ("price", "currency", "image_url", "images", "options")}
        if "currency" in changes and "price" not in changes:
            # The stored amount means something else in another currency: never reinterpret it.
            raise invalid("currency", "can change only together with price")
        if "price" in changes:
            if self.options:
                raise invalid("price", "a product with options is priced per variant: change its variants' prices")
            code = changes.get("currency", self.currency)
            fields["price_minor"] = price_minor(changes["price"], code)
            fields["currency"] = code
            default = self.variants[0] if self.variants else None
            compare_at = default.compare_at_minor if default is not None and code == self.currency else None
            if compare_at is not None and compare_at <= fields["price_minor"]:
                raise invalid("price", "must be less than the compare-at price (change or remove that first)")
        if "images" in changes:
            fields["images"] = tuple(Image(i["url"], i.get("alt", "")) for i in changes["images"])
        if "image_url" in changes:
            fields["images"] = (Image(changes["image_url"]),) if changes["image_url"] is not None else ()
        if "options" in changes:
            fields["options"] = tuple(ProductOption.model_validate(o) for o in changes["options"])
            self._check_options(fields["options"])
        changed = tuple(sorted(k for k, v in fields.items() if getattr(self, k) != v))
        if not changed:
            return self, ()
        updated = replace(self, **{k: fields[k] for k in changed}, updated_at=now)
        if ("price_minor" in changed or "currency" in changed) and updated.variants:
            default = replace(updated.variants[0], price_minor=updated.price_minor, updated_at=now)
            if "currency" in changed:  # a former price in another currency means nothing
                default = replace(default, compare_at_minor=None)
            updated = replace(updated, variants=(default,))
        return updated, changed

    def _check_options(self, new: tuple[ProductOption, ...]) -> None:
        if [o.name for o in new] != [o.name for o in self.options]:
            raise invalid("options", "the options' names and order stay as listed; only their values may change")
        problems = variant_problems(new, [(("options",), dict(v.options)) for v in self.variants])
        if problems:
            raise invalid("options", "a value a live variant has cannot be taken away")

    def with_variant(self, variant: Variant, now: datetime) -> Product:
        """The product with a variant added or replaced (and its "from" price after that)."""
        others = [v for v in self.variants if v.variant_id != variant.variant_id]
        variants = tuple(sorted((*others, variant), key=lambda v: v.position))
        return replace(self, variants=variants, price_minor=min(v.price_minor for v in variants), updated_at=now)

    def add_variant(self, cmd: AddVariant, variant_id: UUID, now: datetime) -> tuple[Product, Variant]:
        if not self.options:
            raise invalid("options", "the product has no options: its one variant can be changed, not added to")
        if len(self.variants) >= MAX_VARIANTS:
            raise DomainError("conflict", f"a product has at most {MAX_VARIANTS} variants")
        # The live variants first: a repeat of their values is reported on the new one (last).
        live: list[tuple[tuple[str | int, ...], dict[str, str]]] = [(("live",), dict(v.options)) for v in self.variants]
        found = variant_problems(self.options, [*live, ((), dict(cmd.options))])
        problems = [(loc, message) for loc, message in found if loc[:1] != ("live",)]
        if problems:
            raise invalid_input(type(cmd).__name__, problems)
        variant = Variant(
            variant_id=variant_id,
            product_id=self.product_id,
            seller_id=self.seller_id,
            sku=cmd.sku,
            options=dict(cmd.options),
            price_minor=price_minor(cmd.price, self.currency),
            compare_at_minor=_compare_at(cmd.compare_at_price, cmd.price, self.currency),
            weight_grams=cmd.weight_grams,
            position=max((v.position for v in self.variants), default=-1) + 1,
            created_at=now,
            updated_at=now,
            available=cmd.stock,
        )
        return self.with_variant(variant, now), variant

    def update_variant(
        self, variant_id: UUID, changes: Mapping[str, Any], now: datetime
    ) -> tuple[Product, Variant, tuple[str, ...]]:
        """A partial update of a variant (API field names): the product, the variant, what changed."""
        variant = self.variant(variant_id)
        fields: dict[str, Any] = {k: changes[k] for k in ("sku", "weight_grams") if k in changes}
        price = changes.get("price")
        if price is not None:
            fields["price_minor"] = price_minor(price, self.currency)
        if "compare_at_price" in changes:
            fields["compare_at_minor"] = (
                price_minor(changes["compare_at_price"], self.currency, field="compare_at_price")
                if changes["compare_at_price"] is not None
                else None
            )
        after = replace(variant, **fields)
        if after.compare_at_minor is not None and after.compare_at_minor <= after.price_minor:
            raise invalid("compare_at_price", "must be more than the price")
        changed = tuple(sorted(k for k, v in fields.items() if getattr(variant, k) != v))
        if not changed:
            return self, variant, ()
        after = replace(after, updated_at=now)
        product = self.with_variant(after, now)
        return product, after, changed

    def withdraw_variant(self, variant_id: UUID, now: datetime) -> tuple[Product, Variant]:
        variant = self.variant(variant_id)
        if len(self.variants) == 1:
            raise DomainError("conflict", "the product's last variant cannot be withdrawn: withdraw the product")
        gone = replace(variant, deleted_at=now, updated_at=now)
        rest = tuple(v for v in self.variants if v.variant_id != variant_id)
        product = replace(self, variants=rest, price_minor=min(v.price_minor for v in rest), updated_at=now)
        return product, gone

    def withdrawn(self, now: datetime) -> Product:
        return replace(self, deleted_at=now, updated_at=now)

    # The events that announce a product's life (the handlers emit what these return).

    def created_event(self) -> ProductCreated:
        """Its variants' `available` is the stock inventory starts each with."""
        return ProductCreated(
            product_id=self.product_id,
            seller_id=self.seller_id,
            name=self.name,
            category=self.category,
            price_minor=self.price_minor,
            currency=self.currency,
            initial_stock=sum(v.available for v in self.variants) if self.variants else self.available,
            created_at=self.created_at,
            options=tuple(o.name for o in self.options),
            variants=tuple(v.created(self.options) for v in self.variants),
            image_url=self.image_url,
            tax_class=self.tax_class,
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
            image_url=self.image_url,
            tax_class=self.tax_class,
            category=self.category,
        )

    def deleted_event(self) -> ProductDeleted:
        assert self.deleted_at is not None
        return ProductDeleted(product_id=self.product_id, seller_id=self.seller_id, deleted_at=self.deleted_at)

    def variant_added_event(self, variant: Variant) -> VariantAdded:
        return VariantAdded(
            product_id=self.product_id,
            seller_id=self.seller_id,
            currency=self.currency,
            variant=variant.created(self.options),
            at=variant.created_at,
        )

    def variant_updated_event(self, variant: Variant, changed: tuple[str, ...]) -> VariantUpdated:
        return VariantUpdated(
            product_id=self.product_id,
            seller_id=self.seller_id,
            currency=self.currency,
            variant=variant.details(self.options),
            changed=changed,
            at=variant.updated_at,
        )

    def variant_withdrawn_event(self, variant: Variant) -> VariantWithdrawn:
        assert variant.deleted_at is not None
        return VariantWithdrawn(
            product_id=self.product_id, seller_id=self.seller_id, variant_id=variant.variant_id, at=variant.deleted_at
        )


def _compare_at(compare_at: str | None, price: str, code: str) -> int | None:
    if compare_at is None:
        return None
    minor = price_minor(compare_at, code, field="compare_at_price")
    if minor <= price_minor(price, code):
        raise invalid("compare_at_price", "must be more than the price")
    return minor


def new_product(
    cmd: CreateProduct, product_id: UUID, seller_id: UUID, now: datetime, new_id: Callable[[], UUID]
) -> Product:
    """A product as `create_product` lists it, with its variants (a product without options:
    one default variant whose id is the product's). The command checked their shape."""
    new = cmd.variants if cmd.variants is not None else ()
    if not new:
        new = (NewVariant(stock=cmd.stock),)
    images = cmd.images if cmd.images is not None else (ProductImage(url=cmd.image_url),) if cmd.image_url else ()
    variants = tuple(
        Variant(
            variant_id=new_id() if cmd.options else product_id,
            product_id=product_id,
            seller_id=seller_id,
            sku=v.sku,
            options=dict(v.options),
            price_minor=price_minor(v.price or cmd.price or "", cmd.currency),
            compare_at_minor=(
                price_minor(v.compare_at_price, cmd.currency, field="compare_at_price") if v.compare_at_price else None
            ),
            weight_grams=v.weight_grams,
            position=position,
            created_at=now,
            updated_at=now,
            available=v.stock,
        )
        for position, v in enumerate(new)
    )
    return Product(
        product_id=product_id,
        seller_id=seller_id,
        name=cmd.name,
        description=cmd.description,
        price_minor=min(v.price_minor for v in variants),
        currency=cmd.currency,
        category=cmd.category,
        created_at=now,
        updated_at=now,
        # What the inventory service will start with; its stock events take over.
        available=sum(v.available for v in variants),
        images=tuple(Image(i.url, i.alt) for i in images),
        options=cmd.options,
        variants=variants,
        tax_class=cmd.tax_class,
    )


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
