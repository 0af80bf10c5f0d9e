"""Catalog service contracts: products, categories, search.

The events here are what other services build on (inventory creates a stock record
from `product_created`; the edge cache drops what an event says changed).

Prices are decimal strings here (`"19.99"`) and integer minor units in storage and
in events (`price_minor`); `contracts/money.py` converts between the two.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from contracts.base import WHOLE, Contract, not_null
from contracts.errors import invalid_input
from contracts.money import CurrencyCode, MoneyError, to_decimal, to_minor
from contracts.taxes import DEFAULT_TAX_CLASS, TaxClass
from contracts.topology import CommandSpec, EventSpec


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and a lone surrogate is not UTF-8: refuse both
    # here (422) rather than fail in the database (500).
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


# A search is at most this many words (operators and phrases included).
MAX_SEARCH_WORDS = 16
_PUNCTUATION_RUN = re.compile(r"([^\w\s])[^\w\s]+")


def _search(value: str) -> str:
    """Bound what reaches `websearch_to_tsquery`: PostgreSQL fails ("tsquery stack too
    small") past about 32 operators in a row, and every `-` is one. Each run of
    punctuation keeps its first character (`---a` is `-a`, `a-!-!-b` is `a-b`) and there
    are at most MAX_SEARCH_WORDS words, so no query can nest deeper than that."""
    value = _PUNCTUATION_RUN.sub(r"\1", _text(value))
    if len(value.split()) > MAX_SEARCH_WORDS:
        raise ValueError(f"at most {MAX_SEARCH_WORDS} words")
    return value


def _amount(value: str) -> str:
    try:
        to_decimal(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None
    return value


Slug = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$"),
    Field(description="Lowercase letters, digits and single hyphens, e.g. `audio-headphones`"),
]
# `\S`: not blank (the value is stripped; a name of only spaces would be empty).
ProductName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"\S"), AfterValidator(_text)
]
Description = Annotated[str, StringConstraints(max_length=5000), AfterValidator(_text)]
ImageUrl = Annotated[
    str, StringConstraints(max_length=2048, pattern=r"^https?://[^\s/?#]+[^\s]*$"), AfterValidator(_text)
]
# Up to 12 digits and 3 decimals; how many decimals a price may have is its currency's.
_AMOUNT = r"^\d{1,12}(?:\.\d{1,3})?$"
Price = Annotated[
    str,
    StringConstraints(max_length=32, pattern=_AMOUNT),
    Field(description='A decimal string in the currency\'s major unit, e.g. `"19.99"`', examples=["19.99"]),
]
PriceBound = Annotated[str, StringConstraints(max_length=32, pattern=_AMOUNT), AfterValidator(_amount)]
CategoryName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"\S"), AfterValidator(_text)
]
SearchText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(_search)]
Sort = Literal["relevance", "price_asc", "price_desc", "newest"]


def _price_in(price: str | None, info: ValidationInfo) -> str | None:
    """The price checked against the currency sent with it (declared before it)."""
    code = info.data.get("currency")
    if price is not None and code is not None:
        try:
            to_minor(price, code)
        except MoneyError as exc:
            raise ValueError(str(exc)) from None
    return price


# --- options, variants, images (issue 17) ---------------------------------------------------

MAX_OPTIONS = 3
MAX_OPTION_VALUES = 100
MAX_VARIANTS = 100
MAX_IMAGES = 20
MAX_STOCK_AT_LISTING = 1_000_000
# A shopper sees "low" at this many or fewer (and "out_of_stock" at none); the exact
# count only the product's seller and admins (docs/decisions.md).
LOW_STOCK_SHOWN = 5

OptionName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"\S"), AfterValidator(_text)
]
OptionValue = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60, pattern=r"\S"), AfterValidator(_text)
]
Sku = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"),
    Field(
        description="The seller's stock-keeping unit: unique among the seller's live variants", examples=["TEE-M-RED"]
    ),
]
WeightGrams = Annotated[int, Field(ge=0, le=1_000_000, description="Shipping weight in grams"), WHOLE]
InitialStock = Annotated[int, Field(ge=0, le=MAX_STOCK_AT_LISTING), WHOLE]
# https only: a shop served over https shows no mixed content. The server never fetches it.
HttpsUrl = Annotated[
    str, StringConstraints(max_length=2048, pattern=r"^https://[^\s/?#]+[^\s]*$"), AfterValidator(_text)
]
AltText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(_text)]
Availability = Literal["in_stock", "low", "out_of_stock"]


class ProductOption(Contract):
    """One way the variants of a product differ (`size`: `S`, `M`, `L`)."""

    name: OptionName
    values: tuple[OptionValue, ...] = Field(min_length=1, max_length=MAX_OPTION_VALUES)

    @field_validator("values")
    @classmethod
    def _distinct(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for value in values:
            if value.casefold() in seen:
                raise ValueError(f"{value!r} is listed twice")
            seen.add(value.casefold())
        return values


class ProductImage(Contract):
    """An image of the product, by URL: stored and shown, never fetched by the server."""

    url: HttpsUrl
    alt: AltText = Field(default="", description="What the image shows, for screen readers")


# The bounds inside the type: on a field that may also be None they would be applied to None.
Images = Annotated[tuple[ProductImage, ...], Field(max_length=MAX_IMAGES)]
Options = Annotated[tuple[ProductOption, ...], Field(max_length=MAX_OPTIONS)]


class NewVariant(Contract):
    """A variant at listing: its option values (one per option of the product), price, stock."""

    sku: Sku | None = None
    options: dict[OptionName, OptionValue] = Field(
        default_factory=dict,
        max_length=MAX_OPTIONS,
        description="Option name → value; `{}` for a product without options",
    )
    price: Price | SkipJsonSchema[None] = Field(default=None, description="By default the product's `price`")
    compare_at_price: Price | None = Field(
        default=None, description="The former price, shown struck out; above `price`"
    )
    weight_grams: WeightGrams | None = None
    stock: InitialStock = Field(default=0, description="Initial stock, handed to the inventory service")

    _not_null = field_validator("price")(not_null)


NewVariants = Annotated[tuple[NewVariant, ...], Field(min_length=1, max_length=MAX_VARIANTS)]


def variant_problems(
    options: tuple[ProductOption, ...],
    variants: list[tuple[tuple[str | int, ...], dict[str, str]]],
) -> list[tuple[tuple[str | int, ...], str]]:
    """What is wrong with variants' option values under `options` (each variant named by
    its place in the request): exactly the product's option names, allowed values, and no
    two variants alike. Also what the catalog checks when a variant is added."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    names = [o.name for o in options]
    allowed = {o.name: set(o.values) for o in options}
    seen: set[tuple[str, ...]] = set()
    for loc, chosen in variants:
        if set(chosen) != set(names):
            if names:
                problems.append(((*loc, "options"), f"must give a value for each option: {', '.join(names)}"))
            else:
                problems.append(((*loc, "options"), "must be empty: the product has no options"))
            continue
        bad = [name for name in names if chosen[name] not in allowed[name]]
        if bad:
            problems.append(((*loc, "options", bad[0]), f"must be one of {', '.join(sorted(allowed[bad[0]]))}"))
            continue
        combination = tuple(chosen[name] for name in names)
        if combination in seen:
            problems.append(((*loc, "options"), "another variant has the same option values"))
        seen.add(combination)
    return problems


