"""The inventory worker: stock, its ledger, and reservations for the order saga.

Run: `agora worker inventory [--workers N]` (or `faststream run workers.inventory.app:app`).
"""

from __future__ import annotations

from workers.runtime.service import WorkerService

service = WorkerService("inventory")

app = service.app
