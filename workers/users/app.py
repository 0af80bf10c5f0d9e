"""The users worker: registration, login, profiles, and the token-signing keys.

Run: `agora worker users [--workers N]` (or `faststream run workers.users.app:app`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contracts import partners
from contracts import users as c
from contracts.oidc import OIDC_SIGN_IN
from kernel import oidc
from kernel.crypto import FieldCipher
from kernel.settings import SERVICES, get_settings
from workers.runtime.identity import IssuedToken, service_client_id, service_scope
from workers.runtime.service import WorkerService
from workers.users.clients import ClientHandlers, provision_service_clients
from workers.users.federation import FederationHandlers
from workers.users.handlers import UserHandlers
from workers.users.keys import KeyRing
from workers.users.model import revocation_window
from workers.users.repository import UserRepository

settings = get_settings()
cipher = FieldCipher.from_config(settings.data_keys, settings.data_key_id)
keys = KeyRing(cipher, settings)


async def _own_jwks() -> dict[str, Any]:
    # This service verifies tokens with its own public keys, read from its schema.
    async with service.unit_of_work() as ctx:
        return await keys.jwks(ctx.session)


async def _own_revocations() -> list[c.TokensRevoked]:
    # This service keeps the revocations: it reads them from its schema.
    since = datetime.now(UTC) - revocation_window(settings.access_token_ttl_seconds)
    async with service.unit_of_work() as ctx:
        return await UserRepository(ctx.session, cipher).revocations_since(since)


async def _ensure_signing_key(svc: WorkerService) -> None:
    async with svc.unit_of_work() as ctx:
        await keys.ensure_key(ctx.session)


async def _provision_service_clients(svc: WorkerService) -> None:
    async with svc.unit_of_work() as ctx:
        await provision_service_clients(ctx.session, settings, SERVICES)


async def _own_service_token() -> IssuedToken:
    # This service holds the signing key: it mints its service token instead of asking itself.
    async with service.unit_of_work() as ctx:
        token = await keys.access_token(
            ctx.session, user_id=service_client_id("users"), role="service", scopes=(service_scope("users"),)
        )
    return IssuedToken(token, settings.access_token_ttl_seconds)


service = WorkerService(
    "users",
    jwks=_own_jwks,
    revocations=_own_revocations,
    on_startup=[_ensure_signing_key, _provision_service_clients],
    settings=settings,
    service_token=_own_service_token,
)
handlers = UserHandlers(cipher, keys, settings)
clients = ClientHandlers(keys, settings)
federation = FederationHandlers(oidc.providers(settings), handlers, cipher, settings)

service.command(c.REGISTER_USER, handlers.register_user)
service.command(c.LOGIN_USER, handlers.login_user)
service.command(c.GET_USER, handlers.get_user)
service.command(c.UPDATE_USER, handlers.update_user)
service.command(c.LIST_USERS, handlers.list_users)
service.command(c.ERASE_USER, handlers.erase_user)
service.command(c.EXPORT_USER_DATA, handlers.export_user_data)
service.command(c.GET_JWKS, handlers.get_jwks)
service.command(c.GET_REVOCATIONS, handlers.get_revocations)
service.command(c.GET_CONTACT, handlers.get_contact)
service.command(c.REFRESH_SESSION, handlers.refresh_session)
service.command(c.LOGOUT, handlers.logout)
service.command(c.LOGOUT_ALL, handlers.logout_all)
service.command(c.CHANGE_PASSWORD, handlers.change_password)
service.command(partners.ISSUE_CLIENT_TOKEN, clients.issue_client_token)
service.command(OIDC_SIGN_IN, federation.oidc_sign_in)

app = service.app