def _money_problems(
    loc: tuple[str | int, ...], price: str | None, compare_at: str | None, code: str
) -> list[tuple[tuple[str | int, ...], str]]:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    minor = None
    for field, amount in (("price", price), ("compare_at_price", compare_at)):
        if amount is None:
            continue
        try:
            value = to_minor(amount, code)
        except MoneyError as exc:
            problems.append(((*loc, field), str(exc)))
            continue
        if field == "price":
            minor = value
        elif minor is not None and value <= minor:
            problems.append(((*loc, field), "must be more than the price"))
    return problems


class CreateProduct(Contract):
    """A product, with its variants. Without `options` it has one default variant (whose id
    is the product's), made from `price` and `stock` unless `variants` describes it."""

    name: ProductName
    description: Description = ""
    currency: CurrencyCode
    price: Price | SkipJsonSchema[None] = Field(
        default=None,
        description='A decimal string in the currency\'s major unit, e.g. `"19.99"`; the default price of the '
        "variants (required unless each variant has its own)",
        examples=["19.99"],
    )
    category: Slug
    image_url: ImageUrl | None = Field(
        default=None, description="One image (kept for older clients): `images` says more"
    )
    images: Images | SkipJsonSchema[None] = Field(default=None, description="In order, the first the main one")
    stock: InitialStock = Field(
        default=0, description="Initial stock of the default variant (a product without variants)"
    )
    options: Options = ()
    tax_class: TaxClass = DEFAULT_TAX_CLASS
    variants: NewVariants | SkipJsonSchema[None] = Field(
        default=None,
        description="Required with `options`: one per combination sold. Without options, at most one (the default)",
    )

    _price = field_validator("price")(_price_in)

    _not_null = field_validator("price", "images", "variants")(not_null)

    @model_validator(mode="after")
    def _consistent(self) -> CreateProduct:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        names = [o.name.casefold() for o in self.options]
        if len(set(names)) != len(names):
            problems.append((("options",), "two options have the same name"))
        if self.images is not None and self.image_url is not None:
            problems.append((("image_url",), "send either image_url or images, not both"))
        if self.variants is None:
            if self.options:
                problems.append((("variants",), "required when the product has options"))
            if self.price is None:
                problems.append((("price",), "required"))
        else:
            if "stock" in self.model_fields_set:
                problems.append((("stock",), "give each variant its own stock"))
            if not self.options and len(self.variants) > 1:
                problems.append((("variants",), "a product without options has one variant"))
            if self.price is None and any(v.price is None for v in self.variants):
                problems.append((("price",), "required unless every variant has its own price"))
            problems += variant_problems(
                self.options, [(("variants", i), dict(v.options)) for i, v in enumerate(self.variants)]
            )
            skus: set[str] = set()
            for i, variant in enumerate(self.variants):
                problems += _money_problems(
                    ("variants", i), variant.price or self.price, variant.compare_at_price, self.currency
                )
                if variant.sku is not None:
                    if variant.sku in skus:
                        problems.append((("variants", i, "sku"), "another variant has this SKU"))
                    skus.add(variant.sku)
        if problems:
            raise invalid_input(type(self).__name__, problems)
        return self


