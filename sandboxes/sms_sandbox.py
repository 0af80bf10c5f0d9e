"""Sandbox SMS provider: Twilio's Messages API, local, for development and tests.

Run with ``python -m sandboxes.sms_sandbox``. It plays Twilio for the notifications worker
(workers/notifications/channels.py), which talks to it with the real ``twilio`` client
pointed at AGORA_TWILIO_API_URL. Nothing is ever sent to a phone: messages are kept and
can be read back.

Twilio's API, as twilio-python calls it (HTTP Basic auth AccountSid:AuthToken; a wrong
pair is 401 with error 20003):
    POST /2010-04-01/Accounts/{AccountSid}/Messages.json
         form fields To, From or MessagingServiceSid, Body → 201 and the Message
         resource (status "queued"), or 400 with Twilio's error JSON: 21604 no To,
         21211 To not a valid phone number, 21603 no From, 21602 no Body, 21617 a body
         over 1,600 characters
    GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json
    GET  /2010-04-01/Accounts/{AccountSid}/Messages.json[?To=&From=&PageSize=]   newest first

The sandbox's own API (JSON, no auth):
    GET    /sandbox/messages[?to=+15551234567]   what it received, oldest first
    DELETE /sandbox/messages                     forget them
    POST   /sandbox/outage {"failures": N, "status": 503}
           the next N calls of Twilio's API answer that status (429 or 5xx) with
           Twilio's error JSON, as a provider outage would; {"failures": 0} ends it
    GET    /healthz, /readyz

Messages (and an outage in progress) are kept in memory and written after every change
to ``$AGORA_RUN_DIR/sms_sandbox/messages.json`` (atomically), read back at start.
Configured by AGORA_SMS_SANDBOX_HOST (default AGORA_HOST, else 127.0.0.1),
AGORA_SMS_SANDBOX_PORT (1091), AGORA_TWILIO_ACCOUNT_SID and AGORA_TWILIO_AUTH_TOKEN (the
credentials it accepts; scripts/up generates them into .run/agora.env) and AGORA_RUN_DIR.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import math
import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import phonenumbers
from aiohttp import encode_basic_auth, web

log = logging.getLogger("agora.sms_sandbox")

API_VERSION = "2010-04-01"
MAX_BODY = 1600
STORE_NAME = "messages.json"


class TwilioError(Exception):
    """An error answered the way Twilio answers it."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    def response(self) -> web.Response:
        body = {
            "code": self.code,
            "message": str(self),
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }
        return web.json_response(body, status=self.status)


class Outbox:
    """Every message accepted, and the outage in progress, persisted as one JSON file."""

    def __init__(self, path: Path | None, account_sid: str, auth_token: str) -> None:
        self.path = path
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, Any]] = []
        self.outage = {"failures": 0, "status": 503}
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            self.messages = data.get("messages", [])
            self.outage = data.get("outage", self.outage)

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"messages": self.messages, "outage": self.outage}))
        os.replace(tmp, self.path)

    def find(self, sid: str) -> dict[str, Any] | None:
        return next((m for m in self.messages if m["sid"] == sid), None)


OUTBOX_KEY = web.AppKey("outbox", Outbox)


def segments(body: str) -> int:
    """How many SMS a body takes: 160 characters (153 per part) in GSM-7, else 70 (67) UTF-16 units.

    ASCII stands in for the GSM-7 alphabet; close enough for a sandbox."""
    if body.isascii():
        length, single, part = len(body), 160, 153
    else:
        length, single, part = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if length <= single else math.ceil(length / part)


def _rfc2822(moment: datetime) -> str:
    # Twilio's dates: "Thu, 30 Jul 2015 20:12:31 +0000".
    return format_datetime(moment)


def _valid_number(number: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return False


def _authenticate(request: web.Request) -> Outbox:
    """The outage first (an unavailable provider checks nothing), then the credentials."""
    outbox = request.app[OUTBOX_KEY]
    if outbox.outage["failures"] > 0:
        outbox.outage["failures"] -= 1
        outbox.save()
        status = int(outbox.outage["status"])
        raise TwilioError(status, 20000 + status, "Service unavailable (sandbox outage)")
    expected = encode_basic_auth(outbox.account_sid, outbox.auth_token)
    if not hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected.encode()):
        raise TwilioError(401, 20003, "Authenticate")
    if request.match_info["account_sid"] != outbox.account_sid:
        raise TwilioError(404, 20404, f"The requested resource {request.path} was not found")
    return outbox


