"""The catalog worker: products, categories, search.

Run: `agora worker catalog [--workers N]` (or `faststream run workers.catalog.app:app`).
"""

from __future__ import annotations

from workers.runtime.service import WorkerService

service = WorkerService("catalog")

app = service.app