class UpdateProduct(Contract):
    """A partial update: only the fields present change; `image_url: null` removes the image.

    A new `currency` must come with a `price` in it; a `price` alone is in the
    product's current currency.
    """

    product_id: UUID
    # `| SkipJsonSchema[None]`: absent is allowed, null is not (the documents say so too).
    name: ProductName | SkipJsonSchema[None] = None
    description: Description | SkipJsonSchema[None] = None
    currency: CurrencyCode | SkipJsonSchema[None] = None
    price: Price | SkipJsonSchema[None] = None
    category: Slug | SkipJsonSchema[None] = None
    image_url: ImageUrl | None = Field(
        default=None, description="Replaces every image with this one; null removes them"
    )
    images: Images | SkipJsonSchema[None] = Field(
        default=None, description="The whole list, in order (the first the main one); [] for none"
    )
    options: Options | SkipJsonSchema[None] = Field(
        default=None,
        description="The same option names in the same order, with values added or taken away (a value a live "
        "variant has stays)",
    )
    tax_class: TaxClass | SkipJsonSchema[None] = None

    _not_null = field_validator(
        "name", "description", "currency", "price", "category", "images", "options", "tax_class"
    )(not_null)

    _price = field_validator("price")(_price_in)

    @model_validator(mode="after")
    def _one_way_to_images(self) -> UpdateProduct:
        if "images" in self.model_fields_set and "image_url" in self.model_fields_set:
            raise invalid_input(type(self).__name__, [(("image_url",), "send either image_url or images, not both")])
        return self


