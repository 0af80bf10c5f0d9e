"""The payments worker: authorize, capture, void and refund through the payment gateway.

Run: `agora worker payments [--workers N]` (or `faststream run workers.payments.app:app`).
"""

from __future__ import annotations

from workers.runtime.service import WorkerService

service = WorkerService("payments")

app = service.app
