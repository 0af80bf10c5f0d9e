"""The orders service's schema: orders with their saga state, lines and history; the sales
projection; carts and the product read model they price from; closed accounts and the
customers read model."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from db.tables.base import messaging_tables

orders_metadata = MetaData(schema="orders")
orders_outbox, orders_inbox = messaging_tables(orders_metadata)

# One row per order: the order, and the state of its saga (architecture §7), changed
# only with `UPDATE ... WHERE version = :v` (optimistic locking across replicas).
orders = Table(
    "orders",
    orders_metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    # Who placed it: the member, or the partner client acting for one.
    Column("placed_by", UUID(as_uuid=True), nullable=False),
    # SHA-256 of the request, so a repeat with another body is refused.
    Column("request_hash", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    # Null once the customer's account was erased (the order stays, for accounting). With
    # the recipient's name and phone when given (migration 0022).
    Column("shipping_address_enc", Text),
    Column("shipping_address_key_id", String(32)),
    Column("payment_token", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("cancel_reason", String(32)),
    Column("step", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("deadline", DateTime(timezone=True)),
    Column("reservation", String(16), nullable=False),
    Column("payment", String(16), nullable=False),
    Column("authorized_at", DateTime(timezone=True)),
    Column("voided_at", DateTime(timezone=True)),
    # Cancelled before shipping after its stock was committed: that stock goes back on sale.
    Column("restock", Boolean, nullable=False, server_default=text("false")),
    # The end of the pay-again window once a payment failed (migration 0024): the API's
    # `payment_due_by` while the order awaits payment.
    Column("pay_by", DateTime(timezone=True)),
    # Placed from the member's cart: confirmed, its lines leave that cart (migration 0024).
    Column("from_cart", Boolean, nullable=False, server_default=text("false")),
    # The shipping method chosen at checkout, as it was then (migration 0023); null: none.
    Column("shipping_method_id", UUID(as_uuid=True)),
    Column("shipping_name", Text),
    Column("shipping_minor", BigInteger),
    Column("shipping_min_days", Integer),
    Column("shipping_max_days", Integer),
    # Taxes as computed at placement (migration 0025): whether the prices included them, the
    # tax on shipping, and the breakdown by rate (`[{"name", "rate", "amount_minor"}]`).
    Column("prices_include_tax", Boolean, nullable=False, server_default=text("false")),
    Column("shipping_tax_minor", BigInteger, nullable=False, server_default=text("0")),
    Column("tax_lines", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # The voucher's code it was placed with (migration 0026); null: none.
    Column("voucher_code", String(32)),
    # The parcel's, given by the seller when shipping (migration 0023).
    Column("tracking_number", String(64)),
    Column("carrier", String(64)),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The customer's email and name when the order was placed, sealed as one JSON value
    # (migration 0022); null when unknown, and once the customer's account was erased.
    Column("customer_enc", Text),
    Column("customer_key_id", String(32)),
    CheckConstraint("status IN ('pending', 'confirmed', 'shipped', 'delivered', 'cancelled')", name="ck_orders_status"),
    CheckConstraint("total_minor > 0", name="ck_orders_total_positive"),
    Index("ix_orders_user", "user_id", "created_at", "order_id"),
)
# The sweeper looks only at sagas still running, oldest deadline first.
Index("ix_orders_deadline", orders.c.deadline, postgresql_where=orders.c.step != "done")

# The lines of an order, one per variant (a product without options: its default variant,
# whose id is the product's), as it was sold: name, SKU, label, image and price, and the
# line's tax and discount (zero until taxes and vouchers exist; migration 0022).
order_lines = Table(
    "order_lines",
    orders_metadata,
    Column("order_id", UUID(as_uuid=True), ForeignKey("orders.orders.order_id"), primary_key=True),
    Column("variant_id", UUID(as_uuid=True), primary_key=True),
    Column("product_id", UUID(as_uuid=True), nullable=False),
    Column("seller_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("sku", String(64)),
    # The variant's option values for display ("M / Red"); "" for a default variant.
    Column("variant_label", Text, nullable=False, server_default=text("''")),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    Column("image_url", Text),
    Column("tax_minor", BigInteger, nullable=False, server_default=text("0")),
    Column("discount_minor", BigInteger, nullable=False, server_default=text("0")),
    CheckConstraint("quantity > 0", name="ck_order_lines_quantity_positive"),
    Index("ix_order_lines_seller", "seller_id"),
)

# Every status an order took, in order, and (still pending) each payment that failed or
# was made again: `history` in the API and the SSE stream. The payment's status, the
# cancel reason and the pay-again window's end as they were then (migration 0024; null in
# the entries written before).
order_history = Table(
    "order_history",
    orders_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("order_id", UUID(as_uuid=True), ForeignKey("orders.orders.order_id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("payment_status", String(16)),
    Column("cancel_reason", String(32)),
    Column("payment_due_by", DateTime(timezone=True)),
    Index("ix_order_history_order", "order_id", "id"),
)

# The sales report's projection (migration 0012), kept from the orders service's own
# `order_confirmed` and `order_cancelled` events: one row per line (variant) of a confirmed
# order, with the seller, the name and price it was sold at. A cancellation after
# confirmation sets `cancelled_at`, and the row drops out of revenue.
sales = Table(
    "sales",
    orders_metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("variant_id", UUID(as_uuid=True), primary_key=True),
    Column("product_id", UUID(as_uuid=True), nullable=False),
    Column("seller_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("variant_label", Text, nullable=False, server_default=text("''")),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    # The line's tax (in its price or added to it, as the order's prices said; migration 0025).
    Column("tax_minor", BigInteger, nullable=False, server_default=text("0")),
    # The line's share of a voucher's discount (migration 0026): revenue is what it sold for.
    Column("discount_minor", BigInteger, nullable=False, server_default=text("0")),
    Column("currency", String(3), nullable=False),
    Column("confirmed_at", DateTime(timezone=True), nullable=False),
    Column("cancelled_at", DateTime(timezone=True)),
    Index("ix_sales_seller", "seller_id", "confirmed_at"),
    Index("ix_sales_confirmed", "confirmed_at"),
)

# carts (migration 0009) ----------------------------------------------------------------

# The catalog's products as the orders service knows them, from catalog events: names
# and current prices for carts, and for pricing orders. `updated_at` is the event's
# time; an older event never overwrites a newer one.
order_products = Table(
    "products",
    orders_metadata,
    Column("product_id", UUID(as_uuid=True), primary_key=True),
    Column("seller_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The product has options: a line must name one of its variants (migration 0020).
    Column("has_options", Boolean, nullable=False, server_default=text("false")),
    # Its main image, for an order line's snapshot (migration 0022).
    Column("image_url", Text),
    # Which tax rates apply to it (migration 0025).
    Column("tax_class", String(32), nullable=False, server_default=text("'standard'")),
    # Its category's slug, for vouchers limited to categories (migration 0026).
    Column("category", Text),
)

# The products' variants as the orders service knows them (migration 0020): what a cart
# line or an order line is priced from, in its product's currency. `updated_at` is the
# event's time, as for products.
order_variants = Table(
    "product_variants",
    orders_metadata,
    Column("variant_id", UUID(as_uuid=True), primary_key=True),
    Column("product_id", UUID(as_uuid=True), nullable=False),
    Column("sku", String(64)),
    Column("label", Text, nullable=False, server_default=text("''")),
    Column("price_minor", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_product_variants_product", "product_id"),
)

# A guest cart has no user; a member's has one (at most one per member). Member carts
# are only ever found by user id, never by cart id.
carts = Table(
    "carts",
    orders_metadata,
    Column("cart_id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
# The sweeper looks for guest carts untouched for long.
Index("ix_carts_guest_updated", carts.c.updated_at, postgresql_where=carts.c.user_id.is_(None))

cart_items = Table(
    "cart_items",
    orders_metadata,
    Column("cart_id", UUID(as_uuid=True), ForeignKey("orders.carts.cart_id", ondelete="CASCADE"), primary_key=True),
    Column("variant_id", UUID(as_uuid=True), primary_key=True),
    Column("product_id", UUID(as_uuid=True), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("quantity BETWEEN 1 AND 99", name="ck_cart_items_quantity"),
)

# end of carts ---------------------------------------------------------------------------

# Accounts that can place no order, kept from the users service's events (an erased
# account for good, a disabled one until it is enabled again): a partner ordering "on
# behalf of" such a member is refused, whatever its token.
closed_accounts = Table(
    "closed_accounts",
    orders_metadata,
    Column("user_id", UUID(as_uuid=True), primary_key=True),
    Column("reason", String(16), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=False),
)

# The accounts as the orders service knows them (migration 0022), kept from the users
# service's events: what an order keeps of its customer when placed. The email is sealed
# (AES-256-GCM, bound to its row); it is null in a row an update made before the
# registration arrived. `updated_at` is the newest event's time. Deleted at erasure.
# The dashboard's order search (migration 0029) finds a customer by email through a keyed
# blind index of the normalised email (`email_index`, hex HMAC-SHA256 under a key derived
# from the data key `email_index_key_id`), and by part of the username (trigram index).
customers = Table(
    "customers",
    orders_metadata,
    Column("user_id", UUID(as_uuid=True), primary_key=True),
    Column("email_enc", Text),
    Column("email_key_id", String(32)),
    Column("username", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("email_index", String(64)),
    Column("email_index_key_id", String(32)),
    Index("ix_customers_email_index", "email_index"),
    Index(
        "ix_customers_username_trgm", "username", postgresql_using="gin", postgresql_ops={"username": "gin_trgm_ops"}
    ),
)

# Shipping methods (migration 0023), managed by admins: prices and free-shipping
# thresholds per currency in minor units (`{"USD": 490}`), the countries served. A
# deleted one keeps its row (`deleted_at`): orders placed with it name it.
shipping_methods = Table(
    "shipping_methods",
    orders_metadata,
    Column("method_id", UUID(as_uuid=True), primary_key=True),
    Column("name", Text, nullable=False),
    Column("countries", ARRAY(String(2)), nullable=False),
    Column("prices", JSONB, nullable=False),
    Column("free_from", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("min_days", Integer, nullable=False),
    Column("max_days", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    CheckConstraint("min_days <= max_days", name="shipping_days_ordered"),
)

# Tax rates (migration 0025), managed by admins: a percentage for one product tax class in
# one country, or one region of it (`region` '' for the whole country). The most specific
# rate applies.
tax_rates = Table(
    "tax_rates",
    orders_metadata,
    Column("rate_id", UUID(as_uuid=True), primary_key=True),
    Column("country", String(2), nullable=False),
    Column("region", Text, nullable=False, server_default=text("''")),
    Column("tax_class", String(32), nullable=False),
    Column("rate", Numeric(7, 4), nullable=False),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("country", "region", "tax_class", name="uq_tax_rates_place_class"),
)

# Whether a currency's prices include tax (migration 0025); a currency not here: they do not.
currency_tax = Table(
    "currency_tax",
    orders_metadata,
    Column("currency", String(3), primary_key=True),
    Column("prices_include_tax", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


# Vouchers (migration 0026), managed by admins: a percentage or amounts per currency (minor
# units, `{"USD": 500}`), a minimum spend per currency, a window, limits, and the categories
# and sellers it is limited to (empty: any). `uses` counts the orders holding a use
# (reserved or redeemed): a checkout takes one with `UPDATE ... WHERE uses < usage_limit`.
vouchers = Table(
    "vouchers",
    orders_metadata,
    Column("voucher_id", UUID(as_uuid=True), primary_key=True),
    Column("code", String(32), nullable=False),
    Column("percent", Numeric(7, 4)),
    Column("amounts", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("min_spend", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("starts_at", DateTime(timezone=True)),
    Column("ends_at", DateTime(timezone=True)),
    Column("usage_limit", Integer),
    Column("per_customer_limit", Integer),
    Column("categories", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("sellers", ARRAY(UUID(as_uuid=True)), nullable=False, server_default=text("'{}'")),
    Column("active", Boolean, nullable=False),
    Column("uses", Integer, nullable=False, server_default=text("0")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("code", name="uq_vouchers_code"),
    CheckConstraint("uses >= 0", name="ck_vouchers_uses"),
)

# One row per order that took a voucher's use (migration 0026): reserved when it was
# placed, redeemed when confirmed, released when cancelled (in the transaction that
# moves the order).
voucher_uses = Table(
    "voucher_uses",
    orders_metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("voucher_id", UUID(as_uuid=True), ForeignKey("orders.vouchers.voucher_id"), nullable=False),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("state", String(16), nullable=False),
    Column("discount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("state IN ('reserved', 'redeemed', 'released')", name="ck_voucher_uses_state"),
    Index("ix_voucher_uses_customer", "voucher_id", "user_id"),
)

# Returns and refunds (migration 0027, issue 18). A return: lines (and quantities) of a
# delivered order its customer sends back, from `requested` to `approved` or `refused`,
# `received` (each line resaleable or not) and `refunded`.
order_returns = Table(
    "returns",
    orders_metadata,
    Column("return_id", UUID(as_uuid=True), primary_key=True),
    Column("order_id", UUID(as_uuid=True), ForeignKey("orders.orders.order_id"), nullable=False),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    # Who asked: the customer, or an admin for them (a repeat must be theirs).
    Column("requested_by", UUID(as_uuid=True), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("note", Text),
    Column("currency", String(3), nullable=False),
    Column("decided_by", UUID(as_uuid=True)),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
    Column("received_at", DateTime(timezone=True)),
    Column("refunded_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("status IN ('requested', 'approved', 'refused', 'received', 'refunded')", name="ck_returns_status"),
    Index("ix_returns_order", "order_id"),
    Index("ix_returns_user", "user_id", "requested_at", "return_id"),
    Index("ix_returns_requested", "requested_at", "return_id"),
)

# A return's lines: one per variant of the order, as many as go back; `resaleable` once received.
return_lines = Table(
    "return_lines",
    orders_metadata,
    Column("return_id", UUID(as_uuid=True), ForeignKey("orders.returns.return_id"), primary_key=True),
    Column("variant_id", UUID(as_uuid=True), primary_key=True),
    Column("product_id", UUID(as_uuid=True), nullable=False),
    Column("seller_id", UUID(as_uuid=True), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("resaleable", Boolean),
    CheckConstraint("quantity > 0", name="ck_return_lines_quantity_positive"),
    Index("ix_return_lines_seller", "seller_id"),
)

# Money given back of an order through the payments service: a return's refund, or an
# admin's direct one (`return_id` null). `pending` until the payments service answers;
# `failed` ones count for nothing. `shipping_minor` is the part of `amount_minor` that is
# the shipping's.
refunds = Table(
    "refunds",
    orders_metadata,
    Column("refund_id", UUID(as_uuid=True), primary_key=True),
    Column("order_id", UUID(as_uuid=True), ForeignKey("orders.orders.order_id"), nullable=False),
    Column("return_id", UUID(as_uuid=True), ForeignKey("orders.returns.return_id")),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("status", String(16), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("shipping_minor", BigInteger, nullable=False, server_default=text("0")),
    Column("currency", String(3), nullable=False),
    Column("reason", Text),
    Column("failure", Text),
    Column("requested_by", UUID(as_uuid=True), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("settled_at", DateTime(timezone=True)),
    # While pending: how many times it was asked for, and when to ask again if no answer
    # came (the payments service answers nothing while the provider does not).
    Column("attempt", Integer, nullable=False, server_default=text("1")),
    Column("retry_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('pending', 'refunded', 'failed')", name="ck_refunds_status"),
    CheckConstraint("amount_minor > 0", name="ck_refunds_amount_positive"),
    CheckConstraint("shipping_minor >= 0 AND shipping_minor <= amount_minor", name="ck_refunds_shipping"),
    Index("ix_refunds_order", "order_id"),
)
# The resender looks only at refunds still waiting for an answer.
Index("ix_refunds_retry", refunds.c.retry_at, postgresql_where=refunds.c.status == "pending")

# What a refund gives back per line of the order (a return's refund; none for a direct one).
refund_lines = Table(
    "refund_lines",
    orders_metadata,
    Column("refund_id", UUID(as_uuid=True), ForeignKey("orders.refunds.refund_id"), primary_key=True),
    Column("variant_id", UUID(as_uuid=True), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    CheckConstraint("quantity > 0", name="ck_refund_lines_quantity_positive"),
    CheckConstraint("amount_minor >= 0", name="ck_refund_lines_amount"),
)
