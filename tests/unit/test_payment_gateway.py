"""The payment gateway's client (workers/payments/gateway.py) when the provider gives no
answer: unreachable, or silent past the timeout. The answers it does give are tested
against the sandbox in tests/integration/test_payments.py."""

import asyncio
import socket
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from workers.payments.gateway import ProviderUnavailable, StripeGateway
from workers.runtime.failures import classify


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def silent() -> AsyncIterator[str]:
    """A server that accepts connections and never answers."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.close()


async def test_an_unreachable_provider_is_retried_then_unavailable_and_transient() -> None:
    gateway = StripeGateway(f"http://127.0.0.1:{_free_port()}", "sk_test_unit", timeout=2)
    try:
        with pytest.raises(ProviderUnavailable, match="unreachable") as caught:
            await gateway.capture("auth_1", idempotency_key=str(uuid4()))
    finally:
        await gateway.close()
    # A capture that cannot reach the provider is redelivered later, not dead-lettered.
    assert classify(caught.value).kind == "transient"


async def test_a_silent_provider_is_unavailable_after_the_timeout(silent: str) -> None:
    gateway = StripeGateway(silent, "sk_test_unit", timeout=0.5)
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(ProviderUnavailable, match="in time"):
            await gateway.authorize(
                order_id=uuid4(), amount_minor=100, currency="EUR", token="tok_visa", idempotency_key=str(uuid4())
            )
        assert asyncio.get_running_loop().time() - started < 2  # not retried: it may still be at work
    finally:
        await gateway.close()
