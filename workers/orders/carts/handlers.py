"""Cart use cases: load (locked), decide (cart_model.py), save. One transaction per message.

Whose cart a command is about: with an actor, the actor's own cart, found by user
id (a cart id in the command is not consulted); without one, the guest cart the
command names. A member's cart is therefore never reachable by its id, and a guest
command that names a member cart's id finds no guest cart there.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from contracts.carts import AddCartItem, CartView, GetCart, MergeCart, RemoveCartItem, SetCartItem
from kernel.tokens import Actor
from workers.orders.carts.model import CART_ROLES, Cart, CartError, view
from workers.orders.carts.repository import CartRepository
from workers.orders.products.repository import product_snapshot
from workers.runtime.context import HandlerContext
from workers.runtime.errors import DomainError, invalid, not_found

log = logging.getLogger("agora.orders.cart")

# A guest cart untouched this long is deleted (the cookie that names it expires too).
GUEST_CART_DAYS = 30


def _member(actor: Actor | None) -> Actor | None:
    if actor is not None and actor.role not in CART_ROLES:
        raise DomainError("forbidden", "carts belong to people; send the order's lines instead")
    return actor


class CartHandlers:
    """The orders worker's cart handlers and the guest-cart sweeper batch (wired in app.py)."""

    async def get_cart(self, query: GetCart, ctx: HandlerContext) -> CartView:
        repo = CartRepository(ctx.session)
        actor = _member(ctx.actor)
        if actor is not None:
            cart = await repo.member(actor.user_id)
        elif query.cart_id is not None:
            cart = await repo.guest(query.cart_id)
        else:
            cart = None
        return await _view(ctx, cart, cart_id=None if actor else query.cart_id)

    async def add_cart_item(self, cmd: AddCartItem, ctx: HandlerContext) -> CartView:
        async def decide(cart: Cart, now: datetime) -> Cart:
            products = await product_snapshot(ctx.db, [cmd.product_id, *(line.product_id for line in cart.lines)])
            return cart.add(products.get(cmd.product_id), cmd.quantity, products, now, cmd.variant_id)

        return await _change(ctx, cmd.cart_id, decide)

    async def set_cart_item(self, cmd: SetCartItem, ctx: HandlerContext) -> CartView:
        async def decide(cart: Cart, now: datetime) -> Cart:
            products = await product_snapshot(ctx.db, [cmd.product_id])
            return cart.set(cmd.product_id, cmd.quantity, products, cmd.variant_id)

        return await _change(ctx, cmd.cart_id, decide, create=False)

    async def remove_cart_item(self, cmd: RemoveCartItem, ctx: HandlerContext) -> CartView:
        async def decide(cart: Cart, now: datetime) -> Cart:
            return cart.remove(cmd.product_id, await product_snapshot(ctx.db, [cmd.product_id]), cmd.variant_id)

        return await _change(ctx, cmd.cart_id, decide, create=False)

    async def merge_cart(self, cmd: MergeCart, ctx: HandlerContext) -> CartView:
        """Fold the guest cart into the actor's; the guest cart is gone afterwards.

        A repeat (or a guest cart that never existed, or a member cart's id) changes
        nothing and answers with the member's cart as it is.
        """
        actor = _member(ctx.require_actor())
        assert actor is not None
        repo = CartRepository(ctx.session)
        now = datetime.now(UTC)
        member = await repo.member(actor.user_id, lock=True)
        guest = await repo.guest(cmd.guest_cart_id, lock=True)
        if guest is None:  # merged already (perhaps just now, by a concurrent merge)
            return await _view(ctx, member or await repo.member(actor.user_id))
        if member is None:
            member = await repo.open_member(actor.user_id, now)
        products = await product_snapshot(ctx.db, [line.product_id for line in (*member.lines, *guest.lines)])
        merged = member.merged(guest, products, now)
        await repo.save(member, merged, now)
        await repo.delete(guest.cart_id)
        dropped = {line.variant_id for line in guest.lines} - {line.variant_id for line in merged.lines}
        if dropped:
            log.info("guest cart lines not merged", extra={"count": len(dropped)})
        return await _view(ctx, merged)

    async def sweep_guest_carts(self, ctx: HandlerContext, limit: int) -> int:
        """Delete up to `limit` guest carts nobody touched for `GUEST_CART_DAYS` (a background
        batch). Safe in every replica (SKIP LOCKED)."""
        cutoff = datetime.now(UTC) - timedelta(days=GUEST_CART_DAYS)
        gone = await CartRepository(ctx.session).sweep_guests(cutoff, limit)
        if gone:
            log.info("stale guest carts deleted", extra={"count": gone})
        return gone


async def member_cart(ctx: HandlerContext, user_id: UUID) -> CartView:
    """A member's cart as they see it (for their data export)."""
    return await _view(ctx, await CartRepository(ctx.session).member(user_id))


async def delete_member_cart(ctx: HandlerContext, user_id: UUID) -> None:
    """The member's account was erased: their cart goes."""
    await CartRepository(ctx.session).delete_member(user_id)


# --- shared steps -------------------------------------------------------------------------


async def _change(
    ctx: HandlerContext,
    cart_id: UUID | None,
    decide: Callable[[Cart, datetime], Awaitable[Cart]],
    *,
    create: bool = True,
) -> CartView:
    """Lock the caller's cart (made on a first add), apply `decide`, save, answer."""
    repo = CartRepository(ctx.session)
    actor = _member(ctx.actor)
    now = datetime.now(UTC)
    cart: Cart | None
    if actor is not None:
        cart = await repo.open_member(actor.user_id, now) if create else await repo.member(actor.user_id, lock=True)
    elif cart_id is None:
        if create:
            raise invalid("cart_id", "a guest command names its cart")
        cart = None  # a guest without a cart has nothing in it
    else:
        # A member cart's id finds nothing here: to a guest it does not exist.
        cart = await repo.open_guest(cart_id, now) if create else await repo.guest(cart_id, lock=True)
        if cart is None and create:
            raise not_found("cart")
    if cart is None:
        raise DomainError("not_found", "product not in the cart")
    try:
        after = await decide(cart, now)
    except CartError as exc:
        raise DomainError(exc.code, str(exc)) from None
    await repo.save(cart, after, now)
    return await _view(ctx, after)


async def _view(ctx: HandlerContext, cart: Cart | None, *, cart_id: UUID | None = None) -> CartView:
    products = await product_snapshot(ctx.db, [line.product_id for line in cart.lines] if cart else [])
    return view(cart, products, cart_id=cart_id)