async def create_message(request: web.Request) -> web.Response:
    outbox = _authenticate(request)
    form = await request.post()
    to, sender, service = (str(form.get(name, "")).strip() for name in ("To", "From", "MessagingServiceSid"))
    body = str(form.get("Body", ""))
    if not to:
        raise TwilioError(400, 21604, "A 'To' phone number is required.")
    if not _valid_number(to):
        raise TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    if not sender and not service:
        raise TwilioError(400, 21603, "A 'From' phone number is required.")
    if not body.strip():
        raise TwilioError(400, 21602, "Message body is required.")
    if len(body) > MAX_BODY:
        raise TwilioError(400, 21617, f"The concatenated message body exceeds the {MAX_BODY} character limit.")

    sid = f"SM{uuid.uuid4().hex}"
    now = _rfc2822(datetime.now(UTC))
    base = f"/{API_VERSION}/Accounts/{outbox.account_sid}/Messages/{sid}"
    message: dict[str, Any] = {
        "account_sid": outbox.account_sid,
        "api_version": API_VERSION,
        "body": body,
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": sender or None,
        "messaging_service_sid": service or None,
        "num_media": "0",
        "num_segments": str(segments(body)),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        # A message sent through a Messaging Service waits for it to pick a sender.
        "status": "queued" if sender else "accepted",
        "subresource_uris": {"media": f"{base}/Media.json", "feedback": f"{base}/Feedback.json"},
        "to": to,
        "uri": f"{base}.json",
    }
    outbox.messages.append(message)
    outbox.save()
    log.info("message %s to %s: %s segment(s)", sid, to, message["num_segments"])
    return web.json_response(message, status=201)


async def get_message(request: web.Request) -> web.Response:
    message = _authenticate(request).find(request.match_info["sid"])
    if message is None:
        raise TwilioError(404, 20404, f"The requested resource {request.path} was not found")
    return web.json_response(message)


async def list_messages(request: web.Request) -> web.Response:
    outbox = _authenticate(request)
    to, sender = request.query.get("To"), request.query.get("From")
    try:
        page_size = min(max(int(request.query.get("PageSize", "50")), 1), 1000)
    except ValueError:
        raise TwilioError(400, 20001, "Invalid PageSize") from None
    found = [m for m in reversed(outbox.messages) if to in (None, m["to"]) and sender in (None, m["from"])]
    uri = f"/{API_VERSION}/Accounts/{outbox.account_sid}/Messages.json?PageSize={page_size}&Page=0"
    # One page only (Twilio pages with tokens; a sandbox never holds that much).
    return web.json_response(
        {
            "messages": found[:page_size],
            "start": 0,
            "end": max(len(found[:page_size]) - 1, 0),
            "page": 0,
            "page_size": page_size,
            "first_page_uri": uri,
            "previous_page_uri": None,
            "next_page_uri": None,
            "uri": uri,
        }
    )


async def sandbox_messages(request: web.Request) -> web.Response:
    messages = request.app[OUTBOX_KEY].messages
    to = request.query.get("to")
    return web.json_response([m for m in messages if to is None or m["to"] == to.strip()])


async def sandbox_clear(request: web.Request) -> web.Response:
    outbox = request.app[OUTBOX_KEY]
    deleted = len(outbox.messages)
    outbox.messages.clear()
    outbox.save()
    return web.json_response({"deleted": deleted})


async def sandbox_outage(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        failures, status = int(body.get("failures", 1)), int(body.get("status", 503))
    except (ValueError, TypeError, AttributeError):
        return web.json_response({"error": 'give {"failures": N, "status": 503}'}, status=400)
    if failures < 0 or not (status == 429 or 500 <= status <= 599):
        return web.json_response({"error": "failures must be >= 0 and status 429 or 5xx"}, status=400)
    outbox = request.app[OUTBOX_KEY]
    outbox.outage = {"failures": failures, "status": status}
    outbox.save()
    return web.json_response(outbox.outage)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@web.middleware
async def errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    try:
        return await handler(request)
    except TwilioError as err:
        return err.response()


def make_app(store: Path | None, account_sid: str, auth_token: str) -> web.Application:
    app = web.Application(middlewares=[errors])
    app[OUTBOX_KEY] = Outbox(store, account_sid, auth_token)
    account = f"/{API_VERSION}/Accounts/{{account_sid}}"
    app.router.add_post(f"{account}/Messages.json", create_message)
    app.router.add_get(f"{account}/Messages.json", list_messages)
    app.router.add_get(f"{account}/Messages/{{sid}}.json", get_message)
    app.router.add_get("/sandbox/messages", sandbox_messages)
    app.router.add_delete("/sandbox/messages", sandbox_clear)
    app.router.add_post("/sandbox/outage", sandbox_outage)
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", health)
    return app


def main(argv: list[str] | None = None) -> None:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default=env.get("AGORA_SMS_SANDBOX_HOST") or env.get("AGORA_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("AGORA_SMS_SANDBOX_PORT", "1091")))
    parser.add_argument("--account-sid", default=env.get("AGORA_TWILIO_ACCOUNT_SID", ""))
    parser.add_argument("--auth-token", default=env.get("AGORA_TWILIO_AUTH_TOKEN", ""))
    parser.add_argument("--run-dir", default=env.get("AGORA_RUN_DIR", ".run"))
    parser.add_argument("--memory", action="store_true", help="keep the messages in memory only")
    args = parser.parse_args(argv)
    if not args.account_sid or not args.auth_token:
        parser.error(
            "set AGORA_TWILIO_ACCOUNT_SID and AGORA_TWILIO_AUTH_TOKEN (scripts/up writes them to .run/agora.env)"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sms-sandbox %(levelname)s %(message)s")
    store = None if args.memory else Path(args.run_dir) / "sms_sandbox" / STORE_NAME
    log.info("sms sandbox on http://%s:%s (messages %s)", args.host, args.port, store or "in memory")
    web.run_app(make_app(store, args.account_sid, args.auth_token), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
