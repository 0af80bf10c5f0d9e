"""Inventory service contracts: stock, its ledger, reservations for the order saga."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from contracts.base import Contract
from contracts.topology import CommandSpec, EventSpec


class StockChanged(Contract):
    """Available stock of a product changed (a set, an adjustment, a reservation, a release)."""

    product_id: UUID
    available: int
    reserved: int
    reason: str
    updated_at: datetime


class LowStock(Contract):
    """Available stock fell to or below the product's low-stock threshold."""

    product_id: UUID
    seller_id: UUID
    available: int
    threshold: int
    at: datetime


STOCK_CHANGED = EventSpec("inventory", "stock_changed", 1, StockChanged, summary="A product's stock changed.")
LOW_STOCK = EventSpec("inventory", "low_stock", 1, LowStock, summary="Stock crossed the low-stock threshold.")

COMMANDS: tuple[CommandSpec, ...] = ()
EVENTS = (STOCK_CHANGED, LOW_STOCK)
