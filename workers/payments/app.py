"""The payments worker: authorize, capture, void and refund through the payment gateway.

Run: `agora worker payments [--workers N]` (or `faststream run workers.payments.app:app`).
The provider speaks Stripe's API at AGORA_PAYMENT_API_URL with AGORA_STRIPE_SECRET_KEY: Stripe
itself, or the sandbox that speaks its protocol (sandboxes/payment_sandbox.py) in development
and tests. Its webhook events come from the edge and are verified with AGORA_STRIPE_WEBHOOK_SECRET.
"""

from __future__ import annotations

from contracts import payments as c
from workers.payments.gateway import StripeGateway
from workers.payments.handlers import PaymentHandlers
from workers.runtime.service import WorkerService

service = WorkerService("payments")
settings = service.settings
gateway = StripeGateway(
    settings.payment_api_url,
    settings.stripe_secret_key.get_secret_value(),
    timeout=settings.payment_api_timeout_seconds,
)
handlers = PaymentHandlers(gateway, settings.stripe_webhook_secret.get_secret_value())

service.command(c.AUTHORIZE_PAYMENT, handlers.authorize_payment)
service.command(c.CAPTURE_PAYMENT, handlers.capture_payment)
service.command(c.VOID_PAYMENT, handlers.void_payment)
service.command(c.REFUND_PAYMENT, handlers.refund_payment)
service.command(c.CHECK_PAYMENT_TOKEN, handlers.check_payment_token, database=False)  # asks the provider only
service.command(c.RECEIVE_PROVIDER_EVENT, handlers.receive_provider_event)

app = service.app
app.after_shutdown(gateway.close)
