"""The notifications worker: email and SMS on other services' events, and their settings.

Run: `agora worker notifications [--workers N]` (or `faststream run workers.notifications.app:app`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import catalog, inventory, notifications, orders, payments, returns, users
from kernel.settings import get_settings
from workers.notifications import templates
from workers.notifications.channels import EmailSender, SmsSender
from workers.notifications.delivery import Notifier
from workers.notifications.handlers import NotificationHandlers
from workers.notifications.repository import Deliveries
from workers.notifications.settings_handlers import SettingsHandlers
from workers.runtime.service import WorkerService

settings = get_settings()
sms = SmsSender(settings)


async def _close_sms(svc: WorkerService) -> None:
    await sms.close()


async def _seed_templates(svc: WorkerService) -> None:
    async with svc.unit_of_work() as ctx:
        await templates.seed_defaults(ctx.session, datetime.now(UTC))


service = WorkerService("notifications", settings=settings, on_startup=[_seed_templates], on_shutdown=[_close_sms])
notifier = Notifier(settings, EmailSender(settings), sms, Deliveries(service.sessions), service.ask)
handlers = NotificationHandlers(notifier, settings)
preferences = SettingsHandlers()

service.event(users.USER_REGISTERED, handlers.on_user_registered)
service.event(users.PASSWORD_CHANGED, handlers.on_password_changed)
service.event(users.SIGNED_IN, handlers.on_signed_in)
service.event(users.USER_ERASED, handlers.on_user_erased)
service.event(catalog.PRODUCT_CREATED, handlers.on_product_created)
service.event(catalog.PRODUCT_UPDATED, handlers.on_product_updated)
service.event(catalog.PRODUCT_DELETED, handlers.on_product_deleted)
# Not variant_withdrawn: a withdrawn variant keeps its name here, a late notice may still need it.
service.event(catalog.VARIANT_ADDED, handlers.on_variant_changed)
service.event(catalog.VARIANT_UPDATED, handlers.on_variant_changed)
service.event(inventory.LOW_STOCK, handlers.on_low_stock)
service.event(orders.ORDER_PLACED, handlers.on_order_placed)
for status_event in (orders.ORDER_CONFIRMED, orders.ORDER_CANCELLED, orders.ORDER_SHIPPED, orders.ORDER_DELIVERED):
    service.event(status_event, handlers.on_order_status)
service.event(orders.ORDER_PAYMENT_FAILED, handlers.on_payment_failed)
service.event(payments.PAYMENT_REFUNDED, handlers.on_payment_refunded)
service.event(returns.RETURN_APPROVED, handlers.on_return_approved)
service.command(notifications.GET_NOTIFICATION_PREFERENCES, preferences.get_preferences)
service.command(notifications.SET_NOTIFICATION_PREFERENCES, preferences.set_preferences)
service.command(notifications.LIST_TEMPLATES, preferences.list_templates)
service.command(notifications.GET_TEMPLATE, preferences.get_template)
service.command(notifications.SET_TEMPLATE, preferences.set_template)
service.command(notifications.PREVIEW_TEMPLATE, preferences.preview_template)
service.command(notifications.EXPORT_NOTIFICATION_DATA, preferences.export_user_data)

app = service.app
