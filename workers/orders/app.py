"""The orders worker: carts, orders and the order saga.

Run: `agora worker orders [--workers N]` (or `faststream run workers.orders.app:app`).
"""

from __future__ import annotations

from workers.runtime.service import WorkerService

service = WorkerService("orders")

app = service.app
