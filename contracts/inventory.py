"""Inventory service contracts: stock, its ledger, reservations for the order saga.

`stock` is what can be sold now ("available"); `reserved` is held for orders that are
still in their saga. A reservation belongs to one order and moves through
reserved → released | expired | committed → returned (or is `failed` from the start); each
reservation command answers with the reservation as it stands, in the reply (if the
sender asked for one) and as an event, so a saga that sends through its outbox learns
the outcome too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from contracts.base import WHOLE, Contract, not_null
from contracts.topology import CommandSpec, EventSpec

# Large enough for any warehouse, small enough that sums stay far from int32 overflow.
MAX_STOCK = 1_000_000_000
MAX_QUANTITY = 1_000_000
# Reservations outlive the saga's own deadlines by far: the TTL is a last resort if an
# orchestrator dies, not the saga's timeout (architecture §7).
DEFAULT_RESERVATION_TTL_SECONDS = 900
MAX_RESERVATION_TTL_SECONDS = 7 * 24 * 3600

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ReservationStatus = Literal["reserved", "failed", "released", "expired", "committed", "returned"]


# --- stock ------------------------------------------------------------------------------


VariantId = Annotated[
    UUID | None,
    Field(description="The variant; absent: the product's default variant (whose id is the product's)"),
]


class GetStock(Contract):
    product_id: UUID
    variant_id: VariantId = None


class StockQuery(Contract):
    """The query string of `GET /api/inventory/{productId}`."""

    variant_id: VariantId = None


class SetStock(Contract):
    """`stock` sets what is available; `delta` adjusts it (with a `reason`); either may
    come with `low_stock_threshold`, which may also be sent alone."""

    # Absent, not null (`| SkipJsonSchema[None]`); which combinations are allowed is in
    # the documents too (`json_schema_extra`), so a client can check before it sends.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [{"required": ["stock"]}, {"required": ["delta"]}, {"required": ["low_stock_threshold"]}],
            "not": {"required": ["stock", "delta"]},
        }
    )

    product_id: UUID
    variant_id: VariantId = None
    stock: Annotated[int, Field(ge=0, le=MAX_STOCK), WHOLE] | SkipJsonSchema[None] = Field(
        default=None, description="Set the stock available to sell"
    )
    delta: Annotated[int, Field(ge=-MAX_STOCK, le=MAX_STOCK), WHOLE] | SkipJsonSchema[None] = Field(
        default=None,
        description="Add to (or, negative, take from) the stock; not 0",
        json_schema_extra={"not": {"const": 0}},
    )
    reason: Reason | SkipJsonSchema[None] = Field(default=None, description="Why, for the stock-movement ledger")
    low_stock_threshold: Annotated[int, Field(ge=0, le=MAX_STOCK), WHOLE] | SkipJsonSchema[None] = Field(
        default=None, description="`inventory.low_stock.v1` fires when stock falls to this or below"
    )

    _not_null = field_validator("stock", "delta", "reason", "low_stock_threshold", mode="before")(not_null)

    @model_validator(mode="after")
    def _one_change(self) -> SetStock:
        if self.stock is not None and self.delta is not None:
            raise ValueError("send either stock (to set) or delta (to adjust), not both")
        if self.stock is None and self.delta is None and self.low_stock_threshold is None:
            raise ValueError("send stock, delta or low_stock_threshold")
        if self.delta == 0:
            raise ValueError("delta must not be 0")
        return self


class StockView(Contract):
    """What anyone may see; `reserved` and `low_stock_threshold` only the product's seller and admins."""

    product_id: UUID
    variant_id: UUID
    stock: int = Field(description="Available to sell now")
    updated_at: datetime
    reserved: int | None = Field(
        default=None, exclude_if=lambda v: v is None, description="Held for orders in progress (owner and admins)"
    )
    low_stock_threshold: int | None = Field(
        default=None, exclude_if=lambda v: v is None, description="Owner and admins only"
    )


# --- reservations (the order saga) -------------------------------------------------------


class ReservationLine(Contract):
    product_id: UUID
    variant_id: VariantId = None
    quantity: int = Field(ge=1, le=MAX_QUANTITY)

    @property
    def stock_key(self) -> UUID:
        """The stock row the line takes from: its variant's (the default variant's id is the product's)."""
        return self.variant_id or self.product_id


class ReserveStock(Contract):
    """Reserve every line of an order, or none. Once per order: a repeat answers the first outcome."""

    order_id: UUID
    lines: tuple[ReservationLine, ...] = Field(min_length=1, max_length=100)
    ttl_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RESERVATION_TTL_SECONDS,
        description=f"Released by the sweeper after this long unless committed (default "
        f"{DEFAULT_RESERVATION_TTL_SECONDS})",
    )


class ReleaseStock(Contract):
    """Give an order's reserved stock back. Before any reserve, it bars a late reserve for the order."""

    order_id: UUID
    reason: Reason | None = None


class CommitStock(Contract):
    """The order is confirmed: its reserved stock leaves for good."""

    order_id: UUID


class ReturnStock(Contract):
    """The order was cancelled after its stock was committed: put that stock back on sale, once."""

    order_id: UUID
    reason: Reason | None = None


class RestockReturn(Contract):
    """Goods a customer returned, resaleable: put them back on sale, once per return."""

    return_id: UUID = Field(description="The orders service's return: a repeat moves nothing")
    order_id: UUID
    lines: tuple[ReservationLine, ...] = Field(min_length=1, max_length=100)


