"""Return and refund use cases: load (the order's row locked), decide (model.py), save, emit and send.

Money goes back through the payments service (`payments.refund_payment.v1`, an amount,
the idempotency key `<order_id>:refund:<refund_id>` and the reference `refund:<refund_id>`);
its answer, a payments event of step `refund` carrying that reference, comes to
`on_refund_result` (app.py routes it here rather than to the saga, whose own refund
carries no reference). A refund is issued, and said so (`orders.refund_issued.v1`), only
once the payments service has refunded it. Resaleable goods go back on sale through
inventory (`inventory.restock_return.v1`, once per return).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

from contracts.inventory import RESTOCK_RETURN, ReservationLine, RestockReturn
from contracts.money import MoneyError, to_amount, to_minor
from contracts.orders import OrderView
from contracts.payments import REFUND_PAYMENT, PaymentResult, RefundPayment
from contracts.returns import (
    REFUND_ISSUED,
    RETURN_EVENTS,
    GetReturn,
    ListReturns,
    RefundIssued,
    RefundOrder,
    RefundReturn,
    RefundView,
    RequestReturn,
    ReturnPage,
    ReturnView,
    UpdateReturn,
)
from kernel.crypto import FieldCipher
from workers.orders.orders import model as orders_model
from workers.orders.orders.model import Order, OrderRefused
from workers.orders.orders.repository import OrdersRepository
from workers.orders.returns import model
from workers.orders.returns.model import Refund, Return
from workers.orders.returns.repository import ReturnsRepository, grouped
from workers.runtime.context import HandlerContext
from workers.runtime.errors import DomainError, invalid, not_found
from workers.runtime.pagination import decode_cursor, encode_cursor

log = logging.getLogger("agora.orders")


class ReturnHandlers:
    """The orders worker's return and refund handlers (wired in app.py)."""

    def __init__(self, cipher: FieldCipher, window: timedelta, retry_after: timedelta) -> None:
        self._cipher = cipher
        self._window = window
        # How long a refund waits for the payments service's answer before it is asked again.
        self._retry_after = retry_after

    async def _order(self, ctx: HandlerContext, order_id: UUID, *, lock: bool = False) -> Order:
        """The order (its row locked first if `lock`), if the caller may see it; else not found."""
        if lock and not await ReturnsRepository(ctx.session).lock_order(order_id):
            raise not_found("order")
        order = await OrdersRepository(ctx, self._cipher).get(order_id)
        if order is None or not orders_model.may_see(order, ctx.require_actor()):
            raise not_found("order")
        return order

    async def _return(self, ctx: HandlerContext, return_id: UUID, *, lock: bool = False) -> tuple[Return, Order]:
        """The return and its order (the order's row locked first if `lock`), if the caller may see it."""
        repo = ReturnsRepository(ctx.session)
        ret = await repo.get_return(return_id)
        if ret is not None and lock:
            await repo.lock_order(ret.order_id)
            ret = await repo.get_return(return_id)  # as the last transaction before the lock left it
        order = await OrdersRepository(ctx, self._cipher).get(ret.order_id) if ret is not None else None
        if ret is None or order is None or not model.may_see(ret, order, ctx.require_actor()):
            raise not_found("return")
        return ret, order

    # --- returns ------------------------------------------------------------------------

    async def request_return(self, cmd: RequestReturn, ctx: HandlerContext) -> ReturnView:
        actor = ctx.require_actor()
        repo = ReturnsRepository(ctx.session)
        order = await self._order(ctx, cmd.order_id, lock=True)
        with _refusals():
            existing = await repo.get_return(cmd.return_id)
            if existing is not None:
                model.same_request(existing, cmd, actor)
                return existing.view(order)
            now = datetime.now(UTC)
            ret = model.request(cmd, order, actor, await repo.returns_of([order.order_id]), self._window, now)
        await repo.add_return(ret)
        await ctx.emit(RETURN_EVENTS[ret.status], ret.event(order, now))
        log.info("return requested", extra={"return_id": str(ret.return_id), "order_id": str(order.order_id)})
        return ret.view(order)

    async def get_return(self, query: GetReturn, ctx: HandlerContext) -> ReturnView:
        ret, order = await self._return(ctx, query.return_id)
        return ret.view(order)

    async def list_returns(self, query: ListReturns, ctx: HandlerContext) -> ReturnPage:
        """Newest first: an admin's every return, a seller's those with a line of theirs, anyone
        else's their own orders'; with `order_id`, of that order (which the caller must see)."""
        actor = ctx.require_actor()
        if query.order_id is not None:
            await self._order(ctx, query.order_id)
        found = await ReturnsRepository(ctx.session).listing(
            user_id=actor.user_id if actor.role not in ("admin", "seller") else None,
            seller_id=actor.user_id if actor.role == "seller" else None,
            order_id=query.order_id,
            status=query.status,
            limit=query.limit + 1,
            after=decode_cursor(query.cursor) if query.cursor else None,
        )
        page = found[: query.limit]
        orders = OrdersRepository(ctx, self._cipher)
        of: dict[UUID, Order] = {}
        for ret in page:
            if ret.order_id not in of:
                order = await orders.get(ret.order_id)
                assert order is not None  # a return's order is never deleted
                of[ret.order_id] = order
        return ReturnPage(
            items=tuple(ret.view(of[ret.order_id]) for ret in page),
            next_cursor=encode_cursor(page[-1].requested_at, page[-1].return_id) if len(found) > query.limit else None,
        )

    async def update_return(self, cmd: UpdateReturn, ctx: HandlerContext) -> ReturnView:
        """Approve, refuse or receive; received resaleable goods go back on sale."""
        ret, order = await self._return(ctx, cmd.return_id, lock=True)
        now = datetime.now(UTC)
        with _refusals():
            moved = model.move(ret, cmd, ctx.require_actor(), now)
        if moved is None:
            return ret.view(order)
        repo = ReturnsRepository(ctx.session)
        await repo.save_return(moved)
        await ctx.emit(RETURN_EVENTS[moved.status], moved.event(order, now))
        back = model.resaleable(moved) if moved.status == "received" else ()
        if back:
            lines = tuple(
                ReservationLine(product_id=x.product_id, variant_id=x.variant_id, quantity=x.quantity) for x in back
            )
            await ctx.send(
                RESTOCK_RETURN, RestockReturn(return_id=moved.return_id, order_id=moved.order_id, lines=lines)
            )
        log.info("return moved", extra={"return_id": str(moved.return_id), "status": moved.status})
        return moved.view(order)

    # --- refunds ------------------------------------------------------------------------

    async def refund_return(self, cmd: RefundReturn, ctx: HandlerContext) -> RefundView:
        """Refund a received return once: while its refund is pending or done, a repeat
        answers that refund (nothing more is asked of the provider)."""
        actor = ctx.require_actor()
        ret, order = await self._return(ctx, cmd.return_id, lock=True)
        repo = ReturnsRepository(ctx.session)
        refunds = await repo.refunds_of([order.order_id])
        with _refusals():
            if not model.may_handle(ret, actor):
                raise OrderRefused("forbidden", "only the seller of every line in the return, or an admin, refunds it")
            existing = model.live_refund(refunds, ret.return_id)
            if existing is not None:
                return existing.view()
            refund = model.refund_return(cmd, ret, order, refunds, actor, uuid.uuid4(), datetime.now(UTC))
        return await self._refund(ctx, repo, refund)

    async def refund_order(self, cmd: RefundOrder, ctx: HandlerContext) -> RefundView:
        """An admin's direct refund of an amount of a captured order, once per `refund_id`."""
        actor = ctx.require_actor()
        if actor.role != "admin":  # before anything is looked up: nobody else may, whatever the order
            raise DomainError("forbidden", "only admins refund an order directly")
        order = await self._order(ctx, cmd.order_id, lock=True)
        try:
            amount = to_minor(cmd.amount, order.currency)
        except MoneyError as exc:
            raise invalid("amount", str(exc)) from None
        repo = ReturnsRepository(ctx.session)
        with _refusals():
            existing = await repo.get_refund(cmd.refund_id)
            if existing is not None:
                model.same_refund(existing, cmd, amount)
                return existing.view()
            refunds = await repo.refunds_of([order.order_id])
            refund = model.refund_order(cmd, amount, order, refunds, actor, datetime.now(UTC))
        return await self._refund(ctx, repo, refund)

    async def _refund(self, ctx: HandlerContext, repo: ReturnsRepository, refund: Refund) -> RefundView:
        """Save a new refund and ask the payments service for the money."""
        refund = replace(refund, retry_at=refund.requested_at + self._retry_after)
        await repo.add_refund(refund)
        await _ask_payments(ctx, refund)
        log.info(
            "refund asked",
            extra={"refund_id": str(refund.refund_id), "order_id": str(refund.order_id), "amount": refund.amount_minor},
        )
        return refund.view()

    async def resend_unanswered(self, ctx: HandlerContext, limit: int) -> int:
        """Ask again, under the same key, for up to `limit` refunds the payments service has
        not answered in time (it answers nothing while the provider does not: its command
        is retried, then dead-lettered). A background batch, safe in every replica at once."""
        repo = ReturnsRepository(ctx.session)
        due = await repo.unanswered(datetime.now(UTC), limit)
        for refund in due:
            again = model.ask_again(refund, datetime.now(UTC), self._retry_after)
            if again is None:  # its key may be forgotten at the provider: a person checks there
                await repo.save_refund(replace(refund, retry_at=None))
                log.warning(
                    "refund unanswered for too long: check it at the provider",
                    extra={"refund_id": str(refund.refund_id), "order_id": str(refund.order_id)},
                )
                continue
            await repo.save_refund(again)
            await _ask_payments(ctx, again)
        if due:
            log.info("unanswered refunds asked for again", extra={"count": len(due)})
        return len(due)

    async def on_refund_result(self, event: PaymentResult, ctx: HandlerContext) -> None:
        """The payments service's answer to one of these refunds: refunded (announced, and its
        return `refunded`) or failed (the return may be refunded again, under a new refund)."""
        refund_id = model.refund_of(event.reference)
        repo = ReturnsRepository(ctx.session)
        refund = await repo.get_refund(refund_id, for_update=True) if refund_id is not None else None
        if refund is None:
            log.warning("a refund result for no refund of ours", extra={"reference": event.reference})
            return
        settled = model.settle(refund, event.step == "refund" and event.outcome == "refunded", event.reason, event.at)
        if settled is None:
            return  # answered already
        await repo.save_refund(settled)
        if settled.status == "failed":
            log.warning("refund failed", extra={"refund_id": str(refund.refund_id), "reason": settled.failure})
            return
        if settled.return_id is not None:
            ret = await repo.get_return(settled.return_id)
            if ret is not None:
                await repo.save_return(replace(ret, status="refunded", refunded_at=event.at, updated_at=event.at))
        total = model.refunded_total(await repo.refunds_of([settled.order_id]))  # this one's saved status included
        issued = RefundIssued(
            refund_id=settled.refund_id,
            order_id=settled.order_id,
            user_id=settled.user_id,
            return_id=settled.return_id,
            amount_minor=settled.amount_minor,
            currency=settled.currency,
            refunded_total_minor=total,
            at=event.at,
        )
        await ctx.emit(REFUND_ISSUED, issued)
        log.info("refund issued", extra={"refund_id": str(settled.refund_id), "amount": settled.amount_minor})


