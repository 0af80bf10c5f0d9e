"""The HTTP edge: the only HTTP entry into Agora (architecture §4).

It authenticates, validates, turns each request into a typed command on the broker,
waits for the reply and maps it to HTTP. It holds no business state.
Run it with `python -m edge` (or `edge.app:main`).
"""

from __future__ import annotations

from aiohttp import web

from kernel.settings import Settings

SETTINGS_KEY = web.AppKey("settings", Settings)
REQUEST_ID_KEY = web.RequestKey("request_id", str)