class GetProduct(Contract):
    product_id: UUID


class DeleteProduct(Contract):
    product_id: UUID


class SearchProducts(Contract):
    """Search and browse. Without `q`, `relevance` orders like `newest`.

    Prices are never compared across currencies (the catalog does not convert them): a
    price filter or a price order needs `currency`, and then covers that currency's
    products only.
    """

    q: SearchText | None = Field(
        default=None,
        description="Words, matched in names and descriptions; an unknown word is corrected to known ones "
        "(one typo from 4 letters, two from 8; a swap of two letters is one typo; words with digits exactly); "
        'the last word also matches as a prefix. With `"a phrase"`, `-excluded` or `or`: exactly as written',
    )
    category: Slug | None = Field(default=None, description="A category slug; its subcategories are included")
    min_price: PriceBound | None = Field(default=None, description="The lowest price, in `currency` (required)")
    max_price: PriceBound | None = Field(default=None, description="The highest price, in `currency` (required)")
    currency: CurrencyCode | None = Field(
        default=None, description="Only products priced in this currency; required by a price filter or order"
    )
    seller_id: UUID | None = None
    in_stock: bool | None = Field(default=None, description="true: only products with stock available")
    sort: Sort = "relevance"
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Annotated[str, StringConstraints(max_length=512)] | None = Field(
        default=None, description="`next_cursor` of the previous page (same query and sort)"
    )

    @model_validator(mode="after")
    def _one_currency(self) -> SearchProducts:
        if self.currency is None and (
            self.min_price is not None or self.max_price is not None or self.sort in ("price_asc", "price_desc")
        ):
            message = "is required with a price filter or a price order (prices of two currencies never compare)"
            raise invalid_input("SearchProducts", [(("currency",), message)])
        return self


class ImageView(Contract):
    url: str
    alt: str


class VariantView(Contract):
    variant_id: UUID = Field(description="The default variant of a product without options has the product's id")
    sku: str | None
    options: dict[str, str] = Field(description="Option name → value; `{}` for the default variant")
    label: str = Field(description='The option values for display, e.g. `"M / Red"`; `""` for the default variant')
    price: str = Field(examples=["19.99"])
    compare_at_price: str | None = Field(default=None, description="The former price, shown struck out")
    weight_grams: int | None = None
    availability: Availability = Field(
        description=f"`low`: {LOW_STOCK_SHOWN} or fewer left. From the inventory service, a moment behind it"
    )
    stock: int | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="Available to sell: to the product's seller and admins only",
    )


class ProductView(Contract):
    product_id: UUID
    seller_id: UUID
    name: str
    description: str
    price: str = Field(examples=["19.99"], description='The lowest price of its variants ("from")')
    currency: str
    category: str
    image_url: str | None = Field(description="The main image's URL (the first of `images`)")
    created_at: datetime
    updated_at: datetime
    images: tuple[ImageView, ...] = ()
    options: tuple[ProductOption, ...] = ()
    variants: tuple[VariantView, ...] = ()
    availability: Availability = Field(
        default="out_of_stock", description="`in_stock` if any variant is, else `low` if any is, else `out_of_stock`"
    )
    tax_class: str = Field(default=DEFAULT_TAX_CLASS, description="Which tax rates apply to it")


