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

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo, field_validator
from pydantic.json_schema import SkipJsonSchema

from contracts.base import WHOLE, Contract
from contracts.money import CurrencyCode, MoneyError, to_decimal, to_minor
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


class CreateProduct(Contract):
    name: ProductName
    description: Description = ""
    currency: CurrencyCode
    price: Price
    category: Slug
    image_url: ImageUrl | None = None
    stock: Annotated[int, Field(ge=0, le=1_000_000), WHOLE] = Field(
        default=0, description="Initial stock, handed to the inventory service"
    )

    _price = field_validator("price")(_price_in)


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
    image_url: ImageUrl | None = None

    @field_validator("name", "description", "currency", "price", "category")
    @classmethod
    def _not_null(cls, value: str | None) -> str | None:
        if value is None:  # only an explicit null reaches here: defaults are not validated
            raise ValueError("must not be null")
        return value

    _price = field_validator("price")(_price_in)


class GetProduct(Contract):
    product_id: UUID


class DeleteProduct(Contract):
    product_id: UUID


class SearchProducts(Contract):
    """Search and browse. Without `q`, `relevance` orders like `newest`.

    Prices are compared as amounts in each product's own currency (the catalog does
    not convert currencies): filter by `currency` to compare like with like.
    """

    q: SearchText | None = Field(
        default=None, description='Web-search syntax: words, `"a phrase"`, `-excluded`, `or`; typos tolerated'
    )
    category: Slug | None = Field(default=None, description="A category slug; its subcategories are included")
    min_price: PriceBound | None = None
    max_price: PriceBound | None = None
    currency: CurrencyCode | None = None
    seller_id: UUID | None = None
    in_stock: bool | None = Field(default=None, description="true: only products with stock available")
    sort: Sort = "relevance"
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Annotated[str, StringConstraints(max_length=512)] | None = Field(
        default=None, description="`next_cursor` of the previous page (same query and sort)"
    )


class ProductView(Contract):
    product_id: UUID
    seller_id: UUID
    name: str
    description: str
    price: str = Field(examples=["19.99"])
    currency: str
    category: str
    image_url: str | None
    created_at: datetime
    updated_at: datetime


class ProductPage(Contract):
    items: tuple[ProductView, ...]
    next_cursor: str | None


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

    @field_validator("name")
    @classmethod
    def _not_null(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("must not be null")
        return value


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


class ProductCreated(Contract):
    product_id: UUID
    seller_id: UUID
    name: str
    category: str
    price_minor: int
    currency: str
    initial_stock: int
    created_at: datetime


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

PRODUCT_CREATED = EventSpec("catalog", "product_created", 1, ProductCreated, summary="A product was listed.")
PRODUCT_UPDATED = EventSpec("catalog", "product_updated", 1, ProductUpdated, summary="A product changed.")
PRODUCT_DELETED = EventSpec("catalog", "product_deleted", 1, ProductDeleted, summary="A product was withdrawn.")
CATEGORY_CHANGED = EventSpec("catalog", "category_changed", 1, CategoryChanged, summary="The category tree changed.")

COMMANDS: tuple[CommandSpec, ...] = (
    CREATE_PRODUCT,
    GET_PRODUCT,
    UPDATE_PRODUCT,
    DELETE_PRODUCT,
    SEARCH_PRODUCTS,
    LIST_CATEGORIES,
    CREATE_CATEGORY,
    UPDATE_CATEGORY,
    DELETE_CATEGORY,
)
EVENTS = (PRODUCT_CREATED, PRODUCT_UPDATED, PRODUCT_DELETED, CATEGORY_CHANGED)
