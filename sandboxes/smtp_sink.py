"""Development SMTP sink: accepts every message and exposes it over HTTP.

Run with ``python -m sandboxes.smtp_sink``. Messages are stored as ``<id>.eml``
files plus one JSON line each in ``index.jsonl`` so they survive restarts
and can be inspected by hand.

HTTP API (JSON):
    GET    /messages[?to=addr]  summaries, oldest first
    GET    /messages/{id}       summary + headers, text and html parts
    GET    /messages/{id}/raw   the .eml as received
    DELETE /messages            remove everything

Configured by AGORA_SMTP_HOST, AGORA_SMTP_PORT, AGORA_SMTP_HTTP_PORT and
AGORA_RUN_DIR (messages go to ``$AGORA_RUN_DIR/smtp/messages``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("sandboxes.smtp_sink")

INDEX_NAME = "index.jsonl"


@dataclass(frozen=True)
class Settings:
    """Where to listen and where to store messages."""

    host: str
    smtp_port: int
    http_port: int
    store_dir: Path


class MessageStore:
    """Thread-safe .eml + JSON-lines store.

    The SMTP controller runs in its own thread, the HTTP server in the main
    event loop, hence the lock.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.index_path = directory / INDEX_NAME
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)

    def add(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> dict[str, Any]:
        """Store one message and return its summary."""
        message = _parse(content)
        summary: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "from": mail_from,
            "to": list(rcpt_tos),
            "subject": str(message.get("Subject", "")),
            "received_at": datetime.now(UTC).isoformat(),
        }
        with self._lock:
            (self.directory / f"{summary['id']}.eml").write_bytes(content)
            with self.index_path.open("a", encoding="utf-8") as index:
                index.write(json.dumps(summary) + "\n")
        return summary

    def list(self, to: str | None = None) -> list[dict[str, Any]]:
        """Summaries in arrival order, optionally only those sent to ``to``."""
        with self._lock:
            try:
                lines = self.index_path.read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                return []
        summaries = [json.loads(line) for line in lines if line.strip()]
        if to is not None:
            wanted = to.strip().lower()
            summaries = [s for s in summaries if wanted in (r.lower() for r in s["to"])]
        return summaries

    def get(self, message_id: str) -> tuple[dict[str, Any], bytes] | None:
        """Summary and raw bytes of one message, or None."""
        for summary in self.list():
            if summary["id"] == message_id:
                try:
                    raw = (self.directory / f"{message_id}.eml").read_bytes()
                except FileNotFoundError:
                    return None
                return summary, raw
        return None

    def clear(self) -> int:
        """Delete every message; return how many there were."""
        with self._lock:
            removed = 0
            for path in self.directory.glob("*.eml"):
                path.unlink(missing_ok=True)
                removed += 1
            self.index_path.unlink(missing_ok=True)
        return removed


def _parse(content: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(content)
    assert isinstance(message, EmailMessage)  # guaranteed by policy.default
    return message


def _part_text(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    assert isinstance(part, EmailMessage)
    content = part.get_content()
    if not isinstance(content, str):
        return None
    # Bodies arrive with SMTP's CRLF line endings; tests compare with "\n".
    return content.replace("\r\n", "\n")


def describe(summary: dict[str, Any], raw: bytes) -> dict[str, Any]:
    """Full JSON view of a stored message."""
    message = _parse(raw)
    headers: dict[str, str] = {}
    for name, value in message.items():
        # Repeated headers (e.g. Received) are joined rather than dropped.
        headers[name] = f"{headers[name]}\n{value}" if name in headers else str(value)
    attachments = [
        {
            "filename": part.get_filename(),
            "content_type": part.get_content_type(),
            "size": len(part.get_payload(decode=True) or b""),
        }
        for part in message.iter_attachments()
        if isinstance(part, EmailMessage)
    ]
    return {
        **summary,
        "headers": headers,
        "text": _part_text(message, "plain"),
        "html": _part_text(message, "html"),
        "attachments": attachments,
    }


class SinkHandler:
    """aiosmtpd handler that accepts every recipient and stores the data."""

    def __init__(self, store: MessageStore) -> None:
        self.store = store

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8")
        summary = self.store.add(envelope.mail_from or "", list(envelope.rcpt_tos), content)
        log.info(
            "stored %s from %s to %s: %r",
            summary["id"],
            summary["from"],
            summary["to"],
            summary["subject"],
        )
        return "250 Message accepted for delivery"


def build_app(store: MessageStore) -> web.Application:
    """The HTTP inbox API."""

    async def list_messages(request: web.Request) -> web.Response:
        return web.json_response(store.list(request.query.get("to")))

    async def get_message(request: web.Request) -> web.Response:
        found = store.get(request.match_info["id"])
        if found is None:
            raise web.HTTPNotFound(text=json.dumps({"error": "not found"}), content_type="application/json")
        return web.json_response(describe(*found))

    async def get_raw(request: web.Request) -> web.Response:
        found = store.get(request.match_info["id"])
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found[1], content_type="message/rfc822")

    async def clear_messages(request: web.Request) -> web.Response:
        return web.json_response({"deleted": store.clear()})

    app = web.Application()
    app.router.add_get("/messages", list_messages)
    app.router.add_delete("/messages", clear_messages)
    app.router.add_get("/messages/{id}", get_message)
    app.router.add_get("/messages/{id}/raw", get_raw)
    return app


async def serve(settings: Settings) -> None:
    """Run SMTP and HTTP servers until SIGTERM or SIGINT."""
    store = MessageStore(settings.store_dir)
    # An explicit server_hostname avoids socket.getfqdn(), which can stall
    # for seconds on machines without working DNS.
    controller = Controller(
        SinkHandler(store),
        hostname=settings.host,
        port=settings.smtp_port,
        server_hostname="agora-smtp-sink",
        enable_SMTPUTF8=True,
    )
    runner = web.AppRunner(build_app(store), access_log=None)
    await runner.setup()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    controller.start()
    try:
        await web.TCPSite(runner, settings.host, settings.http_port).start()
        log.info(
            "smtp sink listening on %s:%d (http %d), storing in %s",
            settings.host,
            settings.smtp_port,
            settings.http_port,
            settings.store_dir,
        )
        await stop.wait()
        log.info("shutting down")
    finally:
        controller.stop()
        await runner.cleanup()


def parse_settings(argv: list[str] | None = None) -> Settings:
    """Settings from the environment, overridable on the command line."""
    run_dir = Path(os.environ.get("AGORA_RUN_DIR", ".run"))
    parser = argparse.ArgumentParser(prog="python -m sandboxes.smtp_sink", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("AGORA_SMTP_HOST", "127.0.0.1"))
    parser.add_argument("--smtp-port", type=int, default=int(os.environ.get("AGORA_SMTP_PORT", "1025")))
    parser.add_argument(
        "--http-port",
        type=int,
        default=int(os.environ.get("AGORA_SMTP_HTTP_PORT", "1080")),
    )
    parser.add_argument("--store-dir", type=Path, default=run_dir / "smtp" / "messages")
    args = parser.parse_args(argv)
    return Settings(args.host, args.smtp_port, args.http_port, args.store_dir)


def main(argv: list[str] | None = None) -> None:
    """Entry point for ``python -m sandboxes.smtp_sink``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiosmtpd logs every connection at INFO; our own line per message is enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(serve(parse_settings(argv)))


if __name__ == "__main__":
    main()