async def _ask_payments(ctx: HandlerContext, refund: Refund) -> None:
    command = RefundPayment(
        order_id=refund.order_id,
        attempt=refund.attempt,
        idempotency_key=refund.idempotency_key,
        amount_minor=refund.amount_minor,
        reference=refund.reference,
    )
    await ctx.send(REFUND_PAYMENT, command)


async def forget_return_reasons(ctx: HandlerContext, user_id: UUID) -> None:
    """An erased customer's words (their returns' reasons) go; the returns stay, for accounting."""
    await ReturnsRepository(ctx.session).forget_reasons(user_id)


async def order_views(ctx: HandlerContext, orders: Sequence[Order]) -> tuple[OrderView, ...]:
    """The orders' views with their returns and refunds."""
    repo = ReturnsRepository(ctx.session)
    ids = [o.order_id for o in orders]
    returns, refunds = grouped(await repo.returns_of(ids)), grouped(await repo.refunds_of(ids))
    return tuple(_view(o, returns.get(o.order_id, []), refunds.get(o.order_id, [])) for o in orders)


def _view(order: Order, returns: Sequence[Return], refunds: Sequence[Refund]) -> OrderView:
    view = order.view()
    if not returns and not refunds:
        return view
    total = model.refunded_total(refunds)
    return view.model_copy(
        update={
            "returns": tuple(r.view(order) for r in returns),
            "refunds": tuple(r.view() for r in refunds),
            "refunded_total": to_amount(total, order.currency) if total else None,
        }
    )


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except OrderRefused as exc:
        raise DomainError(exc.code, exc.detail, exc.errors) from None
