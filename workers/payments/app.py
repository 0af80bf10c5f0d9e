"""The payments worker: authorize, capture, void and refund through the payment gateway.

Run: `agora worker payments [--workers N]` (or `faststream run workers.payments.app:app`).
The provider is the one at AGORA_PAYMENT_API_URL (the sandbox, sandboxes/payment_sandbox.py,
in development and tests).
"""

from __future__ import annotations

from contracts import payments as c
from workers.payments.gateway import HttpGateway
from workers.payments.handlers import PaymentHandlers
from workers.runtime.service import WorkerService

service = WorkerService("payments")
gateway = HttpGateway(service.settings.payment_api_url, timeout=service.settings.payment_api_timeout_seconds)
handlers = PaymentHandlers(gateway)

service.command(c.AUTHORIZE_PAYMENT, handlers.authorize_payment)
service.command(c.CAPTURE_PAYMENT, handlers.capture_payment)
service.command(c.VOID_PAYMENT, handlers.void_payment)
service.command(c.REFUND_PAYMENT, handlers.refund_payment)
service.command(c.CHECK_PAYMENT_TOKEN, handlers.check_payment_token)

app = service.app
app.after_shutdown(gateway.close)
