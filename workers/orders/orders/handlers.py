"""Order use cases: load, decide (model.py, saga.py), save, emit and send. One transaction per message.

Every change to a saga goes through `_advance`: the pure transition function decides,
the row is saved with its version check (another replica that got there first makes
this one decide again from the new state), and in the same transaction the status
history, the order events and the commands to inventory and payments go to the outbox.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from uuid import UUID

from contracts.inventory import Reservation
from contracts.orders import (
    ORDER_PAYMENT_FAILED,
    ORDER_PLACED,
    STATUS_EVENTS,
    GetOrder,
    ListOrders,
    ListSellerOrders,
    ListUserOrders,
    OrderPage,
    OrderView,
    PayOrder,
    PlaceOrder,
    Tracking,
    UpdateOrderStatus,
)
from contracts.payments import PaymentResult
from contracts.privacy import ExportUserData, PersonalData
from contracts.users import UserErased, UserRegistered, UserUpdated
from kernel.crypto import FieldCipher
from workers.orders.carts.handlers import delete_member_cart, member_cart
from workers.orders.carts.repository import CartRepository, take_ordered
from workers.orders.customers.repository import CustomerRepository
from workers.orders.orders import model, saga
from workers.orders.orders.model import Order, OrderHead, OrderRefused
from workers.orders.orders.repository import OrdersRepository
from workers.orders.orders.search import OrderSearch, order_search
from workers.orders.products.model import ProductSnapshot
from workers.orders.products.repository import product_snapshot
from workers.orders.returns.handlers import forget_return_reasons, order_views
from workers.orders.sales import handlers as sales
from workers.orders.shipping.model import ShippingMethod
from workers.orders.shipping.repository import ShippingRepository
from workers.orders.taxes.model import NO_TAXES, Taxes
from workers.orders.taxes.repository import for_destination
from workers.orders.vouchers.model import Voucher, use_step
from workers.orders.vouchers.repository import VoucherRepository
from workers.runtime.context import HandlerContext
from workers.runtime.errors import DomainError, not_found
from workers.runtime.pagination import decode_cursor, encode_cursor

log = logging.getLogger("agora.orders")

# Optimistic-locking retries within one message before it is redelivered.
SAVE_ATTEMPTS = 5


async def _shipping_method(ctx: HandlerContext, cmd: PlaceOrder) -> ShippingMethod | None:
    """The shipping method the order names, if it still exists (one read, only when one is named)."""
    if cmd.shipping_method_id is None:
        return None
    return await ShippingRepository(ctx.session).get(cmd.shipping_method_id)


async def _taxes(ctx: HandlerContext, cmd: PlaceOrder, products: Mapping[UUID, ProductSnapshot]) -> Taxes:
    """The rates of the address's country and whether the order's currency includes tax
    (one read). No product on sale: nothing to tax (the order is refused anyway)."""
    currency = next((p.currency for p in products.values() if p.on_sale), None)
    if currency is None:
        return NO_TAXES
    return await for_destination(ctx.db, cmd.shipping_address.country, currency)


# Why a checkout could not take a voucher's use (VoucherRepository.reserve), as answered.
_USE_REFUSED = {
    "used_up": "this voucher has no uses left",
    "customer_limit": "this customer has used this voucher as many times as it allows",
}


async def _voucher(ctx: HandlerContext, cmd: PlaceOrder) -> Voucher | None:
    """The voucher the order's code names, if it exists (one read, only when one is named)."""
    if cmd.voucher_code is None:
        return None
    return await VoucherRepository(ctx.session).by_code(cmd.voucher_code)


