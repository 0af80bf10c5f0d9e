"""The orders worker: carts, orders and the order saga.

Run: `agora worker orders [--workers N]` (or `faststream run workers.orders.app:app`).
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from contracts import carts, catalog, inventory, orders, payments, returns, shipping, taxes, users, vouchers
from contracts.payments import PaymentResult
from kernel.crypto import FieldCipher
from workers.orders.carts.handlers import CartHandlers
from workers.orders.orders.handlers import OrderHandlers
from workers.orders.orders.saga import SagaConfig
from workers.orders.products.handlers import ProductHandlers
from workers.orders.returns.handlers import ReturnHandlers
from workers.orders.returns.model import refund_of
from workers.orders.sales.handlers import SalesHandlers
from workers.orders.shipping.handlers import ShippingHandlers
from workers.orders.taxes.handlers import TaxHandlers
from workers.orders.vouchers.handlers import VoucherHandlers
from workers.runtime.context import HandlerContext
from workers.runtime.service import WorkerService, one_after_another

service = WorkerService("orders")
settings = service.settings
cart = CartHandlers()
products = ProductHandlers()
sales = SalesHandlers()
shipping_methods = ShippingHandlers()
tax_settings = TaxHandlers()
voucher_codes = VoucherHandlers()
cipher = FieldCipher.from_config(settings.data_keys, settings.data_key_id)
handlers = OrderHandlers(
    cipher,
    SagaConfig(
        reserve_deadline=timedelta(seconds=settings.saga_reserve_deadline_seconds),
        payment_deadline=timedelta(seconds=settings.saga_payment_deadline_seconds),
        retry_after=timedelta(seconds=settings.saga_retry_seconds),
        pay_again=timedelta(seconds=settings.saga_pay_again_seconds),
    ),
)
# An unanswered refund is asked for again after a minute by default (12 x the saga's retry).
returns_and_refunds = ReturnHandlers(
    cipher, timedelta(days=settings.return_window_days), timedelta(seconds=settings.saga_retry_seconds * 12)
)


async def on_payment(event: PaymentResult, ctx: HandlerContext) -> None:
    """A payments event goes to the refund it names (a return's or an admin's refund, which
    carries its reference), else to the order's saga (its own steps carry none)."""
    if refund_of(event.reference) is not None:
        await returns_and_refunds.on_refund_result(event, ctx)
    else:
        await handlers.on_payment(event, ctx)


def by_order(event: inventory.Reservation | PaymentResult) -> UUID:
    """The order a saga event moves: the order row its handler locks first."""
    return event.order_id


# carts (and the product read model they and orders are priced from)
service.event(catalog.PRODUCT_CREATED, products.on_product_created)
service.event(catalog.PRODUCT_UPDATED, products.on_product_updated)
service.event(catalog.PRODUCT_DELETED, products.on_product_deleted)
service.event(catalog.VARIANT_ADDED, products.on_variant_added)
service.event(catalog.VARIANT_UPDATED, products.on_variant_updated)
service.event(catalog.VARIANT_WITHDRAWN, products.on_variant_withdrawn)
service.command(carts.GET_CART, cart.get_cart)
service.command(carts.ADD_CART_ITEM, cart.add_cart_item)
service.command(carts.SET_CART_ITEM, cart.set_cart_item)
service.command(carts.REMOVE_CART_ITEM, cart.remove_cart_item)
service.command(carts.MERGE_CART, cart.merge_cart)
service.background("guest-cart-sweeper", cart.sweep_guest_carts, every=3600, batch_size=500)

