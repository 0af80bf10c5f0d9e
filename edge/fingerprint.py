"""The client fingerprint a sign-in carries: where someone signs in from, hashed.

The notifications service warns a user of a sign-in from a fingerprint it has not seen
on their account before. The fingerprint covers the client's network (IPv4 /24, IPv6
/48: a home or an office, not the address a phone gets this hour) and its user agent,
under an HMAC keyed from the edge's secret: the same browser on the same network gives
the same value, and without the key nobody can work back to the network by trying them
all.
"""

from __future__ import annotations

import hashlib
import hmac
from ipaddress import ip_address, ip_network

from aiohttp import web

from edge.ratelimit import client_ip
from kernel.settings import Settings

_MAX_USER_AGENT = 512


def client_fingerprint(request: web.Request, settings: Settings) -> str:
    network = _network(client_ip(request, settings.trusted_proxy_hops))
    user_agent = request.headers.get("User-Agent", "")[:_MAX_USER_AGENT]
    key = hashlib.sha256(b"agora sign-in fingerprint\0" + settings.csrf_secret.encode()).digest()
    return hmac.new(key, f"{network}\n{user_agent}".encode(), hashlib.sha256).hexdigest()


def _network(address: str) -> str:
    try:
        ip = ip_address(address)
    except ValueError:
        return address  # "unknown" (no peer address): all such clients are one network
    prefix = 24 if ip.version == 4 else 48
    return str(ip_network(f"{ip}/{prefix}", strict=False))
