"""Inventory use cases: load (with locks), decide (model.py), save, emit. One transaction per message.

Every stock change goes through `_move`: a conditional update per movement (which
marks the row for `announce_stock_changes`), a ledger row, and `inventory.low_stock.v1`
when it crosses the threshold. Every reservation command answers with the order's reservation as it
stands and emits the event of that status, also when the command changed nothing, so
a saga that sends through its outbox (no reply queue) hears back on every attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID

from contracts.catalog import ProductCreated, ProductDeleted, VariantAdded, VariantWithdrawn
from contracts.inventory import (
    LOW_STOCK,
    RESERVATION_EVENTS,
    STOCK_CHANGED,
    CommitStock,
    GetStock,
    ListLowStock,
    LowStock,
    LowStockItem,
    LowStockList,
    ReleaseStock,
    ReserveStock,
    RestockReturn,
    ReturnStock,
    SetStock,
    StockChanged,
    StockView,
)
from contracts.inventory import Reservation as ReservationView
from workers.inventory.model import (
    Movement,
    Reservation,
    Stock,
    StockError,
    crossed_low,
    discontinued,
    listed,
    may_change_stock,
    merge_lines,
    opened,
    returned_goods,
    shortfalls,
    stock_change,
)
from workers.inventory.repository import InventoryRepository
from workers.runtime.context import HandlerContext
from workers.runtime.errors import DomainError, invalid, not_found

log = logging.getLogger("agora.inventory")


class InventoryHandlers:
    """The inventory worker's handlers and background batches (wired in app.py)."""

    # --- the catalog's events ----------------------------------------------------------------

    async def on_product_created(self, event: ProductCreated, ctx: HandlerContext) -> None:
        """A stock row per variant, at its initial stock (all of them in this transaction)."""
        repo = InventoryRepository(ctx)
        if await repo.product_known(event.product_id):
            return  # a repeat, or the product was deleted before this event arrived
        now = datetime.now(UTC)
        for new in listed(event):
            await self._open(ctx, repo, new.variant_id, event.product_id, event.seller_id, new.initial_stock, now)

    async def on_variant_added(self, event: VariantAdded, ctx: HandlerContext) -> None:
        repo = InventoryRepository(ctx)
        now = datetime.now(UTC)
        gone = await repo.get(event.product_id)  # a withdrawn product leaves a row under its own id
        if gone is not None and gone.discontinued_at is not None:
            await repo.add_stock(discontinued(event.variant.variant_id, event.product_id, event.seller_id, now))
            return
        variant = event.variant
        await self._open(ctx, repo, variant.variant_id, event.product_id, event.seller_id, variant.initial_stock, now)

    @staticmethod
    async def _open(
        ctx: HandlerContext,
        repo: InventoryRepository,
        variant_id: UUID,
        product_id: UUID,
        seller_id: UUID,
        initial_stock: int,
        now: datetime,
    ) -> None:
        record, movement = opened(variant_id, product_id, seller_id, initial_stock, now)
        if await repo.add_stock(record):  # not a repeat, nor withdrawn before it arrived
            await _move(ctx, repo, {record.variant_id: record}, [movement], now)

    async def on_product_deleted(self, event: ProductDeleted, ctx: HandlerContext) -> None:
        """Stop selling every variant: no more reservations or stock changes, and reads answer 404.

        Reservations already made can still be committed or released, so orders in flight
        end normally. The numbers stay, for the ledger. The product's own id keeps a
        discontinued row (its default variant's, or for a product with options one of its
        own), so a creation or a variant this overtook finds the product gone.
        """
        repo = InventoryRepository(ctx)
        now = datetime.now(UTC)
        await repo.discontinue(event.product_id, now)
        if await repo.get(event.product_id) is None:
            await repo.add_stock(discontinued(event.product_id, event.product_id, event.seller_id, now))

    async def on_variant_withdrawn(self, event: VariantWithdrawn, ctx: HandlerContext) -> None:
        """Stop selling one variant (its reservations end as they would); a withdrawal that
        overtakes the variant's addition leaves a discontinued row the addition finds."""
        repo = InventoryRepository(ctx)
        now = datetime.now(UTC)
        if not await repo.discontinue(event.product_id, now, variant_id=event.variant_id):
            await repo.add_stock(discontinued(event.variant_id, event.product_id, event.seller_id, now))

    # --- stock -------------------------------------------------------------------------------

    async def get_stock(self, query: GetStock, ctx: HandlerContext) -> StockView:
        record = await _variant_stock(InventoryRepository(ctx), query.product_id, query.variant_id)
        return record.view(ctx.actor)

    async def list_low_stock(self, query: ListLowStock, ctx: HandlerContext) -> LowStockList:
        actor = ctx.require_actor()
        own = query.seller_id is not None and query.seller_id == actor.user_id and actor.role == "seller"
        if actor.role != "admin" and not own:
            raise DomainError("forbidden", "a seller sees only their own products' stock; admins every seller's")
        rows = await InventoryRepository(ctx).low_stock(query.seller_id, query.limit)
        return LowStockList(
            items=tuple(
                LowStockItem(
                    product_id=r.product_id,
                    variant_id=r.variant_id,
                    seller_id=r.seller_id,
                    stock=r.available,
                    low_stock_threshold=r.low_stock_threshold,
                )
                for r in rows
            )
        )

    async def set_stock(self, cmd: SetStock, ctx: HandlerContext) -> StockView:
        actor = ctx.require_actor()
        repo = InventoryRepository(ctx)
        key = cmd.variant_id or cmd.product_id
        record = (await repo.for_update([key])).get(key)
        if record is None or record.discontinued_at is not None or record.product_id != cmd.product_id:
            await _variant_stock(repo, cmd.product_id, cmd.variant_id)  # says why: no such variant, or choose one
        assert record is not None
        if not may_change_stock(record, actor):
            raise DomainError("forbidden", "only the product's seller or an admin may change its stock")
        try:
            movement, threshold = stock_change(record, cmd)
        except StockError as exc:
            raise DomainError("conflict", str(exc)) from None
        now = datetime.now(UTC)
        after = record
        if movement is not None:
            moved = await _move(ctx, repo, {record.variant_id: record}, [movement], now, report_low=False)
            after = moved[record.variant_id]
        if threshold != record.low_stock_threshold:
            await repo.set_threshold(record.variant_id, threshold, now)
            after = replace(after, low_stock_threshold=threshold, updated_at=now)
        # Crossed by the change of stock or by the new threshold: reported once either way.
        if crossed_low(record, after):
            await _low_stock(ctx, after, now)
        return after.view(actor)

    # --- reservations (the order saga) --------------------------------------------------------

    async def reserve_stock(self, cmd: ReserveStock, ctx: HandlerContext) -> ReservationView:
        ctx.require_saga_actor("reservations")
        repo = InventoryRepository(ctx)
        now = datetime.now(UTC)
        lines = merge_lines(cmd.lines)
        # The order's row first (lock order: reservation, then stock): a concurrent
        # command for the same order waits here and then answers what this one decided.
        placeholder = Reservation(cmd.order_id, "failed", lines, (), None, now, now)
        if not await repo.claim_reservation(placeholder):
            existing = await repo.reservation_for_update(cmd.order_id)
            assert existing is not None  # rows are never deleted
            return await _answer(ctx, existing)
        # Sold out already: refuse without queueing for the row locks (a flash sale's many
        # late buyers would otherwise serialize behind each other). Only a lock can say yes.
        stocks = await repo.many(line.stock_key for line in lines)
        if not shortfalls(lines, stocks):
            stocks = await repo.for_update(line.stock_key for line in lines)
        reservation = Reservation.decide(cmd.order_id, lines, stocks, ttl_seconds=cmd.ttl_seconds, now=now)
        await repo.save_reservation(reservation)
        if reservation.status == "reserved":
            await _move(ctx, repo, stocks, reservation.movements("reserve"), now)
        else:
            log.info("reservation failed", extra={"order_id": str(cmd.order_id), "failed": len(reservation.failed)})
        return await _answer(ctx, reservation)

    async def reserve_many(self, commands: Sequence[tuple[ReserveStock, HandlerContext]]) -> list[ReservationView]:
        """Reservations that arrived together, in one transaction (issue 14): the same
        decisions as `reserve_stock` one after another in arrival order, but each stock
        row is locked and written once for the whole batch, so a hot product's buyers
        take its row lock once per batch instead of once each.

        Every command has its own context (its actor, envelope and events) on the one
        transaction. A refusal raises, and the runtime then handles each command alone.
        """
        for _, ctx in commands:
            ctx.require_saga_actor("reservations")
        repo = InventoryRepository(commands[0][1])
        now = datetime.now(UTC)
        placeholders = [
            Reservation(cmd.order_id, "failed", merge_lines(cmd.lines), (), None, now, now) for cmd, _ in commands
        ]
        claimed = await repo.claim_reservations(placeholders)
        # The orders claimed now, each once: a second command for an order answers what the
        # first decided; an order claimed before answers its reservation as it stands, read
        # now (lock order: reservations, then stock).
        new: dict[UUID, tuple[Reservation, ReserveStock, HandlerContext]] = {}
        for placeholder, (cmd, ctx) in zip(placeholders, commands, strict=True):
            if placeholder.order_id in claimed:
                new.setdefault(placeholder.order_id, (placeholder, cmd, ctx))
        earlier = await repo.reservations_for_update(cmd.order_id for cmd, _ in commands if cmd.order_id not in new)
        # As `reserve_stock`: an order short of stock as last committed is refused without
        # a lock; the rows the others want are locked once and decided on in arrival order.
        seen = await repo.many(line.stock_key for placeholder, _, _ in new.values() for line in placeholder.lines)
        hopeful = {order_id for order_id, (p, _, _) in new.items() if not shortfalls(p.lines, seen)}
        stocks = await repo.for_update(line.stock_key for order_id in hopeful for line in new[order_id][0].lines)
        decided: dict[UUID, Reservation] = {}
        moves: list[tuple[Movement, Stock, HandlerContext]] = []
        for order_id, (placeholder, cmd, ctx) in new.items():
            reservation = Reservation.decide(
                order_id,
                placeholder.lines,
                stocks if order_id in hopeful else {**seen, **stocks},
                ttl_seconds=cmd.ttl_seconds,
                now=now,
            )
            if order_id not in hopeful and reservation.status == "reserved":
                # Stock came in since it was read short: refused all the same, as it would be alone.
                reservation = Reservation.decide(order_id, placeholder.lines, seen, ttl_seconds=None, now=now)
            decided[order_id] = reservation
            for movement in reservation.movements("reserve") if reservation.status == "reserved" else ():
                before = stocks[movement.variant_id]
                stocks[movement.variant_id] = after = before.apply(movement, now)
                moves.append((movement, after, ctx))
                if crossed_low(before, after):
                    await _low_stock(ctx, after, now)
        await repo.save_reservations(list(decided.values()))
        await repo.apply_together(moves, now)
        return [await _answer(ctx, decided.get(cmd.order_id) or earlier[cmd.order_id]) for cmd, ctx in commands]

    async def release_stock(self, cmd: ReleaseStock, ctx: HandlerContext) -> ReservationView:
        ctx.require_saga_actor("reservations")
        repo = InventoryRepository(ctx)
        now = datetime.now(UTC)
        existing = await repo.reservation_for_update(cmd.order_id)
        if existing is None:
            barred = Reservation.barred(cmd.order_id, now)
            if await repo.claim_reservation(barred):
                return await _answer(ctx, barred)
            existing = await repo.reservation_for_update(cmd.order_id)  # a reserve committed meanwhile
            assert existing is not None
        released = existing.release(now)
        if released is None:  # already released or expired (a no-op), or failed or committed (refused)
            return await _answer(ctx, existing)
        stocks = await repo.for_update(line.stock_key for line in existing.lines)
        await _move(ctx, repo, stocks, existing.movements("release", cmd.reason), now)
        await repo.save_reservation(released)
        return await _answer(ctx, released)

    async def commit_stock(self, cmd: CommitStock, ctx: HandlerContext) -> ReservationView:
        ctx.require_saga_actor("reservations")
        repo = InventoryRepository(ctx)
        now = datetime.now(UTC)
        existing = await repo.reservation_for_update(cmd.order_id)
        if existing is None:
            raise not_found("reservation")
        try:
            committed = existing.commit(now)
        except StockError as exc:
            raise DomainError("conflict", str(exc)) from None
        if committed is None:
            return await _answer(ctx, existing)
        stocks = await repo.for_update(line.stock_key for line in existing.lines)
        if existing.status == "expired" and shortfalls(existing.lines, stocks):
            log.error("expired reservation not committed: its stock is gone", extra={"order_id": str(cmd.order_id)})
            raise DomainError("conflict", "the reservation expired and its stock has been sold since")
        await _move(ctx, repo, stocks, existing.movements("commit"), now)
        await repo.save_reservation(committed)
        return await _answer(ctx, committed)

    async def return_stock(self, cmd: ReturnStock, ctx: HandlerContext) -> ReservationView:
        """A cancelled order's committed stock goes back on sale, once: `committed` → `returned`.

        A repeat (already returned) or a reservation that was never committed answers the
        reservation as it stands and moves nothing.
        """
        ctx.require_saga_actor("reservations")
        repo = InventoryRepository(ctx)
        now = datetime.now(UTC)
        existing = await repo.reservation_for_update(cmd.order_id)
        if existing is None:
            raise not_found("reservation")
        returned = existing.give_back(now)
        if returned is None:
            return await _answer(ctx, existing)
        stocks = await repo.for_update(line.stock_key for line in existing.lines)
        await _move(ctx, repo, stocks, existing.movements("return", cmd.reason), now)
        await repo.save_reservation(returned)
        return await _answer(ctx, returned)

    async def restock_return(self, cmd: RestockReturn, ctx: HandlerContext) -> None:
        """A return's resaleable goods go back on sale, once per return (a repeat, even
        under another message id, moves nothing)."""
        ctx.require_saga_actor("restocks")
        if not await ctx.first_time("inventory.restock_return", cmd.return_id):
            return
        repo = InventoryRepository(ctx)
        lines = merge_lines(cmd.lines)
        stocks = await repo.for_update(line.stock_key for line in lines)
        movements = returned_goods(lines, stocks, f"returned goods (return {cmd.return_id})", cmd.order_id)
        await _move(ctx, repo, stocks, movements, datetime.now(UTC))
        log.info("returned goods back on sale", extra={"return_id": str(cmd.return_id), "lines": len(movements)})

    async def sweep_expired(self, ctx: HandlerContext, limit: int) -> int:
        """Release up to `limit` reservations past their TTL (a background batch). Safe in
        every replica at once: the batch is claimed with SKIP LOCKED, so replicas share the
        work and never wait on each other."""
        repo = InventoryRepository(ctx)
        now = datetime.now(UTC)
        expired = await repo.expired_for_update(now, limit)
        if not expired:
            return 0
        # Every batch's stock rows in one sorted lock, like any other transaction.
        stocks = await repo.for_update(line.stock_key for r in expired for line in r.lines)
        movements = [m for r in expired for m in r.movements("expire", "reservation expired")]
        await _move(ctx, repo, stocks, movements, now)
        for reservation in expired:
            released = reservation.release(now, expired=True)
            assert released is not None
            await repo.save_reservation(released)
            await _answer(ctx, released)
        log.info("expired reservations released", extra={"count": len(expired)})
        return len(expired)

    # --- announcing stock changes -------------------------------------------------------------

    async def announce_stock_changes(self, ctx: HandlerContext, limit: int) -> int:
        """One `inventory.stock_changed.v1` per variant whose stock moved since the last
        announcement, with its levels now, for up to `limit` variants (a background batch;
        issue 14: the catalog's read model and the edge's cache follow a variant's stock,
        not every reservation). Safe in every replica at once."""
        rows = await InventoryRepository(ctx).take_unannounced(limit)
        for row in rows:
            changed = StockChanged(
                product_id=row.product_id,
                variant_id=row.variant_id,
                available=row.available,
                reserved=row.reserved,
                reason=row.change,
                updated_at=row.updated_at,
            )
            await ctx.emit(STOCK_CHANGED, changed)
        return len(rows)


