"""Cart contracts (orders service): guest and member carts, and merging one into the other.

A guest's cart is named by `cart_id`, a random UUID the edge issues (cookie
`agora_cart` or header `X-Cart-Id`); it is the only thing that proves the cart is
the caller's, so it must be unguessable. A member's cart is found by the actor's
user id alone: with an actor the worker never looks a cart up by id, so knowing a
member cart's id gives nobody access to it.

Prices are not stored in a cart: every read quotes each product's current price
from the orders service's product read model (kept from catalog events), so the cart
always shows what checkout would charge now.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field

from contracts.base import WHOLE, Contract
from contracts.topology import CommandSpec

# Per product per cart: a shop's cart, not a wholesale order.
MAX_QUANTITY = 99

Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY, description=f"1 to {MAX_QUANTITY}"), WHOLE]
VariantId = Annotated[
    UUID | None,
    Field(
        description="The variant; absent: the product's default variant (a product with options needs one: "
        "without it the command is refused)"
    ),
]
GuestCartId = Annotated[
    UUID | None,
    Field(description="A guest's cart (from the edge); not consulted when the command has an actor"),
]


class GetCart(Contract):
    cart_id: GuestCartId = None


class AddCartItem(Contract):
    """Add `quantity` of a product's variant (to the line already there, if any)."""

    cart_id: GuestCartId = None
    product_id: UUID
    variant_id: VariantId = None
    quantity: Quantity = 1


class SetCartItem(Contract):
    """Set the quantity of a product's variant already in the cart."""

    cart_id: GuestCartId = None
    product_id: UUID
    variant_id: VariantId = None
    quantity: Quantity


class RemoveCartItem(Contract):
    cart_id: GuestCartId = None
    product_id: UUID
    variant_id: VariantId = None


class CartItemQuery(Contract):
    """The query string of `PUT` and `DELETE /api/cart/items/{productId}`."""

    variant_id: VariantId = None


class MergeCart(Contract):
    """Move a guest cart into the actor's cart: quantities add (capped), the guest cart goes.

    Unknown or already merged guest carts (and ids of member carts) change nothing.
    """

    guest_cart_id: UUID


class CartItem(Contract):
    product_id: UUID
    variant_id: UUID
    name: str
    sku: str | None = None
    variant: str = Field(default="", description='The variant\'s option values, e.g. `"M / Red"`; `""` for none')
    quantity: int
    unit_price: str = Field(description="The variant's current price, a decimal string", examples=["19.99"])


class CartView(Contract):
    cart_id: UUID | None = Field(description="The cart's id; null before anything was added")
    items: tuple[CartItem, ...]
    total: str | None = Field(
        description='Sum of the lines at current prices, e.g. `"39.98"`; null only if a seller changed a '
        "product's currency so that the lines no longer share one",
        examples=["39.98"],
    )
    currency: str | None = Field(description="The currency of every line; null for an empty cart")
    unavailable: tuple[UUID, ...] = Field(
        default=(),
        description="Variants in the cart that were withdrawn from sale (or whose product was): not shown, not "
        "counted. The default variant's id is its product's",
    )


GET_CART = CommandSpec(
    "orders", "get_cart", 1, GetCart, CartView, kind="query", summary="Read a cart (the actor's, or a guest's by id)."
)
ADD_CART_ITEM = CommandSpec("orders", "add_cart_item", 1, AddCartItem, CartView, summary="Add a product to a cart.")
SET_CART_ITEM = CommandSpec(
    "orders", "set_cart_item", 1, SetCartItem, CartView, summary="Change the quantity of a product in a cart."
)
REMOVE_CART_ITEM = CommandSpec(
    "orders", "remove_cart_item", 1, RemoveCartItem, CartView, summary="Take a product out of a cart."
)
MERGE_CART = CommandSpec(
    "orders",
    "merge_cart",
    1,
    MergeCart,
    CartView,
    requires_actor=True,
    summary="Merge a guest cart into the actor's cart (at sign-in).",
)

COMMANDS: tuple[CommandSpec, ...] = (GET_CART, ADD_CART_ITEM, SET_CART_ITEM, REMOVE_CART_ITEM, MERGE_CART)
