"""Development and test stand-ins for outside services (an SMTP sink, Twilio-like SMS and
payment-provider sandboxes). Not product code: nothing in the product imports them."""

# The environment variables the stand-ins read (not through kernel/settings.py): what
# compose.yaml and deploy/overlays/dev may set for them (tests/unit/test_compose.py,
# tests/unit/test_deploy.py).
VARIABLES = frozenset(
    {
        "AGORA_SMTP_HOST",
        "AGORA_SMTP_PORT",
        "AGORA_SMTP_HTTP_PORT",
        "AGORA_RUN_DIR",
        "AGORA_PAYMENT_SANDBOX_HOST",
        "AGORA_PAYMENT_SANDBOX_PORT",
        "AGORA_SANDBOX_TIMEOUT_DELAY_SECONDS",
        "AGORA_PAYMENT_SANDBOX_WEBHOOK_URL",
        "AGORA_PAYMENT_SANDBOX_WEBHOOK_EVENTS",
        "AGORA_PAYMENT_SANDBOX_WEBHOOKS",
        "AGORA_STRIPE_SECRET_KEY",
        "AGORA_STRIPE_WEBHOOK_SECRET",
        "AGORA_SMS_SANDBOX_HOST",
        "AGORA_SMS_SANDBOX_PORT",
        "AGORA_TWILIO_ACCOUNT_SID",
        "AGORA_TWILIO_AUTH_TOKEN",
    }
)