class AddVariant(Contract):
    """A new variant of a product with options (its option values must be a new combination)."""

    product_id: UUID
    sku: Sku | None = None
    options: dict[OptionName, OptionValue] = Field(max_length=MAX_OPTIONS, description="Option name → value")
    price: Price
    compare_at_price: Price | None = None
    weight_grams: WeightGrams | None = None
    stock: InitialStock = Field(default=0, description="Initial stock, handed to the inventory service")


class UpdateVariant(Contract):
    """A partial update of a variant: only the fields present change; null removes an optional one."""

    product_id: UUID
    variant_id: UUID
    sku: Sku | None = None
    price: Price | SkipJsonSchema[None] = None
    compare_at_price: Price | None = None
    weight_grams: WeightGrams | None = None

    _not_null = field_validator("price")(not_null)


class WithdrawVariant(Contract):
    """Stop selling one variant (not the last one: withdraw the product instead)."""

    product_id: UUID
    variant_id: UUID


class CategoryCount(Contract):
    category: str = Field(description="A category's slug")
    count: int = Field(description="Matching products in it and its subcategories")


class PriceBandCount(Contract):
    currency: str
    min: str = Field(description="The band's lowest price, included", examples=["10.00"])
    max: str | None = Field(description="The price the band ends below; null: no upper end", examples=["25.00"])
    count: int


class SearchFacets(Contract):
    """Counts over everything the search matched (not only the page). Exact for a text
    search in relevance order (every match is ranked anyway) and for up to 1,000 matches;
    otherwise `exact` is false, `total` is PostgreSQL's estimate and the counts are those of
    the first 1,000 matches found, scaled to it."""

    total: int = Field(description="How many products match (an estimate when `exact` is false)")
    exact: bool
    categories: tuple[CategoryCount, ...] = Field(description="Per category (a parent counts its subtree), most first")
    price_bands: tuple[PriceBandCount, ...] = Field(description="Per currency and price band, cheapest first")


FACETS_EXACT_UP_TO = 1000


class ProductPage(Contract):
    items: tuple[ProductView, ...]
    next_cursor: str | None
    facets: SearchFacets | None = Field(default=None, description="On a first page (no `cursor`) only")


SuggestText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(_search)
]


class SuggestProducts(Contract):
    """Autocomplete: product names for what a shopper is typing."""

    q: SuggestText = Field(
        description="What has been typed so far: complete words (corrected as in a search) and the start "
        "of the last word (from 2 letters)"
    )
    limit: int = Field(default=8, ge=1, le=10, description="At most this many names")


class Suggestion(Contract):
    product_id: UUID
    name: str


class Suggestions(Contract):
    items: tuple[Suggestion, ...] = Field(description="Names containing every word, the exact matches first")


class ListCategories(Contract):
    pass


class CreateCategory(Contract):
    slug: Slug
    name: CategoryName
    parent: Slug | None = Field(default=None, description="The parent category's slug; none for a top-level one")


class UpdateCategory(Contract):
    """Rename or move a category (its subtree moves with it). `parent: null` makes it top-level."""

    slug: Slug
    name: CategoryName | SkipJsonSchema[None] = None
    parent: Slug | None = None

    _not_null = field_validator("name")(not_null)


class DeleteCategory(Contract):
    slug: Slug


class CategoryView(Contract):
    slug: str
    name: str
    parent: str | None


class CategoryNode(Contract):
    slug: str
    name: str
    parent: str | None
    children: tuple[CategoryNode, ...] = ()


class CategoryTree(Contract):
    items: tuple[CategoryNode, ...]


class VariantDetails(Contract):
    """A variant as the catalog's events carry it (prices in the product's currency)."""

    variant_id: UUID
    sku: str | None = None
    options: dict[str, str] = Field(default_factory=dict)
    label: str = Field(default="", description='The option values for display, e.g. `"M / Red"`')
    price_minor: int
    compare_at_minor: int | None = None
    weight_grams: int | None = None