class FailedLine(Contract):
    product_id: UUID
    variant_id: UUID | None = None
    requested: int
    available: int
    reason: Literal["out_of_stock", "unavailable"] = Field(
        description="`unavailable`: no such product, or it was withdrawn"
    )


class Reservation(Contract):
    """An order's reservation as it stands: the reply to every reservation command, and its events."""

    order_id: UUID
    status: ReservationStatus
    lines: tuple[ReservationLine, ...]
    failed: tuple[FailedLine, ...] = ()
    expires_at: datetime | None
    updated_at: datetime


# --- events ------------------------------------------------------------------------------


class StockChanged(Contract):
    """Available stock of a variant changed (a set, an adjustment, a reservation, a release)."""

    product_id: UUID
    variant_id: UUID | None = Field(default=None, description="Absent (an older publisher): the default variant")
    available: int
    reserved: int
    reason: str
    updated_at: datetime


class LowStock(Contract):
    """Available stock of a variant fell to or below its low-stock threshold."""

    product_id: UUID
    variant_id: UUID | None = None
    seller_id: UUID
    available: int
    threshold: int
    at: datetime


class ListLowStock(Contract):
    """Products at or below their low-stock threshold: one seller's, or (admins) everyone's."""

    seller_id: UUID | None = None
    limit: int = Field(default=200, ge=1, le=500)


class LowStockQuery(Contract):
    """The query string of the low-stock lists."""

    limit: int = Field(default=200, ge=1, le=500)


class LowStockItem(Contract):
    product_id: UUID
    variant_id: UUID
    seller_id: UUID
    stock: int = Field(description="Available to sell")
    low_stock_threshold: int


class LowStockList(Contract):
    items: tuple[LowStockItem, ...] = Field(description="Lowest stock first; sold-out products included")


GET_STOCK = CommandSpec(
    "inventory",
    "get_stock",
    1,
    GetStock,
    StockView,
    kind="query",
    summary="Read a variant's stock (more for its seller and admins).",
)
SET_STOCK = CommandSpec(
    "inventory",
    "set_stock",
    1,
    SetStock,
    StockView,
    requires_actor=True,
    summary="Set or adjust a variant's stock, or its low-stock threshold (its seller or an admin).",
)
RESERVE_STOCK = CommandSpec(
    "inventory",
    "reserve_stock",
    1,
    ReserveStock,
    Reservation,
    requires_actor=True,
    summary="Reserve all lines of an order or none (services and admins).",
)
RELEASE_STOCK = CommandSpec(
    "inventory",
    "release_stock",
    1,
    ReleaseStock,
    Reservation,
    requires_actor=True,
    summary="Release an order's reservation (services and admins).",
)
COMMIT_STOCK = CommandSpec(
    "inventory",
    "commit_stock",
    1,
    CommitStock,
    Reservation,
    requires_actor=True,
    summary="Commit an order's reservation: the stock is sold (services and admins).",
)
RETURN_STOCK = CommandSpec(
    "inventory",
    "return_stock",
    1,
    ReturnStock,
    Reservation,
    requires_actor=True,
    summary="Return a cancelled order's committed stock to sale (services and admins).",
)
RESTOCK_RETURN = CommandSpec(
    "inventory",
    "restock_return",
    1,
    RestockReturn,
    None,
    requires_actor=True,
    summary="Put a return's resaleable goods back on sale, once per return (services and admins).",
)

LIST_LOW_STOCK = CommandSpec(
    "inventory",
    "list_low_stock",
    1,
    ListLowStock,
    LowStockList,
    kind="query",
    requires_actor=True,
    summary="Products whose available stock is at or below their threshold: a seller's own, or every "
    "seller's (admins).",
)

STOCK_CHANGED = EventSpec("inventory", "stock_changed", 1, StockChanged, summary="A variant's stock changed.")
LOW_STOCK = EventSpec("inventory", "low_stock", 1, LowStock, summary="Stock crossed the low-stock threshold.")
STOCK_RESERVED = EventSpec("inventory", "stock_reserved", 1, Reservation, summary="Every line of an order is reserved.")
RESERVATION_FAILED = EventSpec(
    "inventory", "reservation_failed", 1, Reservation, summary="An order could not be reserved; `failed` says why."
)
STOCK_RELEASED = EventSpec(
    "inventory",
    "stock_released",
    1,
    Reservation,
    summary="An order's reservation was released (status `released`) or timed out (status `expired`).",
)
RESERVATION_COMMITTED = EventSpec(
    "inventory", "reservation_committed", 1, Reservation, summary="An order's reserved stock is sold."
)
STOCK_RETURNED = EventSpec(
    "inventory",
    "stock_returned",
    1,
    Reservation,
    summary="A cancelled order's committed stock is back on sale (status `returned`).",
)

# The event that reports a reservation in each status.
RESERVATION_EVENTS: dict[str, EventSpec] = {
    "reserved": STOCK_RESERVED,
    "failed": RESERVATION_FAILED,
    "released": STOCK_RELEASED,
    "expired": STOCK_RELEASED,
    "committed": RESERVATION_COMMITTED,
    "returned": STOCK_RETURNED,
}

COMMANDS: tuple[CommandSpec, ...] = (
    GET_STOCK,
    SET_STOCK,
    LIST_LOW_STOCK,
    RESERVE_STOCK,
    RELEASE_STOCK,
    COMMIT_STOCK,
    RETURN_STOCK,
    RESTOCK_RETURN,
)
EVENTS = (
    STOCK_CHANGED,
    LOW_STOCK,
    STOCK_RESERVED,
    RESERVATION_FAILED,
    STOCK_RELEASED,
    RESERVATION_COMMITTED,
    STOCK_RETURNED,
)
