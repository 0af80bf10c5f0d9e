"""Notifications on other services' events: keep the read models, then notify (delivery.py).

Each handler turns its event into a `Notice` (which template, for whom, with what) and
hands it to the `Notifier`. The read models (orders, products and their variants,
sign-ins) are written in the handler's transaction; the delivery records in transactions
of their own.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from uuid import UUID

from contracts.catalog import ProductCreated, ProductDeleted, ProductUpdated, VariantAdded, VariantUpdated
from contracts.inventory import LowStock
from contracts.orders import OrderPlaced, OrderStatusChanged
from contracts.payments import PaymentResult
from contracts.returns import ReturnChanged
from contracts.users import PasswordChanged, SignedIn, UserErased, UserRegistered
from kernel.settings import Settings
from workers.notifications.delivery import Notifier
from workers.notifications.model import (
    Notice,
    is_new_sign_in,
    listed_variants,
    low_stock_variables,
    money,
    order_variables,
    order_wait_over,
    shipment_variables,
    variant_wait_over,
    when,
)
from workers.notifications.repository import KnownOrder, ReadModels
from workers.notifications.templates import CANCEL_REASONS
from workers.runtime.context import HandlerContext
from workers.runtime.errors import RetryLater

log = logging.getLogger("agora.notifications")

# Seconds between looks for what an event names that has not arrived yet (an order's
# placement, a variant's listing).
_RETRY_SECONDS = 4.0
_UNKNOWN_REASON = "it could not be completed"


class NotificationHandlers:
    def __init__(self, notifier: Notifier, settings: Settings) -> None:
        self._notifier = notifier
        self._shop_url = settings.shop_url or settings.public_url or f"http://127.0.0.1:{settings.http_port}"

    # --- users ---

    async def on_user_registered(self, event: UserRegistered, ctx: HandlerContext) -> None:
        await self._notifier.notify(ctx, Notice("welcome", event.user_id, "account"))

    async def on_password_changed(self, event: PasswordChanged, ctx: HandlerContext) -> None:
        await self._notifier.notify(ctx, Notice("password_changed", event.user_id, "security"))

    async def on_signed_in(self, event: SignedIn, ctx: HandlerContext) -> None:
        if event.client_fingerprint is None:
            return
        read_models = ReadModels(ctx.session)
        known = await read_models.fingerprints(event.user_id)
        await read_models.remember_sign_in(event.user_id, event.client_fingerprint, event.at)
        if is_new_sign_in(known, event.client_fingerprint):
            await self._notifier.notify(ctx, Notice("new_sign_in", event.user_id, "security", {"at": when(event.at)}))

    async def on_user_erased(self, event: UserErased, ctx: HandlerContext) -> None:
        await ReadModels(ctx.session).forget(event.user_id)

    # --- catalog and inventory ---

    async def on_product_created(self, event: ProductCreated, ctx: HandlerContext) -> None:
        read_models = ReadModels(ctx.session)
        await read_models.save_product(event.product_id, event.seller_id, event.name, event.created_at)
        await read_models.save_variants(
            event.product_id, listed_variants(event.product_id, event.variants), event.created_at
        )

    async def on_product_updated(self, event: ProductUpdated, ctx: HandlerContext) -> None:
        await ReadModels(ctx.session).save_product(event.product_id, event.seller_id, event.name, event.updated_at)

    async def on_product_deleted(self, event: ProductDeleted, ctx: HandlerContext) -> None:
        # The name stays: orders and low-stock notices may still mention the product.
        await ReadModels(ctx.session).save_product(event.product_id, event.seller_id, None, event.deleted_at)

    async def on_variant_changed(self, event: VariantAdded | VariantUpdated, ctx: HandlerContext) -> None:
        """Added or updated: the variant's label and SKU as they are now."""
        variants = listed_variants(event.product_id, [event.variant])
        await ReadModels(ctx.session).save_variants(event.product_id, variants, event.at)

    async def on_low_stock(self, event: LowStock, ctx: HandlerContext) -> None:
        """To the seller, naming the variant. Its listing comes on another queue and may not
        be here yet: wait for it a little (VARIANT_WAIT), then go on without it."""
        read_models = ReadModels(ctx.session)
        variant = await read_models.variant(event.variant_id) if event.variant_id is not None else None
        if not variant_wait_over(event.variant_id, variant, event.at, datetime.now(UTC)):
            raise RetryLater("the variant's listing is not known yet", after=_RETRY_SECONDS)
        names = await read_models.product_names([event.product_id])
        variables = low_stock_variables(
            event.product_id,
            event.variant_id,
            names.get(event.product_id),
            variant,
            available=event.available,
            threshold=event.threshold,
        )
        await self._notifier.notify(ctx, Notice("low_stock", event.seller_id, "seller", variables))

    # --- orders and payments ---

    async def on_order_placed(self, event: OrderPlaced, ctx: HandlerContext) -> None:
        await ReadModels(ctx.session).add_order(event)

    async def on_order_status(self, event: OrderStatusChanged, ctx: HandlerContext) -> None:
        """confirmed, cancelled, shipped, delivered: one template each, named for the status."""
        order = await self._order(ctx, event.order_id, event.at)
        variables = await self._order_variables(ctx, event.order_id, event.total_minor, event.currency, order)
        if event.status == "cancelled":
            variables["reason"] = CANCEL_REASONS.get(event.cancel_reason or "", _UNKNOWN_REASON)
        if event.status == "shipped":
            variables.update(shipment_variables(event.carrier, event.tracking_number))
        await self._notifier.notify(ctx, Notice(f"order_{event.status}", event.user_id, "orders", variables))

    async def on_payment_failed(self, event: OrderStatusChanged, ctx: HandlerContext) -> None:
        """The order's payment failed: it can be paid again (the order's page) until its due time."""
        order = await self._order(ctx, event.order_id, event.at)
        variables = await self._order_variables(ctx, event.order_id, event.total_minor, event.currency, order)
        variables["due_by"] = when(event.payment_due_by or event.at)
        await self._notifier.notify(ctx, Notice("payment_failed", event.user_id, "orders", variables))

    async def on_payment_refunded(self, event: PaymentResult, ctx: HandlerContext) -> None:
        order = await self._order(ctx, event.order_id, event.at)
        if order is None:
            log.warning("refund of an order never seen here: nobody to notify", extra={"order_id": str(event.order_id)})
            return
        variables = await self._order_variables(ctx, order.order_id, order.total_minor, order.currency, order)
        variables["amount"] = money(event.amount_minor, event.currency)
        await self._notifier.notify(ctx, Notice("payment_refunded", order.user_id, "orders", variables))

    async def on_return_approved(self, event: ReturnChanged, ctx: HandlerContext) -> None:
        """The customer's return was approved: what to send back, and the seller's note."""
        order = await self._order(ctx, event.order_id, event.at)
        total = order.total_minor if order is not None else 0
        variables = await self._order_variables(ctx, event.order_id, total, event.currency, order)
        variables["returned"] = [
            {"name": f"{x.name} ({x.variant})" if x.variant else x.name, "quantity": x.quantity} for x in event.items
        ]
        variables["note"] = event.note or ""
        await self._notifier.notify(ctx, Notice("return_approved", event.user_id, "orders", variables))

    async def _order(self, ctx: HandlerContext, order_id: UUID, event_at: datetime) -> KnownOrder | None:
        """The order as placed. Its placement comes on another queue and may not be here
        yet: wait for it a little (ORDER_WAIT), then go on without it."""
        order = await ReadModels(ctx.session).order(order_id)
        if order is None and not order_wait_over(event_at, datetime.now(UTC)):
            raise RetryLater("the order's placement is not known yet", after=_RETRY_SECONDS)
        return order

    async def _order_variables(
        self, ctx: HandlerContext, order_id: UUID, total_minor: int, currency: str, order: KnownOrder | None
    ) -> dict[str, object]:
        lines = order.lines if order is not None else ()
        names = await ReadModels(ctx.session).product_names(line.product_id for line in lines)
        amounts = order.amounts if order is not None else None
        return order_variables(order_id, total_minor, currency, lines, names, shop_url=self._shop_url, amounts=amounts)
