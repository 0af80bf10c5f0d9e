"""The users worker: registration, login, profiles, and the token-signing keys.

Run: `agora worker users [--workers N]` (or `faststream run workers.users.app:app`).
"""

from __future__ import annotations

from typing import Any

from agora.crypto import FieldCipher
from agora.settings import get_settings
from contracts import users as c
from workers.runtime.service import WorkerService
from workers.users.handlers import UserHandlers
from workers.users.keys import KeyRing

settings = get_settings()
cipher = FieldCipher.from_config(settings.data_keys, settings.data_key_id)
keys = KeyRing(cipher, settings)


async def _own_jwks() -> dict[str, Any]:
    # This service verifies tokens with its own public keys, read from its schema.
    async with service.sessions() as session:
        return await keys.jwks(session)


async def _ensure_signing_key(svc: WorkerService) -> None:
    async with svc.sessions.begin() as session:
        await keys.ensure_key(session)


service = WorkerService("users", jwks=_own_jwks, on_startup=[_ensure_signing_key], settings=settings)
handlers = UserHandlers(cipher, keys, settings)

service.command(c.REGISTER_USER, handlers.register_user)
service.command(c.LOGIN_USER, handlers.login_user)
service.command(c.GET_USER, handlers.get_user)
service.command(c.UPDATE_USER, handlers.update_user)
service.command(c.GET_JWKS, handlers.get_jwks)
service.command(c.REFRESH_SESSION, handlers.refresh_session)
service.command(c.LOGOUT, handlers.logout)
service.command(c.LOGOUT_ALL, handlers.logout_all)
service.command(c.CHANGE_PASSWORD, handlers.change_password)

app = service.app
