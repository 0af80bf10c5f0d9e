"""Catalog service contracts: products, categories, search.

The events here are what other services build on (inventory creates a stock record
from `product_created`; the edge cache drops what an event says changed).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from contracts.base import Contract
from contracts.topology import CommandSpec, EventSpec


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


class ProductDeleted(Contract):
    product_id: UUID
    seller_id: UUID
    deleted_at: datetime


PRODUCT_CREATED = EventSpec("catalog", "product_created", 1, ProductCreated, summary="A product was listed.")
PRODUCT_UPDATED = EventSpec("catalog", "product_updated", 1, ProductUpdated, summary="A product changed.")
PRODUCT_DELETED = EventSpec("catalog", "product_deleted", 1, ProductDeleted, summary="A product was withdrawn.")

COMMANDS: tuple[CommandSpec, ...] = ()
EVENTS = (PRODUCT_CREATED, PRODUCT_UPDATED, PRODUCT_DELETED)
