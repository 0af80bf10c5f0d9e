"""The notifications worker: email and SMS on other services' events, and their settings.

Run: `agora worker notifications [--workers N]` (or `faststream run workers.notifications.app:app`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import catalog, inventory, orders, payments, users
from kernel.settings import get_settings
from workers.notifications import settings_handlers, templates
from workers.notifications.channels import EmailSender, SmsSender
from workers.notifications.delivery import Notifier
from workers.notifications.handlers import NotificationHandlers
from workers.runtime.service import WorkerService

settings = get_settings()
sms = SmsSender(settings)


async def _close_sms(svc: WorkerService) -> None:
    await sms.close()


async def _seed_templates(svc: WorkerService) -> None:
    async with svc.sessions.begin() as session:
        await templates.seed_defaults(session, datetime.now(UTC))


service = WorkerService("notifications", settings=settings, on_startup=[_seed_templates], on_shutdown=[_close_sms])
handlers = NotificationHandlers(Notifier(settings, EmailSender(settings), sms), settings)

service.event(users.USER_REGISTERED, handlers.on_user_registered)
service.event(users.PASSWORD_CHANGED, handlers.on_password_changed)
service.event(users.SIGNED_IN, handlers.on_signed_in)
service.event(users.USER_ERASED, handlers.on_user_erased)
service.event(catalog.PRODUCT_CREATED, handlers.on_product_created)
service.event(catalog.PRODUCT_UPDATED, handlers.on_product_updated)
service.event(catalog.PRODUCT_DELETED, handlers.on_product_deleted)
service.event(inventory.LOW_STOCK, handlers.on_low_stock)
service.event(orders.ORDER_PLACED, handlers.on_order_placed)
for status_event in (orders.ORDER_CONFIRMED, orders.ORDER_CANCELLED, orders.ORDER_SHIPPED, orders.ORDER_DELIVERED):
    service.event(status_event, handlers.on_order_status)
service.event(payments.PAYMENT_REFUNDED, handlers.on_payment_refunded)
settings_handlers.register(service)

app = service.app
