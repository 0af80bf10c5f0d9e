"""Table definitions, one `MetaData` per service schema.

Every service schema gets the same two messaging tables (outbox and inbox) from
`messaging_tables`; the domain tables follow below it, one section per service.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

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
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
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

# --- inventory -------------------------------------------------------------------------

inventory_metadata = MetaData(schema="inventory")
inventory_outbox, inventory_inbox = messaging_tables(inventory_metadata)

ALL_METADATA = (users_metadata, catalog_metadata, inventory_metadata)

# Outbox and inbox per service schema, for the runtime to look up by service name.
MESSAGING: dict[str, tuple[Table, Table]] = {
    "users": (users_outbox, users_inbox),
    "catalog": (catalog_outbox, catalog_inbox),
    "inventory": (inventory_outbox, inventory_inbox),
}
