"""Table definitions, one `MetaData` per service schema.

Every service schema gets the same two messaging tables (outbox and inbox) from
`messaging_tables`; the domain tables follow below it, one section per service.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID

SCHEMAS = ("users", "catalog", "inventory", "orders", "payments", "notifications")


def outbox_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes `schema`'s outbox relay."""
    return f"{schema}_outbox"


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    """The transactional outbox and the inbox of one service schema (architecture §3)."""
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("message_id", UUID(as_uuid=True), nullable=False, unique=True),
        Column("exchange", String(100), nullable=False),
        Column("routing_key", String(200), nullable=False),
        Column("headers", JSONB, nullable=False),
        Column("body", JSONB, nullable=False),
        # The time of the insert, not of its transaction's start (now()): a transaction
        # that waited on a provider must not write rows that look old enough for the
        # relay's sweep of leftovers the moment it commits.
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.clock_timestamp()),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        # A row the broker refused waits for its own retry instead of blocking the rest.
        Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("last_error", Text),
        Column("sent_at", DateTime(timezone=True)),
    )
    # The relay only ever looks at unsent rows; a partial index keeps that cheap as
    # the table of sent rows grows.
    Index("ix_outbox_unsent", outbox.c.id, postgresql_where=outbox.c.sent_at.is_(None))
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(200), primary_key=True),
        Column("message_id", UUID(as_uuid=True), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    return outbox, inbox


# --- users -----------------------------------------------------------------------------

users_metadata = MetaData(schema="users")
users_outbox, users_inbox = messaging_tables(users_metadata)

users = Table(
    "users",
    users_metadata,
    Column("user_id", UUID(as_uuid=True), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("username", String(32), nullable=False),
    # None: the account signs in only through an identity provider (OIDC).
    Column("password_hash", Text),
    Column("role", String(16), nullable=False, server_default="member"),
    # AES-256-GCM ciphertexts; the key id is stored beside each value.
    Column("phone_enc", Text),
    Column("phone_key_id", String(32)),
    Column("address_enc", Text),
    Column("address_key_id", String(32)),
    Column("disabled_at", DateTime(timezone=True)),
    # Erased (GDPR): personal data is gone, the row stays so ids in other services resolve.
    Column("erased_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
# Uniqueness is case-insensitive: "Alice" and "alice" are one username.
Index("uq_users_email", func.lower(users.c.email), unique=True)
Index("uq_users_username", func.lower(users.c.username), unique=True)

signing_keys = Table(
    "signing_keys",
    users_metadata,
    Column("kid", String(64), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    Column("private_key_enc", Text, nullable=False),
    Column("private_key_key_id", String(32), nullable=False),
    Column("public_jwk", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Retired keys still verify tokens until those expire; only the newest signs.
    Column("retired_at", DateTime(timezone=True)),
)

# Access tokens issued before `not_before` are void: for one session (`session_id`, the
# refresh-token family) or for every session of the user (`session_id` null). Kept for
# as long as an access token can live; every verifier loads them at start.
token_revocations = Table(
    "token_revocations",
    users_metadata,
    Column("revocation_id", BigInteger, primary_key=True, autoincrement=True),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("session_id", UUID(as_uuid=True)),
    Column("not_before", DateTime(timezone=True), nullable=False, index=True),
    Column("reason", String(32), nullable=False),
)

refresh_tokens = Table(
    "refresh_tokens",
    users_metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("family_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("user_id", UUID(as_uuid=True), ForeignKey("users.users.user_id", ondelete="CASCADE"), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

# Accounts at an OpenID Connect provider linked to an Agora user.
identities = Table(
    "identities",
    users_metadata,
    Column("provider", String(64), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("user_id", UUID(as_uuid=True), ForeignKey("users.users.user_id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_identities_user_id", "user_id"),
)

# OAuth 2.0 clients that use the client-credentials grant: partner systems and
# Agora's own services. The client id is also the `sub` of the tokens it gets.
clients = Table(
    "clients",
    users_metadata,
    Column("client_id", UUID(as_uuid=True), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # "partner" or "service"
    Column("secret_hash", Text, nullable=False),
    Column("scopes", ARRAY(String(64)), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True)),
)

# Who did what as an admin (or to an account's standing), append-only.
audit_log = Table(
    "audit_log",
    users_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor_id", UUID(as_uuid=True)),
    Column("actor_role", String(16), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target_id", UUID(as_uuid=True)),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("correlation_id", String(128)),
    Index("ix_audit_log_at", "at"),
)

# --- catalog ---------------------------------------------------------------------------

catalog_metadata = MetaData(schema="catalog")
catalog_outbox, catalog_inbox = messaging_tables(catalog_metadata)

# A tree: a category's subtree is found with a recursive query (the table is small).
categories = Table(
    "categories",
    catalog_metadata,
    Column("slug", String(64), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("parent", String(64), ForeignKey("catalog.categories.slug", ondelete="RESTRICT")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("parent IS NULL OR parent <> slug", name="ck_categories_not_own_parent"),
    Index("ix_categories_parent", "parent"),
)

# Name weighs more than description in the full-text rank (A above B).
PRODUCT_SEARCH_VECTOR = (
    "setweight(to_tsvector('english'::regconfig, name), 'A') || "
    "setweight(to_tsvector('english'::regconfig, description), 'B')"
)

products = Table(
    "products",
    catalog_metadata,
    Column("product_id", UUID(as_uuid=True), primary_key=True),
    Column("seller_id", UUID(as_uuid=True), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("price_exponent", SmallInteger, nullable=False),
    # The price as an amount, for filters and sorting across minor-unit exponents.
    Column(
        "price_amount",
        Numeric(20, 4),
        Computed("price_minor::numeric / power(10::numeric, price_exponent::numeric)", persisted=True),
        nullable=False,
    ),
    Column("category", String(64), ForeignKey("catalog.categories.slug", ondelete="RESTRICT"), nullable=False),
    Column("image_url", String(2048)),
    # Read model of the inventory service's stock (from inventory.stock_changed.v1).
    Column("available", Integer, nullable=False, server_default=text("0")),
    Column("stock_updated_at", DateTime(timezone=True)),
    Column("search", TSVECTOR, Computed(PRODUCT_SEARCH_VECTOR, persisted=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Withdrawn: invisible to every read, kept for the orders that refer to it.
    Column("deleted_at", DateTime(timezone=True)),
    CheckConstraint("price_minor > 0", name="ck_products_price_positive"),
    Index("ix_products_search", "search", postgresql_using="gin"),
    Index("ix_products_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}),
    Index("ix_products_seller", "seller_id", "created_at"),
    Index("ix_products_category", "category"),
)
# The keyset orders of the listing, over live products only.
Index(
    "ix_products_newest",
    products.c.created_at,
    products.c.product_id,
    postgresql_where=products.c.deleted_at.is_(None),
)
Index(
    "ix_products_price",
    products.c.price_amount,
    products.c.product_id,
    postgresql_where=products.c.deleted_at.is_(None),
)

# --- inventory -------------------------------------------------------------------------

inventory_metadata = MetaData(schema="inventory")
inventory_outbox, inventory_inbox = messaging_tables(inventory_metadata)

# One row per product, made from catalog.product_created.v1. `available` is what can be
# sold, `reserved` what orders in their saga hold; neither may go below zero.
stock = Table(
    "stock",
    inventory_metadata,
    Column("product_id", UUID(as_uuid=True), primary_key=True),
    # The product's seller (from the catalog event): the owner who may change the stock.
    Column("seller_id", UUID(as_uuid=True), nullable=False),
    Column("available", Integer, nullable=False),
    Column("reserved", Integer, nullable=False, server_default=text("0")),
    Column("low_stock_threshold", Integer, nullable=False, server_default=text("0")),
    # The product was deleted from the catalog: nothing more is reserved or set.
    Column("discontinued_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The kind of the latest movement not yet announced in `inventory.stock_changed`
    # (issue 14: one event per product per moment, not one per movement).
    Column("change_unannounced", String(32)),
    CheckConstraint("available >= 0", name="ck_stock_available_not_negative"),
    CheckConstraint("reserved >= 0", name="ck_stock_reserved_not_negative"),
    CheckConstraint("low_stock_threshold >= 0", name="ck_stock_threshold_not_negative"),
    Index("ix_stock_seller", "seller_id"),
    Index("ix_stock_unannounced", "product_id", postgresql_where=text("change_unannounced IS NOT NULL")),
)

# The stock-movement ledger, append-only: every change of a stock row, who made it and
# why. Per product, the deltas sum to the row's current `available` and `reserved`.
stock_movements = Table(
    "stock_movements",
    inventory_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("product_id", UUID(as_uuid=True), ForeignKey("inventory.stock.product_id"), nullable=False),
    # created, set, adjust, reserve, release, expire, commit, return
    Column("kind", String(16), nullable=False),
    Column("delta_available", Integer, nullable=False),
    Column("delta_reserved", Integer, nullable=False),
    Column("available_after", Integer, nullable=False),
    Column("reserved_after", Integer, nullable=False),
    Column("reason", Text),
    # The order a reservation movement belongs to.
    Column("reference", UUID(as_uuid=True)),
    Column("actor_id", UUID(as_uuid=True)),
    Column("actor_role", String(16)),
    Column("correlation_id", String(128)),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_stock_movements_product", "product_id", "id"),
)

# One reservation per order; the lines are fixed when it is made.
reservations = Table(
    "reservations",
    inventory_metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("lines", JSONB, nullable=False),
    Column("failed", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("expires_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(
        "status IN ('reserved', 'failed', 'released', 'expired', 'committed', 'returned')",
        name="ck_reservations_status",
    ),
)
# The sweeper looks only at live reservations, oldest deadline first.
Index("ix_reservations_expiry", reservations.c.expires_at, postgresql_where=reservations.c.status == "reserved")

# --- orders ----------------------------------------------------------------------------

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
    # Null once the customer's account was erased (the order stays, for accounting).
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
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("status IN ('pending', 'confirmed', 'shipped', 'delivered', 'cancelled')", name="ck_orders_status"),
    CheckConstraint("total_minor > 0", name="ck_orders_total_positive"),
    Index("ix_orders_user", "user_id", "created_at", "order_id"),
)
# The sweeper looks only at sagas still running, oldest deadline first.
Index("ix_orders_deadline", orders.c.deadline, postgresql_where=orders.c.step != "done")

# The lines of an order, one per product, with the price it was sold at.
order_lines = Table(
    "order_lines",
    orders_metadata,
    Column("order_id", UUID(as_uuid=True), ForeignKey("orders.orders.order_id"), primary_key=True),
    Column("product_id", UUID(as_uuid=True), primary_key=True),
    Column("seller_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    CheckConstraint("quantity > 0", name="ck_order_lines_quantity_positive"),
    Index("ix_order_lines_seller", "seller_id"),
)

# Every status an order took, in order: `history` in the API and the SSE stream.
order_history = Table(
    "order_history",
    orders_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("order_id", UUID(as_uuid=True), ForeignKey("orders.orders.order_id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_order_history_order", "order_id", "id"),
)

# The sales report's projection (migration 0012), kept from the orders service's own
# `order_confirmed` and `order_cancelled` events: one row per line of a confirmed order,
# with the seller, the name and price it was sold at. A cancellation after confirmation
# sets `cancelled_at`, and the row drops out of revenue.
sales = Table(
    "sales",
    orders_metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("product_id", UUID(as_uuid=True), primary_key=True),
    Column("seller_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
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
    Column("product_id", UUID(as_uuid=True), primary_key=True),
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

# --- payments --------------------------------------------------------------------------

payments_metadata = MetaData(schema="payments")
payments_outbox, payments_inbox = messaging_tables(payments_metadata)

# One payment per order: where its authorization stands at the provider. No card data:
# the provider's authorization id is the only reference kept.
payments = Table(
    "payments",
    payments_metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("authorization_id", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(
        "status IN ('unknown', 'authorized', 'declined', 'captured', 'voided', 'refunded')",
        name="ck_payments_status",
    ),
    CheckConstraint("amount_minor >= 0", name="ck_payments_amount_not_negative"),
)

# Every payment step handled, append-only: the audit trail of what was asked and answered.
payment_attempts = Table(
    "payment_attempts",
    payments_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("order_id", UUID(as_uuid=True), nullable=False),
    # authorize, capture, void, refund
    Column("step", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text),
    # False: answered from the payment as it stood, without calling the provider.
    Column("called_provider", Boolean, nullable=False),
    Column("provider_reference", String(64)),
    Column("correlation_id", String(128)),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_payment_attempts_order", "order_id", "id"),
)

# --- notifications ---------------------------------------------------------------------

notifications_metadata = MetaData(schema="notifications")
notifications_outbox, notifications_inbox = messaging_tables(notifications_metadata)

# One row per (key, channel): the worker seeds the defaults of its catalogue
# (workers/notifications/templates.py) at start; admins edit them.
notification_templates = Table(
    "templates",
    notifications_metadata,
    Column("key", String(64), primary_key=True),
    Column("channel", String(8), primary_key=True),
    Column("subject", Text),
    Column("text", Text, nullable=False),
    Column("html", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", UUID(as_uuid=True)),
)

# A user without a row has the defaults: everything optional off.
notification_preferences = Table(
    "preferences",
    notifications_metadata,
    Column("user_id", UUID(as_uuid=True), primary_key=True),
    Column("sms_orders", Boolean, nullable=False, server_default=text("false")),
    Column("sms_security", Boolean, nullable=False, server_default=text("false")),
    Column("marketing_email", Boolean, nullable=False, server_default=text("false")),
    Column("marketing_sms", Boolean, nullable=False, server_default=text("false")),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One row per (triggering event, channel, recipient), written before the provider is
# called: a redelivered event finds it and never sends twice. No addresses or bodies.
deliveries = Table(
    "deliveries",
    notifications_metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("recipient_id", UUID(as_uuid=True), nullable=False),
    Column("template", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("provider_id", String(128)),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    UniqueConstraint("event_id", "channel", "recipient_id", name="uq_deliveries_event_channel_recipient"),
    CheckConstraint("status IN ('pending', 'sent', 'failed', 'skipped')", name="ck_deliveries_status"),
    Index("ix_deliveries_recipient", "recipient_id", "id"),
)

# Read model of orders.order_placed.v1: whose order it is and what it holds, for the
# events that carry only the order id (refunds, shipping, ...).
notification_orders = Table(
    "orders",
    notifications_metadata,
    Column("order_id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("items", JSONB, nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Index("ix_notification_orders_user", "user_id"),
)

# Read model of catalog events: a product's name and seller, for low-stock notices.
# `updated_at` is the event's time; an older event never overwrites a newer one.
notification_products = Table(
    "products",
    notifications_metadata,
    Column("product_id", UUID(as_uuid=True), primary_key=True),
    Column("seller_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The client fingerprints (SHA-256, not reversible) each user signed in from: a
# sign-in from one not seen before gets a security notice.
sign_in_fingerprints = Table(
    "sign_in_fingerprints",
    notifications_metadata,
    Column("user_id", UUID(as_uuid=True), primary_key=True),
    Column("fingerprint", String(64), primary_key=True),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
)

ALL_METADATA = (
    users_metadata,
    catalog_metadata,
    inventory_metadata,
    orders_metadata,
    payments_metadata,
    notifications_metadata,
)

# Outbox and inbox per service schema, for the runtime to look up by service name.
MESSAGING: dict[str, tuple[Table, Table]] = {
    "users": (users_outbox, users_inbox),
    "catalog": (catalog_outbox, catalog_inbox),
    "inventory": (inventory_outbox, inventory_inbox),
    "orders": (orders_outbox, orders_inbox),
    "payments": (payments_outbox, payments_inbox),
    "notifications": (notifications_outbox, notifications_inbox),
}
