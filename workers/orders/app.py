"""The orders worker: carts, orders and the order saga.

Run: `agora worker orders [--workers N]` (or `faststream run workers.orders.app:app`).
"""

from __future__ import annotations

from datetime import timedelta

from contracts import carts, catalog, inventory, orders, payments, shipping, taxes, users
from kernel.crypto import FieldCipher
from workers.orders.carts.handlers import CartHandlers
from workers.orders.orders.handlers import OrderHandlers
from workers.orders.orders.saga import SagaConfig
from workers.orders.products.handlers import ProductHandlers
from workers.orders.sales.handlers import SalesHandlers
from workers.orders.shipping.handlers import ShippingHandlers
from workers.orders.taxes.handlers import TaxHandlers
from workers.runtime.service import WorkerService

service = WorkerService("orders")
settings = service.settings
cart = CartHandlers()
products = ProductHandlers()
sales = SalesHandlers()
shipping_methods = ShippingHandlers()
tax_settings = TaxHandlers()
handlers = OrderHandlers(
    FieldCipher.from_config(settings.data_keys, settings.data_key_id),
    SagaConfig(
        reserve_deadline=timedelta(seconds=settings.saga_reserve_deadline_seconds),
        payment_deadline=timedelta(seconds=settings.saga_payment_deadline_seconds),
        retry_after=timedelta(seconds=settings.saga_retry_seconds),
        pay_again=timedelta(seconds=settings.saga_pay_again_seconds),
    ),
)

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
    service.event(reservation_event, handlers.on_reservation)
for payment_event in payments.EVENTS:
    service.event(payment_event, handlers.on_payment)
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

app = service.app
