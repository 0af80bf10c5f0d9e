"""The inventory domain: pure rules, no I/O.

Stock is kept per variant: a product without options has one, whose id is the product's.
A `Stock` changes only through a `Movement`, which is also the ledger row that records
it; a `Reservation` is one order's claim on stock and what each command does to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from contracts.catalog import ProductCreated
from contracts.inventory import (
    DEFAULT_RESERVATION_TTL_SECONDS,
    MAX_STOCK,
    FailedLine,
    ReservationLine,
    ReservationStatus,
    SetStock,
    StockView,
)
from contracts.inventory import Reservation as ReservationView
from kernel.tokens import Actor

MovementKind = Literal["created", "set", "adjust", "reserve", "release", "expire", "commit", "return"]


# Per unit of a line: (change of available, change of reserved).
_DELTAS: dict[str, tuple[int, int]] = {
    "reserve": (-1, 1),
    "release": (1, -1),
    "expire": (1, -1),
    "commit": (0, -1),
    # Committed stock left `reserved` (and, if it had expired, `available`): it comes back as available.
    "return": (1, 0),
}


class StockError(Exception):
    """A change the rules refuse (the handler turns it into a domain error)."""


@dataclass(frozen=True)
class Movement:
    """One change of one stock row (a variant's): applied as a conditional update, kept in the ledger."""

    variant_id: UUID
    kind: MovementKind
    delta_available: int
    delta_reserved: int
    reason: str | None = None
    reference: UUID | None = None


@dataclass(frozen=True)
class Stock:
    variant_id: UUID
    product_id: UUID
    seller_id: UUID
    available: int
    reserved: int
    low_stock_threshold: int
    created_at: datetime
    updated_at: datetime
    discontinued_at: datetime | None = None

    @property
    def low(self) -> bool:
        return self.available <= self.low_stock_threshold

    def visible_in_full_to(self, actor: Actor | None) -> bool:
        return actor is not None and (actor.role == "admin" or actor.user_id == self.seller_id)

    def view(self, actor: Actor | None) -> StockView:
        full = self.visible_in_full_to(actor)
        return StockView(
            product_id=self.product_id,
            variant_id=self.variant_id,
            stock=self.available,
            updated_at=self.updated_at,
            reserved=self.reserved if full else None,
            low_stock_threshold=self.low_stock_threshold if full else None,
        )

    def apply(self, movement: Movement, now: datetime) -> Stock:
        available = self.available + movement.delta_available
        reserved = self.reserved + movement.delta_reserved
        if available < 0 or reserved < 0:
            # The caller decided wrongly; the database's CHECK would refuse it anyway.
            raise StockError(f"stock of {self.variant_id} would go negative")
        return replace(self, available=available, reserved=reserved, updated_at=now)


@dataclass(frozen=True)
class NewStock:
    """A variant the catalog listed, and the stock it starts with."""

    variant_id: UUID
    initial_stock: int


def listed(event: ProductCreated) -> tuple[NewStock, ...]:
    """The variants a `product_created` lists: as it says, or (from a publisher older than
    variants) the default one, whose id is the product's."""
    if event.variants:
        return tuple(NewStock(v.variant_id, v.initial_stock) for v in event.variants)
    return (NewStock(event.product_id, event.initial_stock),)


def opened(
    variant_id: UUID, product_id: UUID, seller_id: UUID, initial_stock: int, now: datetime
) -> tuple[Stock, Movement]:
    """A new variant's stock row (empty) and the movement that brings it to its initial
    stock (bounded to 0..MAX_STOCK), from the catalog's `product_created` or `variant_added`."""
    record = Stock(variant_id, product_id, seller_id, 0, 0, 0, now, now)
    return record, Movement(variant_id, "created", min(max(initial_stock, 0), MAX_STOCK), 0)


def discontinued(variant_id: UUID, product_id: UUID, seller_id: UUID, now: datetime) -> Stock:
    """The row of a variant (or, keyed by the product's id, a product) withdrawn before its
    listing arrived: the listing finds it and adds nothing."""
    return Stock(variant_id, product_id, seller_id, 0, 0, 0, now, now, discontinued_at=now)


def may_change_stock(stock: Stock, actor: Actor) -> bool:
    """The product's seller or an admin. Anyone may see stock, so others get 403, not 404."""
    return actor.role == "admin" or (actor.role == "seller" and actor.user_id == stock.seller_id)


def stock_change(stock: Stock, cmd: SetStock) -> tuple[Movement | None, int]:
    """The movement a `PUT /api/inventory/{id}` makes, and the threshold after it."""
    threshold = cmd.low_stock_threshold if cmd.low_stock_threshold is not None else stock.low_stock_threshold
    if cmd.stock is not None:
        delta = cmd.stock - stock.available
        movement = Movement(stock.variant_id, "set", delta, 0, cmd.reason) if delta else None
        return movement, threshold
    if cmd.delta is not None:
        if stock.available + cmd.delta < 0:
            raise StockError(f"only {stock.available} in stock: cannot take {-cmd.delta}")
        return Movement(stock.variant_id, "adjust", cmd.delta, 0, cmd.reason), threshold
    return None, threshold


def crossed_low(before: Stock, after: Stock) -> bool:
    """From above the threshold to at or below it (by a sale, an adjustment or a new threshold)."""
    return not before.low and after.low


# --- reservations -----------------------------------------------------------------------


def merge_lines(lines: Iterable[ReservationLine]) -> tuple[ReservationLine, ...]:
    """One line per variant (its id always set: a line without one is the product's default
    variant), in variant-id order: the order stock rows are locked in."""
    quantities: dict[tuple[UUID, UUID], int] = {}
    for line in lines:
        key = (line.stock_key, line.product_id)
        quantities[key] = quantities.get(key, 0) + line.quantity
    return tuple(
        ReservationLine(product_id=product_id, variant_id=variant_id, quantity=q)
        for (variant_id, product_id), q in sorted(quantities.items())
    )


def shortfalls(lines: Iterable[ReservationLine], stocks: Mapping[UUID, Stock]) -> tuple[FailedLine, ...]:
    """Every line that cannot be reserved now; none means all of them can. `stocks` by variant id;
    a variant of another product than the line names is as unavailable as an unknown one."""
    failed: list[FailedLine] = []
    for line in lines:
        stock = stocks.get(line.stock_key)
        if stock is None or stock.discontinued_at is not None or stock.product_id != line.product_id:
            failed.append(
                FailedLine(
                    product_id=line.product_id,
                    variant_id=line.stock_key,
                    requested=line.quantity,
                    available=0,
                    reason="unavailable",
                )
            )
        elif stock.available < line.quantity:
            failed.append(
                FailedLine(
                    product_id=line.product_id,
                    variant_id=line.stock_key,
                    requested=line.quantity,
                    available=stock.available,
                    reason="out_of_stock",
                )
            )
    return tuple(failed)


def returned_goods(
    lines: Iterable[ReservationLine], stocks: Mapping[UUID, Stock], reason: str, order_id: UUID
) -> tuple[Movement, ...]:
    """Returned goods back on sale: each line's quantity added to its variant's available
    stock. A variant without a stock row (never listed here) has nothing to sell it from:
    skipped."""
    return tuple(
        Movement(line.stock_key, "return", line.quantity, 0, reason, order_id)
        for line in lines
        if line.stock_key in stocks
    )


@dataclass(frozen=True)
class Reservation:
    order_id: UUID
    status: ReservationStatus
    lines: tuple[ReservationLine, ...]
    failed: tuple[FailedLine, ...]
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def decide(
        cls,
        order_id: UUID,
        lines: tuple[ReservationLine, ...],
        stocks: Mapping[UUID, Stock],
        *,
        ttl_seconds: int | None,
        now: datetime,
    ) -> Reservation:
        """All lines or none: `reserved` until the TTL, or `failed` with every short line."""
        failed = shortfalls(lines, stocks)
        if failed:
            return cls(order_id, "failed", lines, failed, None, now, now)
        ttl = timedelta(seconds=ttl_seconds or DEFAULT_RESERVATION_TTL_SECONDS)
        return cls(order_id, "reserved", lines, (), now + ttl, now, now)

    @classmethod
    def barred(cls, order_id: UUID, now: datetime) -> Reservation:
        """A release that came before any reserve (the saga gave up first): a late
        reserve for the order then finds it released and takes nothing."""
        return cls(order_id, "released", (), (), None, now, now)

    def movements(self, kind: MovementKind, reason: str | None = None) -> tuple[Movement, ...]:
        """What `kind` does to each line's stock (called on the reservation before the change)."""
        to_available, to_reserved = _DELTAS[kind]
        if kind == "commit" and self.status == "expired":
            # Its stock went back at expiry: what is sold now comes out of `available`.
            to_available, to_reserved = -1, 0
        return tuple(
            Movement(
                line.stock_key,
                kind,
                to_available * line.quantity,
                to_reserved * line.quantity,
                reason,
                self.order_id,
            )
            for line in self.lines
        )

    def release(self, now: datetime, *, expired: bool = False) -> Reservation | None:
        """The reservation after a release (or expiry), or None if it changes nothing."""
        if self.status != "reserved":
            return None  # released, expired, failed or committed already: a no-op
        return replace(self, status="expired" if expired else "released", expires_at=None, updated_at=now)

    def commit(self, now: datetime) -> Reservation | None:
        """The reservation after a commit, or None if it is already committed (or since returned)."""
        if self.status in ("committed", "returned"):
            return None
        if self.status in ("failed", "released"):
            raise StockError(f"the reservation of order {self.order_id} is {self.status}: nothing to commit")
        # reserved, or expired: an expired reservation is committed if its stock can
        # still be taken (the handler checks that, all lines or none).
        return replace(self, status="committed", expires_at=None, updated_at=now)

    def give_back(self, now: datetime) -> Reservation | None:
        """The reservation after its committed stock is returned, or None if that changes nothing:
        returned already, or never committed (nothing was sold, so nothing comes back)."""
        if self.status != "committed":
            return None
        return replace(self, status="returned", updated_at=now)

    def view(self) -> ReservationView:
        return ReservationView(
            order_id=self.order_id,
            status=self.status,
            lines=self.lines,
            failed=self.failed,
            expires_at=self.expires_at,
            updated_at=self.updated_at,
        )
