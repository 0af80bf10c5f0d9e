"""Vouchers: admins add, read, list, change and deactivate them (a checkout applies
one: workers/orders/orders/handlers.py)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from contracts.errors import FieldError
from contracts.vouchers import CreateVoucher, GetVoucher, ListVouchers, UpdateVoucher, VoucherList, VoucherView
from workers.orders.vouchers.model import new_voucher, require_admin
from workers.orders.vouchers.repository import VoucherRepository
from workers.runtime.context import HandlerContext
from workers.runtime.errors import DomainError, not_found

log = logging.getLogger("agora.orders")


class VoucherHandlers:
    """Wired in app.py."""

    async def list_vouchers(self, query: ListVouchers, ctx: HandlerContext) -> VoucherList:
        require_admin(ctx.require_actor())
        found = await VoucherRepository(ctx.session).listing(query.active)
        return VoucherList(items=tuple(v.view() for v in found))

    async def get_voucher(self, query: GetVoucher, ctx: HandlerContext) -> VoucherView:
        require_admin(ctx.require_actor())
        voucher = await VoucherRepository(ctx.session).get(query.voucher_id)
        if voucher is None:
            raise not_found("voucher")
        return voucher.view()

    async def create_voucher(self, cmd: CreateVoucher, ctx: HandlerContext) -> VoucherView:
        require_admin(ctx.require_actor())
        voucher = new_voucher(cmd, uuid.uuid4(), datetime.now(UTC))
        if not await VoucherRepository(ctx.session).add(voucher):
            raise DomainError(
                "conflict", f"the code {voucher.code} is taken", (FieldError(field="code", message="is taken"),)
            )
        log.info("voucher created", extra={"voucher_id": str(voucher.voucher_id)})
        return voucher.view()

    async def update_voucher(self, cmd: UpdateVoucher, ctx: HandlerContext) -> VoucherView:
        require_admin(ctx.require_actor())
        repo = VoucherRepository(ctx.session)
        voucher = await repo.get(cmd.voucher_id, for_update=True)
        if voucher is None:
            raise not_found("voucher")
        updated = voucher.updated(cmd.model_dump(exclude_unset=True, exclude={"voucher_id"}), datetime.now(UTC))
        await repo.save(updated)
        return updated.view()
