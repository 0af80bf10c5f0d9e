"""JSON logs: one line per event, each carrying service, correlation id and message id.

The ids live in context variables, so every log line written while a request or a
message is being handled carries them without being passed around.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
message_id_var: ContextVar[str | None] = ContextVar("message_id", default=None)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.correlation_id = correlation_id_var.get()
        record.message_id = message_id_var.get()
        # uvicorn adds an ANSI-coloured copy of each message; JSON needs only one.
        record.__dict__.pop("color_message", None)
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_ContextFilter(service))
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(service)s %(correlation_id)s %(message_id)s %(message)s",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # FastStream and uvicorn install their own handlers; route them through ours.
    for name in ("faststream", "faststream.access", "uvicorn", "uvicorn.error", "uvicorn.access", "aiohttp.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
