"""The users service's schema: accounts, signing keys, revocations, refresh tokens, linked
identities, OAuth clients and the audit log."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, MetaData, String, Table, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from db.tables.base import messaging_tables

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