# orders and their saga: inventory's and payments' outcome events drive it, the
# sweeper fires its deadlines
service.command(orders.PLACE_ORDER, handlers.place_order)
service.command(orders.GET_ORDER, handlers.get_order)
service.command(orders.PAY_ORDER, handlers.pay_order)
service.command(orders.UPDATE_ORDER_STATUS, handlers.update_order_status)
service.command(orders.LIST_USER_ORDERS, handlers.list_user_orders)
service.command(orders.LIST_ORDERS, handlers.list_orders)
service.command(orders.LIST_SELLER_ORDERS, handlers.list_seller_orders)
for reservation_event in (
    inventory.STOCK_RESERVED,
    inventory.RESERVATION_FAILED,
    inventory.STOCK_RELEASED,
    inventory.RESERVATION_COMMITTED,
    inventory.STOCK_RETURNED,
):
    service.event(
        reservation_event, handlers.on_reservation, many=one_after_another(handlers.on_reservation, key=by_order)
    )
for payment_event in payments.EVENTS:
    service.event(payment_event, on_payment, many=one_after_another(on_payment, key=by_order))
service.background("saga-sweeper", handlers.sweep_deadlines, every=service.settings.saga_sweep_seconds, batch_size=100)

# shipping methods (admins manage them; a checkout picks one)
service.command(shipping.LIST_SHIPPING_METHODS, shipping_methods.list_shipping_methods)
service.command(shipping.CREATE_SHIPPING_METHOD, shipping_methods.create_shipping_method)
service.command(shipping.UPDATE_SHIPPING_METHOD, shipping_methods.update_shipping_method)
service.command(shipping.DELETE_SHIPPING_METHOD, shipping_methods.delete_shipping_method)

# taxes (admins manage rates and currencies' settings; placing an order applies them)
service.command(taxes.LIST_TAX_RATES, tax_settings.list_tax_rates)
service.command(taxes.CREATE_TAX_RATE, tax_settings.create_tax_rate)
service.command(taxes.UPDATE_TAX_RATE, tax_settings.update_tax_rate)
service.command(taxes.DELETE_TAX_RATE, tax_settings.delete_tax_rate)
service.command(taxes.LIST_CURRENCY_TAX, tax_settings.list_currency_tax)
service.command(taxes.SET_CURRENCY_TAX, tax_settings.set_currency_tax)

# vouchers (admins manage them; placing an order applies one and reserves its use)
service.command(vouchers.LIST_VOUCHERS, voucher_codes.list_vouchers)
service.command(vouchers.GET_VOUCHER, voucher_codes.get_voucher)
service.command(vouchers.CREATE_VOUCHER, voucher_codes.create_voucher)
service.command(vouchers.UPDATE_VOUCHER, voucher_codes.update_voucher)

# returns and refunds (a member asks, a seller or admin handles it; payments' answers to
# the refunds come through on_payment above)
service.command(returns.REQUEST_RETURN, returns_and_refunds.request_return)
service.command(returns.GET_RETURN, returns_and_refunds.get_return)
service.command(returns.LIST_RETURNS, returns_and_refunds.list_returns)
service.command(returns.UPDATE_RETURN, returns_and_refunds.update_return)
service.command(returns.REFUND_RETURN, returns_and_refunds.refund_return)
service.command(returns.REFUND_ORDER, returns_and_refunds.refund_order)
service.background(
    "refund-resender", returns_and_refunds.resend_unanswered, every=settings.saga_sweep_seconds, batch_size=100
)

# the sales projection (the saga writes it) and what reads it
service.command(orders.SALES_REPORT, sales.sales_report)
service.command(orders.SALES_OVERVIEW, sales.sales_overview)

# personal data: the export gathered by the edge, and erasure
service.command(orders.EXPORT_USER_DATA, handlers.export_user_data)
service.event(users.USER_ERASED, handlers.on_user_erased)
service.event(users.USER_UPDATED, handlers.on_user_updated)
# the customers read model: what an order keeps of its customer (on_user_updated and
# on_user_erased above keep it too)
service.event(users.USER_REGISTERED, handlers.on_user_registered)
# the dashboard's search by email: rows sealed before its index existed, or re-keyed
service.background("customer-search-index", handlers.index_customer_emails, every=3600, batch_size=500)

app = service.app