class CreatedVariant(VariantDetails):
    initial_stock: int = 0


class ProductCreated(Contract):
    """`price_minor` is the lowest of its variants' prices; `initial_stock` their sum."""

    product_id: UUID
    seller_id: UUID
    name: str
    category: str
    price_minor: int
    currency: str
    initial_stock: int
    created_at: datetime
    options: tuple[str, ...] = Field(default=(), description="The names of its options; none: one default variant")
    variants: tuple[CreatedVariant, ...] = Field(
        default=(),
        description="Absent (from an older publisher): one default variant whose id is the product's, at "
        "`price_minor` with `initial_stock`",
    )
    image_url: str | None = Field(
        default=None, description="The main image's URL (the first of its images); null: none"
    )
    tax_class: str = Field(default=DEFAULT_TAX_CLASS, description="Absent (an older publisher): `standard`")


class VariantAdded(Contract):
    product_id: UUID
    seller_id: UUID
    currency: str
    variant: CreatedVariant
    at: datetime


class VariantUpdated(Contract):
    product_id: UUID
    seller_id: UUID
    currency: str
    variant: VariantDetails = Field(description="The variant after the change")
    changed: tuple[str, ...]
    at: datetime


class VariantWithdrawn(Contract):
    product_id: UUID
    seller_id: UUID
    variant_id: UUID
    at: datetime


class AvailabilityChanged(Contract):
    """What shoppers are shown of a variant's stock changed, as the catalog has recorded it:
    its `availability` moved between `in_stock`, `low` and `out_of_stock` (the product's
    follows from its variants'). A stock change that leaves it as it was is not announced."""

    product_id: UUID
    variant_id: UUID = Field(description="The variant whose stock changed (the product's id for its default variant)")
    availability: Availability = Field(description="The variant's, now")
    at: datetime = Field(description="When the inventory service recorded the change")


class ProductUpdated(Contract):
    product_id: UUID
    seller_id: UUID
    changed: tuple[str, ...]
    updated_at: datetime
    # The price after the change (present whatever changed), for services that quote it.
    price_minor: int | None = None
    currency: str | None = None
    # The name after the change (present whatever changed), for services that show it.
    name: str | None = None
    # The main image's URL after the change (present whatever changed; null: it has none,
    # or, without "images" in `changed`, an older publisher that did not say).
    image_url: str | None = None
    # The tax class after the change (None: an older publisher that did not say).
    tax_class: str | None = None
    # The category's slug after the change (None: an older publisher that did not say).
    category: str | None = None


class ProductDeleted(Contract):
    product_id: UUID
    seller_id: UUID
    deleted_at: datetime


class CategoryChanged(Contract):
    """The category tree changed (a category was added, renamed, moved or removed)."""

    slug: str
    change: Literal["created", "updated", "deleted"]
    at: datetime


