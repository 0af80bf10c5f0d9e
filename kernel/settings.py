"""Process configuration, read once from AGORA_* environment variables.

Every process (edge, workers, CLI) reads the same settings class so that one
environment file describes a whole deployment. `scripts/up` writes local
defaults and generated secrets to `.run/agora.env`; the real environment wins.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from ipaddress import ip_address
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SERVICES = ("users", "catalog", "inventory", "orders", "payments", "notifications")
"""Workers that exist today; each has `workers/<name>/app.py`."""


def secure_url(url: str) -> bool:
    """https, or http to this machine (a provider run locally in development and tests)."""
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in ("https", "http"):
        return False
    if parts.scheme == "https" or parts.hostname == "localhost":
        return True
    try:
        return ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


# The name in /api/auth/oauth/{provider}/... and in users.identities.provider.
OidcProviderName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


class OidcProvider(BaseModel):
    """One OpenID Connect identity provider (AGORA_OIDC_PROVIDERS, kernel/oidc.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Exactly as the provider writes it in `iss` (discovery is `{issuer}/.well-known/...`).
    issuer: str
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scopes: str = "openid email profile"
    # Some enterprise providers vouch for every email they issue but never send
    # `email_verified`; only then treat their emails as verified.
    trust_email: bool = False

    @field_validator("issuer")
    @classmethod
    def _https_unless_loopback(cls, issuer: str) -> str:
        if not secure_url(issuer):
            raise ValueError("an issuer must be an https URL (http only on a loopback address)")
        return issuer

    @field_validator("scopes")
    @classmethod
    def _openid_scope(cls, scopes: str) -> str:
        if "openid" not in scopes.split():
            raise ValueError("scopes must include openid")
        return scopes


def _json_or_nothing(value: object) -> object:
    # compose.yaml passes an unset variable on as "": no providers.
    if isinstance(value, str):
        return json.loads(value) if value.strip() else {}
    return value


OidcProviders = Annotated[dict[OidcProviderName, OidcProvider], NoDecode, BeforeValidator(_json_or_nothing)]


class Settings(BaseSettings):
    # Inputs stay out of error messages: a malformed value may hold a secret.
    model_config = SettingsConfigDict(
        env_prefix="AGORA_", env_file=".run/agora.env", extra="ignore", hide_input_in_errors=True
    )

    env: Literal["development", "test", "production"] = "development"
    host: str = "127.0.0.1"
    http_port: int = 8080
    # The edge's /metrics (and /healthz, /readyz) for Prometheus, on a port of its own
    # that is not published with the API. 0: AGORA_WORKER_HTTP_PORT_BASE (the workers
    # take base + 1 onwards).
    edge_metrics_port: int = 0
    # Processes of the edge serving the one port (edge/pool.py); `agora edge --processes N`
    # overrides it. More than 1 needs AGORA_CSRF_SECRET (every process signs with it).
    edge_processes: int = Field(default=1, ge=1)
    worker_http_port_base: int = 8100

    amqp_url: str = "amqp://agora:agora@127.0.0.1:5672/"
    database_url: str = "postgresql+asyncpg://agora:agora@127.0.0.1:5432/agora"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # RabbitMQ's management API with admin credentials: `agora partners` creates each
    # partner's broker user there (in the vhost of `amqp_url`).
    rabbitmq_management_url: str = "http://agora:agora@127.0.0.1:15672"

    # Data-at-rest encryption: "kid:base64(32 bytes),kid2:..." and the kid new values use.
    data_keys: str = ""
    data_key_id: str = ""

    jwt_issuer: str = "agora"
    jwt_audience: str = "agora-api"
    access_token_ttl_seconds: int = 900
    # Verifiers refresh the public keys this often; a new signing key waits longer than
    # that (and than the public JWKS cache, 5 minutes) before it signs anything.
    jwks_refresh_seconds: float = 60.0
    signing_key_activation_seconds: float = 330.0
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    bcrypt_rounds: int = Field(default=12, ge=4, le=15)
    # Per-deployment secret from which each worker's service-client secret is derived
    # (workers/runtime/identity.py); scripts/up generates one. Empty: no service identity.
    service_secret: str = ""

    # Browser sessions: the key that signs CSRF tokens (scripts/up generates one), and
    # the origins whose scripts may call the API with credentials (comma-separated).
    csrf_secret: str = ""
    cors_origins: str = ""
    # Third-party sign-in (OpenID Connect): '{"name": {"issuer": ..., "client_id": ...,
    # "client_secret": ..., "scopes": "openid email profile"}}'. Read by the edge and by
    # the users worker, which verifies the ID token again (kernel/oidc.py).
    oidc_providers: OidcProviders = Field(default_factory=dict)
    # The edge's public origin, as browsers and providers reach it; callbacks are
    # `{public_url}/api/auth/oauth/{name}/callback`. Empty: http://127.0.0.1:<http_port>.
    public_url: str = ""
    # Rate limits in the `limits` notation ("10/minute;100/hour"), by rule; a rule
    # not given here keeps its default (edge/ratelimit.py).
    rate_limits: dict[str, str] = Field(default_factory=dict)
    # Proxies in front of the edge that append to X-Forwarded-For; 0 = clients connect
    # directly and the peer address is the client.
    trusted_proxy_hops: int = Field(default=0, ge=0)

    rpc_timeout_seconds: float = 10.0
    max_body_bytes: int = 64 * 1024
    prefetch: int = Field(default=16, ge=1)
    # With the backoff below, 20 deliveries span about four minutes: enough to ride
    # out a database restart before a message is dead-lettered.
    delivery_limit: int = Field(default=20, ge=1)
    # The most dead letters one dead-letter queue keeps; past it the oldest are dropped
    # (a policy that `agora broker setup` sets; docs/operations.md).
    dead_letter_max_length: int = Field(default=10_000, ge=1)
    # How often each worker reports its dead-letter queues' depth (a gauge to alert on).
    dead_letter_scan_seconds: float = Field(default=30.0, gt=0)
    # The longest a handler may run (its transaction included) before it is given up
    # and counted as an unexpected failure: longer than a payment provider's timeout.
    handler_timeout_seconds: float = Field(default=30.0, gt=0)
    retry_backoff_cap_seconds: float = 10.0
    graceful_timeout_seconds: float = 15.0
    outbox_poll_seconds: float = 1.0
    # Off runs handlers without publishing (a relay can run elsewhere); tests use it
    # to stop a worker between its commit and its publish.
    outbox_relay: bool = True
    log_level: str = "INFO"
    # The order saga (workers/orders/orders/saga.py): how long it waits for a reservation
    # (resent up to 5 times), for an authorization (then it voids it and waits to be paid
    # again), how long after a failed payment the order may be paid again (its stock held:
    # the reservation's TTL grows with it; then it is cancelled), and between resends of
    # commit, capture, release, void and refund; how often each orders replica's sweeper
    # looks for sagas past their deadline.
    saga_reserve_deadline_seconds: float = Field(default=30.0, gt=0)
    saga_payment_deadline_seconds: float = Field(default=60.0, gt=0)
    # At most a day: the reservation's TTL (inventory caps it at 7 days) grows with it.
    saga_pay_again_seconds: float = Field(default=900.0, gt=0, le=24 * 3600)
    saga_retry_seconds: float = Field(default=5.0, gt=0)
    saga_sweep_seconds: float = Field(default=1.0, gt=0)
    # Returns (issue 18): how long after delivery a member may ask to return an order's goods.
    return_window_days: int = Field(default=30, ge=0, le=3650)
    # The payment service provider the payments worker calls (the sandbox,
    # sandboxes/payment_sandbox.py, in development and tests), and how long it waits for
    # one answer before it reports the authorization as failed (outcome unknown).
    payment_api_url: str = "http://127.0.0.1:1090"
    payment_api_timeout_seconds: float = Field(default=10.0, gt=0)
    # The provider speaks Stripe's API (issue 19): the secret key the payments worker calls
    # it with (`sk_test_…` for the sandbox or Stripe's test mode, `sk_live_…` live), and the
    # webhook endpoint's signing secret (`whsec_…`) it verifies events with. Only the
    # payments worker holds them; the edge forwards webhooks unverified.
    stripe_secret_key: SecretStr = SecretStr("")
    stripe_webhook_secret: SecretStr = SecretStr("")
    # Outgoing email (workers/notifications/channels.py). AGORA_SMTP_HOST/PORT are also
    # where the development sink (sandboxes/smtp_sink.py) listens. In production point them at
    # the relay and turn on STARTTLS (and authentication if the relay wants it).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "Agora <no-reply@example.com>"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    # Text messages go through Twilio's Messages API: in development and tests the SMS
    # sandbox (sandboxes/sms_sandbox.py) plays Twilio at twilio_api_url and accepts the
    # credentials scripts/up generates; in production https://api.twilio.com and the
    # account's own. Sent from twilio_from_number, or by the Messaging Service if set.
    twilio_api_url: str = "http://127.0.0.1:1091"
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_from_number: str = "+15005550006"
    twilio_messaging_service_sid: str = ""
    twilio_timeout_seconds: float = Field(default=10.0, gt=0)
    # Notifications (workers/notifications): the shop's name and storefront (links to an
    # order are `{shop_url}/orders/{id}`; empty: the public URL) in messages, and the
    # retries of a delivery the provider refused for now: after 1 s, 2 s, 4 s, ... (at
    # most the cap), failed after `notification_max_attempts` attempts in all.
    shop_name: str = "Agora"
    shop_url: str = ""
    notification_max_attempts: int = Field(default=6, ge=1)
    notification_retry_base_seconds: float = Field(default=1.0, gt=0)
    notification_retry_cap_seconds: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _production_secrets(self) -> Settings:
        """Production refuses short or published development secrets.

        A secret that is not set is not refused here: each process holds only the
        secrets it uses (ops/broker_users.py keeps the data keys and the service secret
        from the edge, deploy/ the CSRF secret from the workers), and what uses one
        refuses to start without it in production (the edge's CSRF signer, the field
        cipher, a worker's service identity).
        """
        if self.env != "production":
            return self
        weak = [
            name
            for name, value in (("AGORA_CSRF_SECRET", self.csrf_secret), ("AGORA_SERVICE_SECRET", self.service_secret))
            if value and (len(value) < 32 or any(marker in value for marker in _DEVELOPMENT_SECRETS))
        ]
        if any(marker in self.data_keys for marker in _DEVELOPMENT_SECRETS):
            weak.append("AGORA_DATA_KEYS")
        if weak:
            raise ValueError(f"AGORA_ENV=production needs real secrets: {', '.join(weak)}")
        return self


# Values published in compose.yaml for development, never acceptable in production.
_DEVELOPMENT_SECRETS = ("change-me", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")


def worker_port(settings: Settings, service: str) -> int:
    """Where a worker pool serves /healthz, /readyz and /metrics by default."""
    return settings.worker_http_port_base + SERVICES.index(service) + 1


@lru_cache
def get_settings() -> Settings:
    # AGORA_ENV_FILE names the settings file (default .run/agora.env, which scripts/up
    # writes); empty, none is read: processes started by `agora launch` get exactly the
    # environment ops/broker_users.py gives them, and no other process's secrets.
    env_file = os.environ.get("AGORA_ENV_FILE", ".run/agora.env") or None
    return Settings(_env_file=env_file)