# --- saving and emitting -----------------------------------------------------------------


async def _answer(ctx: HandlerContext, reservation: Reservation) -> ReservationView:
    view = reservation.view()
    await ctx.emit(RESERVATION_EVENTS[reservation.status], view)
    return view


async def _move(
    ctx: HandlerContext,
    repo: InventoryRepository,
    stocks: Mapping[UUID, Stock],
    movements: Sequence[Movement],
    now: datetime,
    *,
    report_low: bool = True,
) -> dict[UUID, Stock]:
    """Apply movements to locked stock rows, record them, and say what changed."""
    after = dict(stocks)
    for movement in movements:
        after[movement.variant_id] = after[movement.variant_id].apply(movement, now)
        await repo.apply(movement, now, actor=ctx.actor, correlation_id=ctx.envelope.correlation_id)
    for variant_id in sorted({m.variant_id for m in movements}):
        if report_low and crossed_low(stocks[variant_id], after[variant_id]):
            await _low_stock(ctx, after[variant_id], now)
    return after


async def _variant_stock(repo: InventoryRepository, product_id: UUID, variant_id: UUID | None) -> Stock:
    """The stock row of the product's variant (without one: its default variant); for a
    product with options and no variant named, a refusal that says to choose one."""
    record = await repo.get(variant_id or product_id)
    if record is not None and record.discontinued_at is None and record.product_id == product_id:
        return record
    if variant_id is None and record is None and await repo.has_live_variants(product_id):
        raise invalid("variant_id", "the product has variants: choose one")
    raise not_found("variant" if variant_id is not None else "product")


async def _low_stock(ctx: HandlerContext, record: Stock, now: datetime) -> None:
    await ctx.emit(
        LOW_STOCK,
        LowStock(
            product_id=record.product_id,
            variant_id=record.variant_id,
            seller_id=record.seller_id,
            available=record.available,
            threshold=record.low_stock_threshold,
            at=now,
        ),
    )