class OrderHandlers:
    """The orders worker's order handlers and the saga's sweeper batch (wired in app.py)."""

    def __init__(self, cipher: FieldCipher, config: saga.SagaConfig) -> None:
        self._cipher = cipher
        self._config = config

    def _repo(self, ctx: HandlerContext) -> OrdersRepository:
        return OrdersRepository(ctx, self._cipher)

    def _customers(self, ctx: HandlerContext) -> CustomerRepository:
        return CustomerRepository(ctx.session, self._cipher)

    # --- placing ----------------------------------------------------------------------------

    async def place_order(self, cmd: PlaceOrder, ctx: HandlerContext) -> OrderView:
        """Place the order once per `order_id`, from `items` or (without them) the actor's cart.

        An order from the cart takes the lines it shows at today's prices and leaves the cart
        as it is: they leave it when the order is confirmed (`_advance`), so a payment that
        fails leaves the cart full. The lines keep the product as the read model has it, and
        the order the customer as the customers read model has it (read with the account's
        standing, in one statement). The cart is locked before the order is looked up, so a
        concurrent repeat of the request waits and then finds this order.
        """
        actor = ctx.require_actor()
        repo = self._repo(ctx)
        try:
            user_id = model.customer(cmd, actor)
            # Only an order from the cart makes a session (an order of `items` needs none).
            from_cart = model.orders_cart(cmd, actor)
            cart = await CartRepository(ctx.session).member(user_id, lock=True) if from_cart else None
            account = await repo.account(user_id, cmd.order_id)
            model.refuse_closed(account.closed)
            order = await repo.get(cmd.order_id) if account.placed else None
            if order is None:
                products = await product_snapshot(ctx.db, model.ordered_products(cmd, cart))
                method = await _shipping_method(ctx, cmd)
                taxes = await _taxes(ctx, cmd, products)
                voucher = await _voucher(ctx, cmd)
                now = datetime.now(UTC)
                placed = model.place(
                    cmd, actor, user_id, cart, products, now, self._config, account.customer, method, taxes, voucher
                )
                order = await self._save_placed(ctx, repo, placed, voucher)
            model.same_request(order, cmd, actor)
        except OrderRefused as exc:
            raise _refused(exc) from None
        return order.view()

    async def _save_placed(
        self, ctx: HandlerContext, repo: OrdersRepository, placed: model.Placed, voucher: Voucher | None = None
    ) -> Order:
        """Save a new order, announce it, send the saga's first commands and take the use of
        its voucher (last: the voucher's row stays locked until the commit); the order as
        saved (a concurrent twin's, if that committed first). No use left refuses the
        order, and nothing of it is kept."""
        if not await repo.add(placed.order):
            existing = await repo.get(placed.order.order_id)
            assert existing is not None
            return existing
        await ctx.emit(ORDER_PLACED, placed.event)
        for send in placed.sends:
            await ctx.send(send.spec, send.payload)
        order = placed.order
        if voucher is not None and order.voucher_code is not None:
            why = await VoucherRepository(ctx.session).reserve(
                voucher, order.order_id, order.user_id, order.discount_minor, order.currency, order.created_at
            )
            if why is not None:
                raise model.voucher_refused(_USE_REFUSED[why])
        log.info("order placed", extra={"order_id": str(order.order_id), "total_minor": order.total_minor})
        return order

    # --- the saga's replies -----------------------------------------------------------------

    async def on_reservation(self, event: Reservation, ctx: HandlerContext) -> None:
        await self._advance(ctx, event.order_id, saga.ReservationReply(event.status))

    async def on_payment(self, event: PaymentResult, ctx: HandlerContext) -> None:
        reply = saga.PaymentReply(event.step, event.outcome, event.attempt, event.at)
        await self._advance(ctx, event.order_id, reply)

    async def _advance(
        self,
        ctx: HandlerContext,
        order_id: UUID,
        message: saga.Message,
        order: OrderHead | None = None,
        tracking: Tracking | None = None,
    ) -> OrderHead | None:
        """Put one message through the saga and save what it decided; None if no such order.
        `tracking`: the parcel's, for the event of an order that ships now.

        Raises `saga.IllegalTransition` for a status change the order's state refuses.
        """
        repo = self._repo(ctx)
        for _ in range(SAVE_ATTEMPTS):
            order = order or await repo.head(order_id)
            if order is None:
                return None  # a reservation or payment some other party made
            now = datetime.now(UTC)
            after, sends = saga.transition(order.saga, message, now, self._config)
            if after == order.saga and not sends:
                return order
            if not await repo.save_saga(order.saga, after, now):
                order = None  # another replica moved it first: decide again from what it wrote
                continue
            if after.status != order.saga.status:  # save_saga added the history entry
                await sales.on_status_changed(ctx.db, order_id, after.status, now)
                use = use_step(order.saga.status, after.status) if order.voucher_code is not None else None
                if use is not None:  # confirmed: the use is redeemed; cancelled: given back
                    await VoucherRepository(ctx.session).settle(order_id, use, now)
                if after.status == "confirmed" and order.from_cart:  # paid: the cart lets go of it
                    await take_ordered(ctx.db, order.user_id, [(x.stock_key, x.quantity) for x in after.lines])
                await ctx.emit(STATUS_EVENTS[after.status], order.status_event(after, now, tracking))
                log.info(
                    "order status changed",
                    extra={"order_id": str(order_id), "status": after.status, "reason": after.cancel_reason},
                )
            if saga.payment_failed(order.saga, after):  # still pending, with a history entry too
                await ctx.emit(ORDER_PAYMENT_FAILED, order.status_event(after, now))
                log.info("order payment failed", extra={"order_id": str(order_id), "due_by": str(after.pay_by)})
            for send in sends:
                await ctx.send(send.spec, send.payload)
            return replace(order, saga=replace(after, version=order.saga.version + 1))
        raise RuntimeError(f"order {order_id} kept changing under this replica; the message will be redelivered")

    # --- reading and moving -----------------------------------------------------------------

    async def _visible(self, ctx: HandlerContext, order_id: UUID) -> Order:
        actor = ctx.require_actor()
        order = await self._repo(ctx).get(order_id)
        if order is None or not model.may_see(order, actor):
            raise not_found("order")
        return order

    async def get_order(self, query: GetOrder, ctx: HandlerContext) -> OrderView:
        return (await order_views(ctx, [await self._visible(ctx, query.order_id)]))[0]

    async def update_order_status(self, cmd: UpdateOrderStatus, ctx: HandlerContext) -> OrderView:
        order = await self._visible(ctx, cmd.order_id)
        with _refusals():
            message = model.status_change(order, ctx.require_actor(), cmd.status)
            given = cmd.tracking_number is not None or cmd.carrier is not None
            tracking = Tracking(carrier=cmd.carrier, number=cmd.tracking_number) if given else None
            await self._advance(ctx, cmd.order_id, message, order.head, tracking)
            if cmd.status == "shipped":
                await self._repo(ctx).set_tracking(cmd.order_id, cmd.tracking_number, cmd.carrier)
        return await self._moved(ctx, cmd.order_id)

    async def pay_order(self, cmd: PayOrder, ctx: HandlerContext) -> OrderView:
        """Pay again, with another token, an order whose payment failed (its saga authorizes
        again); an order not awaiting a payment is a conflict."""
        order = await self._visible(ctx, cmd.order_id)
        with _refusals():
            message = model.pay_again(order, ctx.require_actor(), cmd.payment_token)
            await self._advance(ctx, cmd.order_id, message, order.head)
        return await self._moved(ctx, cmd.order_id)

    async def _moved(self, ctx: HandlerContext, order_id: UUID) -> OrderView:
        """The order as a caller's move left it (its history entry included)."""
        after = await self._repo(ctx).get(order_id)
        assert after is not None
        return (await order_views(ctx, [after]))[0]

    async def list_user_orders(self, query: ListUserOrders, ctx: HandlerContext) -> OrderPage:
        actor = ctx.require_actor()
        if actor.role != "admin" and actor.user_id != query.user_id:
            raise not_found("user")
        return await self._page(ctx, query.limit, query.cursor, user_id=query.user_id)

    async def list_seller_orders(self, query: ListSellerOrders, ctx: HandlerContext) -> OrderPage:
        """A seller's orders by status (by default those to ship): the seller or an admin."""
        actor = ctx.require_actor()
        if actor.role != "admin" and not (actor.role == "seller" and actor.user_id == query.seller_id):
            raise not_found("seller")
        return await self._page(ctx, query.limit, query.cursor, seller_id=query.seller_id, status=query.status)

    async def list_orders(self, query: ListOrders, ctx: HandlerContext) -> OrderPage:
        """Every order, newest first (admins: the dashboard's order list)."""
        if ctx.require_actor().role != "admin":
            raise DomainError("forbidden", "only admins may list every order")
        placed_from = datetime.combine(query.start, time(), UTC) if query.start else None
        placed_before = datetime.combine(query.end + timedelta(days=1), time(), UTC) if query.end else None
        return await self._page(
            ctx,
            query.limit,
            query.cursor,
            status=query.status,
            placed_from=placed_from,
            placed_before=placed_before,
            search=order_search(query.q) if query.q and query.q.strip() else None,
        )

    async def _page(
        self,
        ctx: HandlerContext,
        limit: int,
        cursor: str | None,
        *,
        user_id: UUID | None = None,
        seller_id: UUID | None = None,
        status: str | None = None,
        placed_from: datetime | None = None,
        placed_before: datetime | None = None,
        search: OrderSearch | None = None,
    ) -> OrderPage:
        """One keyset page of orders, newest first (one row more than asked tells if there is a next)."""
        after = decode_cursor(cursor) if cursor else None
        found = await self._repo(ctx).listing(
            user_id=user_id,
            seller_id=seller_id,
            status=status,
            placed_from=placed_from,
            placed_before=placed_before,
            limit=limit + 1,
            after=after,
            search=search,
        )
        page = found[:limit]
        return OrderPage(
            items=await order_views(ctx, page),
            next_cursor=encode_cursor(page[-1].created_at, page[-1].order_id) if len(found) > limit else None,
        )

    # --- personal data ----------------------------------------------------------------------

    async def export_user_data(self, query: ExportUserData, ctx: HandlerContext) -> PersonalData:
        """A member's orders (shipping addresses and customer snapshots opened), cart, and
        what the customers read model holds of them: for the member or an admin.

        Anyone else gets "not found", like the users service's answer for the same request.
        """
        actor = ctx.require_actor()
        if actor.role != "admin" and actor.user_id != query.user_id:
            raise not_found("user")
        placed = await self._repo(ctx).listing(user_id=query.user_id)
        customer = await self._customers(ctx).get(query.user_id)
        data = {
            "orders": [view.model_dump(mode="json") for view in await order_views(ctx, placed)],
            "cart": (await member_cart(ctx, query.user_id)).model_dump(mode="json"),
            "customer": customer.model_dump(mode="json") if customer is not None else None,
        }
        return PersonalData(service="orders", data=data)

    async def on_user_erased(self, event: UserErased, ctx: HandlerContext) -> None:
        """Anonymise an erased member: open orders are cancelled (as by the customer: released
        or voided, or refunded with the stock returned), every order loses its shipping
        address and its customer snapshot, the cart and the customers read model's row are
        deleted. The orders stay, under the pseudonymous id, for accounting.
        """
        repo = self._repo(ctx)
        await repo.close_account(event.user_id, "erased", event.erased_at)
        for order_id in await repo.open_for_user(event.user_id):
            with contextlib.suppress(saga.IllegalTransition):  # shipped meanwhile: it is on its way
                await self._advance(ctx, order_id, saga.Cancel("customer_request"))
        erased = await repo.erase_personal_data(event.user_id)
        await forget_return_reasons(ctx, event.user_id)
        await delete_member_cart(ctx, event.user_id)
        await self._customers(ctx).forget(event.user_id)
        log.info("erased customer's orders anonymised", extra={"orders": erased})

    async def on_user_registered(self, event: UserRegistered, ctx: HandlerContext) -> None:
        """Keep the new account's email and username: what its orders will keep of their customer."""
        await self._customers(ctx).registered(event.user_id, event.email, event.username, event.registered_at)

    async def on_user_updated(self, event: UserUpdated, ctx: HandlerContext) -> None:
        """Keep a new username (for orders placed from now on), and which accounts are
        disabled: no order is placed for them until enabled again."""
        if event.username is not None:
            await self._customers(ctx).renamed(event.user_id, event.username, event.updated_at)
        if event.disabled is None or "disabled" not in event.changed:
            return
        repo = self._repo(ctx)
        if event.disabled:
            await repo.close_account(event.user_id, "disabled", event.updated_at)
        else:
            await repo.reopen_account(event.user_id)

    # --- the sweeper ------------------------------------------------------------------------

    async def index_customer_emails(self, ctx: HandlerContext, limit: int) -> int:
        """Blind-index up to `limit` customers' emails not yet indexed under the current data
        key (a background batch: rows sealed before the index existed, or after a rotation)."""
        count = await self._customers(ctx).index_emails(limit)
        if count:
            log.info("customer emails indexed for search", extra={"count": count})
        return count

    async def sweep_deadlines(self, ctx: HandlerContext, limit: int) -> int:
        """Fire `Timeout` for up to `limit` sagas past their deadline (a background batch).
        Safe in every replica at once: the batch is claimed with SKIP LOCKED."""
        due = await OrdersRepository(ctx, self._cipher).due_for_update(datetime.now(UTC), limit)
        for order_id in due:
            await self._advance(ctx, order_id, saga.Timeout())
        if due:
            log.info("saga deadlines fired", extra={"count": len(due)})
        return len(due)


def _refused(exc: OrderRefused) -> DomainError:
    return DomainError(exc.code, exc.detail, exc.errors)


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """A caller's request the rules refuse answers their error; a move the order's state
    refuses (the saga's `IllegalTransition`) is a conflict."""
    try:
        yield
    except OrderRefused as exc:
        raise _refused(exc) from None
    except saga.IllegalTransition as exc:
        raise DomainError("conflict", str(exc)) from None
