"""Shipping methods: admins add, change and delete them; anyone lists those on offer."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from contracts.shipping import (
    CreateShippingMethod,
    DeleteShippingMethod,
    ListShippingMethods,
    ShippingMethodList,
    ShippingMethodView,
    UpdateShippingMethod,
    shipping_minor,
)
from workers.orders.shipping.model import new_method, require_admin
from workers.orders.shipping.repository import ShippingRepository
from workers.runtime.context import HandlerContext
from workers.runtime.errors import not_found

log = logging.getLogger("agora.orders")


class ShippingHandlers:
    """Wired in app.py."""

    async def list_shipping_methods(self, cmd: ListShippingMethods, ctx: HandlerContext) -> ShippingMethodList:
        methods = [m for m in await ShippingRepository(ctx.session).live() if m.serves(cmd.country, cmd.currency)]
        if cmd.currency is None:
            return ShippingMethodList(items=tuple(m.view() for m in methods))
        currency = cmd.currency
        subtotal = shipping_minor(cmd.subtotal, currency) if cmd.subtotal is not None else None
        methods.sort(key=lambda m: (m.price_for(currency, subtotal), m.max_days, m.name))
        return ShippingMethodList(items=tuple(m.view(currency, subtotal) for m in methods))

    async def create_shipping_method(self, cmd: CreateShippingMethod, ctx: HandlerContext) -> ShippingMethodView:
        require_admin(ctx.require_actor())
        method = new_method(cmd, uuid.uuid4(), datetime.now(UTC))
        await ShippingRepository(ctx.session).add(method)
        log.info("shipping method created", extra={"method_id": str(method.method_id)})
        return method.view()

    async def update_shipping_method(self, cmd: UpdateShippingMethod, ctx: HandlerContext) -> ShippingMethodView:
        require_admin(ctx.require_actor())
        repo = ShippingRepository(ctx.session)
        method = await repo.get(cmd.method_id, for_update=True)
        if method is None:
            raise not_found("shipping method")
        updated = method.updated(cmd.model_dump(exclude_unset=True, exclude={"method_id"}), datetime.now(UTC))
        await repo.save(updated)
        return updated.view()

    async def delete_shipping_method(self, cmd: DeleteShippingMethod, ctx: HandlerContext) -> None:
        require_admin(ctx.require_actor())
        repo = ShippingRepository(ctx.session)
        if await repo.get(cmd.method_id, for_update=True) is None:
            raise not_found("shipping method")
        await repo.delete(cmd.method_id, datetime.now(UTC))