CREATE_PRODUCT = CommandSpec(
    "catalog",
    "create_product",
    1,
    CreateProduct,
    ProductView,
    requires_actor=True,
    summary="List a product (a seller or an admin); it belongs to the actor.",
)
GET_PRODUCT = CommandSpec("catalog", "get_product", 1, GetProduct, ProductView, kind="query", summary="Read a product.")
UPDATE_PRODUCT = CommandSpec(
    "catalog",
    "update_product",
    1,
    UpdateProduct,
    ProductView,
    requires_actor=True,
    summary="Change a product: its seller or an admin; only the fields sent change.",
)
DELETE_PRODUCT = CommandSpec(
    "catalog",
    "delete_product",
    1,
    DeleteProduct,
    None,
    requires_actor=True,
    summary="Withdraw a product (its seller or an admin); later reads are 404, the record stays.",
)
SEARCH_PRODUCTS = CommandSpec(
    "catalog",
    "search_products",
    1,
    SearchProducts,
    ProductPage,
    kind="query",
    summary="Search and browse products: full text with typo tolerance, filters, keyset pages.",
)
SUGGEST_PRODUCTS = CommandSpec(
    "catalog",
    "suggest_products",
    1,
    SuggestProducts,
    Suggestions,
    kind="query",
    summary="Autocomplete: a few product names for a prefix, typos in complete words forgiven.",
)
LIST_CATEGORIES = CommandSpec(
    "catalog", "list_categories", 1, ListCategories, CategoryTree, kind="query", summary="The category tree."
)
CREATE_CATEGORY = CommandSpec(
    "catalog", "create_category", 1, CreateCategory, CategoryView, requires_actor=True, summary="Admin: add a category."
)
UPDATE_CATEGORY = CommandSpec(
    "catalog",
    "update_category",
    1,
    UpdateCategory,
    CategoryView,
    requires_actor=True,
    summary="Admin: rename or move a category.",
)
DELETE_CATEGORY = CommandSpec(
    "catalog",
    "delete_category",
    1,
    DeleteCategory,
    None,
    requires_actor=True,
    summary="Admin: remove a category that has no subcategories and no products.",
)

ADD_VARIANT = CommandSpec(
    "catalog",
    "add_variant",
    1,
    AddVariant,
    ProductView,
    requires_actor=True,
    summary="Add a variant to a product with options (its seller or an admin).",
)
UPDATE_VARIANT = CommandSpec(
    "catalog",
    "update_variant",
    1,
    UpdateVariant,
    ProductView,
    requires_actor=True,
    summary="Change a variant's SKU, price, compare-at price or weight (the product's seller or an admin).",
)
WITHDRAW_VARIANT = CommandSpec(
    "catalog",
    "withdraw_variant",
    1,
    WithdrawVariant,
    ProductView,
    requires_actor=True,
    summary="Stop selling a variant, not the product's last one (its seller or an admin).",
)

PRODUCT_CREATED = EventSpec("catalog", "product_created", 1, ProductCreated, summary="A product was listed.")
PRODUCT_UPDATED = EventSpec("catalog", "product_updated", 1, ProductUpdated, summary="A product changed.")
PRODUCT_DELETED = EventSpec("catalog", "product_deleted", 1, ProductDeleted, summary="A product was withdrawn.")
CATEGORY_CHANGED = EventSpec("catalog", "category_changed", 1, CategoryChanged, summary="The category tree changed.")
VARIANT_ADDED = EventSpec("catalog", "variant_added", 1, VariantAdded, summary="A variant was added to a product.")
VARIANT_UPDATED = EventSpec("catalog", "variant_updated", 1, VariantUpdated, summary="A variant changed.")
VARIANT_WITHDRAWN = EventSpec("catalog", "variant_withdrawn", 1, VariantWithdrawn, summary="A variant was withdrawn.")
AVAILABILITY_CHANGED = EventSpec(
    "catalog",
    "availability_changed",
    1,
    AvailabilityChanged,
    summary="What shoppers see of a variant's stock changed (in stock, low, out of stock), as the catalog recorded it.",
)

COMMANDS: tuple[CommandSpec, ...] = (
    CREATE_PRODUCT,
    GET_PRODUCT,
    UPDATE_PRODUCT,
    DELETE_PRODUCT,
    SEARCH_PRODUCTS,
    SUGGEST_PRODUCTS,
    LIST_CATEGORIES,
    CREATE_CATEGORY,
    UPDATE_CATEGORY,
    DELETE_CATEGORY,
    ADD_VARIANT,
    UPDATE_VARIANT,
    WITHDRAW_VARIANT,
)
EVENTS = (
    PRODUCT_CREATED,
    PRODUCT_UPDATED,
    PRODUCT_DELETED,
    CATEGORY_CHANGED,
    VARIANT_ADDED,
    VARIANT_UPDATED,
    VARIANT_WITHDRAWN,
    AVAILABILITY_CHANGED,
)
