"""Order use cases: load, decide (model.py, saga.py), save, emit and send. One transaction per message.

Every change to a saga goes through `_advance`: the pure transition function decides,
the row is saved with its version check (another replica that got there first makes
this one decide again from the new state), and in the same transaction the status
history, the order events and the commands to inventory and payments go to the outbox.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from functools import cache
from uuid import UUID

from contracts.errors import FieldError
from contracts.inventory import Reservation
from contracts.orders import (
    ORDER_PLACED,
    STATUS_EVENTS,
    GetOrder,
    HistoryEntry,
    ListOrders,
    ListUserOrders,
    OrderPage,
    OrderView,
    PlaceOrder,
    UpdateOrderStatus,
)
from contracts.payments import PaymentResult
from contracts.privacy import ExportUserData, PersonalData
from contracts.users import UserErased, UserUpdated
from kernel.crypto import FieldCipher
from kernel.settings import get_settings
from workers.orders.carts.handlers import delete_member_cart, member_cart
from workers.orders.carts.repository import CartRepository
from workers.orders.orders import model, saga
from workers.orders.orders.model import Order, OrderHead, OrderRefused
from workers.orders.orders.repository import OrdersRepository
from workers.orders.products.repository import product_snapshot
from workers.orders.sales import handlers as sales
from workers.runtime.errors import DomainError, not_found
from workers.runtime.pagination import decode_cursor, encode_cursor
from workers.runtime.service import HandlerContext, WorkerService

log = logging.getLogger("agora.orders")

# Sagas handled per sweeper transaction.
SWEEP_BATCH = 100
# Optimistic-locking retries within one message before it is redelivered.
SAVE_ATTEMPTS = 5


@cache
def cipher() -> FieldCipher:
    settings = get_settings()
    return FieldCipher.from_config(settings.data_keys, settings.data_key_id)


@cache
def saga_config() -> saga.SagaConfig:
    settings = get_settings()
    return saga.SagaConfig(
        reserve_deadline=timedelta(seconds=settings.saga_reserve_deadline_seconds),
        payment_deadline=timedelta(seconds=settings.saga_payment_deadline_seconds),
        retry_after=timedelta(seconds=settings.saga_retry_seconds),
    )


def _repo(ctx: HandlerContext) -> OrdersRepository:
    return OrdersRepository(ctx, cipher())


def _refused(exc: OrderRefused) -> DomainError:
    return DomainError(exc.code, exc.detail, exc.errors)


# --- placing ----------------------------------------------------------------------------


async def place_order(cmd: PlaceOrder, ctx: HandlerContext) -> OrderView:
    """Place the order once per `order_id`, from `items` or (without them) the actor's cart.

    An order from the cart takes the lines it shows at today's prices and empties it in
    the same transaction. The cart is locked before the order is looked up, so a
    concurrent repeat of the request waits and then finds this order, not an empty cart.
    """
    actor = ctx.require_actor()
    repo = _repo(ctx)
    carts = CartRepository(ctx.session)
    try:
        user_id = model.customer(cmd, actor)
        cart = await carts.member(user_id, lock=True) if model.orders_cart(cmd, actor) else None
    except OrderRefused as exc:
        raise _refused(exc) from None
    if await repo.account_closed(user_id):
        # Erased or disabled: a member's own tokens were revoked; this stops a partner.
        raise DomainError("forbidden", "this account is closed: no order can be placed for it")
    digest = model.request_hash(cmd)
    existing = await repo.get(cmd.order_id)
    if existing is None:
        ordered = cmd.items if cmd.items is not None else cart.lines if cart is not None else ()
        products = await product_snapshot(ctx.db, (x.product_id for x in ordered))
        try:
            items = cmd.items if cmd.items is not None else model.cart_items(cart, products)
            lines, currency, total = model.price(items, products)
        except OrderRefused as exc:
            raise _refused(exc) from None
        now = datetime.now(UTC)
        started, sends = saga.start(
            cmd.order_id, model.reservation_lines(lines), total, currency, cmd.payment_token, now, saga_config()
        )
        order = Order(
            order_id=cmd.order_id,
            user_id=user_id,
            placed_by=actor.user_id,
            request_hash=digest,
            currency=currency,
            total_minor=total,
            shipping_address=cmd.shipping_address,
            lines=lines,
            saga=started,
            history=(HistoryEntry(status=started.status, at=now),),
            created_at=now,
            updated_at=now,
        )
        if await repo.add(order):
            if cart is not None:
                await carts.empty(cart.cart_id, now)
            await ctx.emit(ORDER_PLACED, order.placed_event())
            for send in sends:
                await ctx.send(send.spec, send.payload)
            log.info("order placed", extra={"order_id": str(order.order_id), "total_minor": total})
            existing = order  # as written: no need to read it back
        else:
            existing = await repo.get(cmd.order_id)  # a concurrent twin's, committed first
            assert existing is not None
    if existing.placed_by != actor.user_id:
        raise DomainError("conflict", "this order_id belongs to another order")
    if existing.request_hash != digest:
        raise DomainError(
            "validation_failed",
            "this Idempotency-Key (order_id) was used for another request",
            (FieldError(field="Idempotency-Key", message="was used with another body"),),
        )
    return existing.view()


# --- the saga's replies -----------------------------------------------------------------


async def on_reservation(event: Reservation, ctx: HandlerContext) -> None:
    await _advance(ctx, event.order_id, saga.ReservationReply(event.status))


async def on_payment(event: PaymentResult, ctx: HandlerContext) -> None:
    reply = saga.PaymentReply(event.step, event.outcome, event.attempt, event.at)
    await _advance(ctx, event.order_id, reply)


async def _advance(
    ctx: HandlerContext, order_id: UUID, message: saga.Message, order: OrderHead | None = None
) -> OrderHead | None:
    """Put one message through the saga and save what it decided; None if no such order.

    Raises `saga.IllegalTransition` for a status change the order's state refuses.
    """
    repo = _repo(ctx)
    for _ in range(SAVE_ATTEMPTS):
        order = order or await repo.head(order_id)
        if order is None:
            return None  # a reservation or payment some other party made
        now = datetime.now(UTC)
        after, sends = saga.transition(order.saga, message, now, saga_config())
        if after == order.saga and not sends:
            return order
        if not await repo.save_saga(order.saga, after, now):
            order = None  # another replica moved it first: decide again from what it wrote
            continue
        if after.status != order.saga.status:  # save_saga added the history entry
            await sales.on_status_changed(ctx.db, order_id, after.status, now)
            await ctx.emit(STATUS_EVENTS[after.status], order.status_event(after, now))
            log.info(
                "order status changed",
                extra={"order_id": str(order_id), "status": after.status, "reason": after.cancel_reason},
            )
        for send in sends:
            await ctx.send(send.spec, send.payload)
        return replace(order, saga=replace(after, version=order.saga.version + 1))
    raise RuntimeError(f"order {order_id} kept changing under this replica; the message will be redelivered")


# --- reading and moving -----------------------------------------------------------------


async def _visible(ctx: HandlerContext, order_id: UUID) -> Order:
    actor = ctx.require_actor()
    order = await _repo(ctx).get(order_id)
    if order is None or not model.may_see(order, actor):
        raise not_found("order")
    return order


async def get_order(query: GetOrder, ctx: HandlerContext) -> OrderView:
    return (await _visible(ctx, query.order_id)).view()


async def update_order_status(cmd: UpdateOrderStatus, ctx: HandlerContext) -> OrderView:
    order = await _visible(ctx, cmd.order_id)
    try:
        message = model.status_change(order, ctx.require_actor(), cmd.status)
        await _advance(ctx, cmd.order_id, message, order.head)
    except OrderRefused as exc:
        raise _refused(exc) from None
    except saga.IllegalTransition as exc:
        raise DomainError("conflict", str(exc)) from None
    after = await _repo(ctx).get(cmd.order_id)
    assert after is not None
    return after.view()


async def list_user_orders(query: ListUserOrders, ctx: HandlerContext) -> OrderPage:
    actor = ctx.require_actor()
    if actor.role != "admin" and actor.user_id != query.user_id:
        raise not_found("user")
    return await _page(ctx, query.limit, query.cursor, user_id=query.user_id)


async def list_orders(query: ListOrders, ctx: HandlerContext) -> OrderPage:
    """Every order, newest first (admins: the dashboard's order list)."""
    if ctx.require_actor().role != "admin":
        raise DomainError("forbidden", "only admins may list every order")
    placed_from = datetime.combine(query.start, time(), UTC) if query.start else None
    placed_before = datetime.combine(query.end + timedelta(days=1), time(), UTC) if query.end else None
    return await _page(
        ctx, query.limit, query.cursor, status=query.status, placed_from=placed_from, placed_before=placed_before
    )


async def _page(
    ctx: HandlerContext,
    limit: int,
    cursor: str | None,
    *,
    user_id: UUID | None = None,
    status: str | None = None,
    placed_from: datetime | None = None,
    placed_before: datetime | None = None,
) -> OrderPage:
    """One keyset page of orders, newest first (one row more than asked tells if there is a next)."""
    after = decode_cursor(cursor) if cursor else None
    found = await _repo(ctx).listing(
        user_id=user_id,
        status=status,
        placed_from=placed_from,
        placed_before=placed_before,
        limit=limit + 1,
        after=after,
    )
    page = found[:limit]
    return OrderPage(
        items=tuple(o.view() for o in page),
        next_cursor=encode_cursor(page[-1].created_at, page[-1].order_id) if len(found) > limit else None,
    )


# --- personal data ----------------------------------------------------------------------


async def export_user_data(query: ExportUserData, ctx: HandlerContext) -> PersonalData:
    """A member's orders (shipping addresses opened) and cart: for the member or an admin.

    Anyone else gets "not found", like the users service's answer for the same request.
    """
    actor = ctx.require_actor()
    if actor.role != "admin" and actor.user_id != query.user_id:
        raise not_found("user")
    placed = await _repo(ctx).listing(user_id=query.user_id)
    data = {
        "orders": [order.view().model_dump(mode="json") for order in placed],
        "cart": (await member_cart(ctx, query.user_id)).model_dump(mode="json"),
    }
    return PersonalData(service="orders", data=data)


async def on_user_erased(event: UserErased, ctx: HandlerContext) -> None:
    """Anonymise an erased member: open orders are cancelled (as by the customer: released
    or voided, or refunded with the stock returned), every order loses its shipping
    address, the cart is deleted. The orders stay, under the pseudonymous id, for accounting.
    """
    repo = _repo(ctx)
    await repo.close_account(event.user_id, "erased", event.erased_at)
    for order_id in await repo.open_for_user(event.user_id):
        with contextlib.suppress(saga.IllegalTransition):  # shipped meanwhile: it is on its way
            await _advance(ctx, order_id, saga.Cancel("customer_request"))
    erased = await repo.erase_addresses(event.user_id)
    await delete_member_cart(ctx, event.user_id)
    log.info("erased customer's orders anonymised", extra={"orders": erased})


async def on_user_updated(event: UserUpdated, ctx: HandlerContext) -> None:
    """Keep which accounts are disabled: no order is placed for them until enabled again."""
    if event.disabled is None or "disabled" not in event.changed:
        return
    repo = _repo(ctx)
    if event.disabled:
        await repo.close_account(event.user_id, "disabled", event.updated_at)
    else:
        await repo.reopen_account(event.user_id)


# --- the sweeper ------------------------------------------------------------------------


async def sweep_deadlines(service: WorkerService) -> None:
    """Fire `Timeout` for sagas past their deadline. Safe in every replica at once:
    each batch is claimed with SKIP LOCKED."""
    while await _sweep_batch(service) == SWEEP_BATCH:
        pass


async def _sweep_batch(service: WorkerService) -> int:
    async with service.unit_of_work() as ctx:
        due = await OrdersRepository(ctx, cipher()).due_for_update(datetime.now(UTC), SWEEP_BATCH)
        for order_id in due:
            await _advance(ctx, order_id, saga.Timeout())
        if due:
            log.info("saga deadlines fired", extra={"count": len(due)})
        return len(due)
