"""Third-party sign-in (OpenID Connect): the command the edge sends after a provider's callback.

The command carries the provider's ID token itself, not claims copied out of it: the
users worker verifies the token again (kernel/oidc.py), because the broker is not
trusted and only the provider's signature proves who signed in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import Field, StringConstraints

from contracts.base import SECRET, Contract
from contracts.topology import CommandSpec, EventSpec
from contracts.users import ClientFingerprint, LoginResult

ProviderName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


class OidcSignIn(Contract):
    provider: ProviderName = Field(description="A provider name from AGORA_OIDC_PROVIDERS")
    id_token: Annotated[str, StringConstraints(min_length=1, max_length=16_384), SECRET] = Field(
        description="The provider's ID token, as its token endpoint returned it"
    )
    client_fingerprint: ClientFingerprint | None = Field(
        default=None, description="Set by the edge: who is signing in from where, hashed (see `users.login_user`)"
    )


class IdentityLinked(Contract):
    """A provider identity now signs in to an existing account (found by its verified email)."""

    user_id: UUID
    provider: str
    linked_at: datetime


OIDC_SIGN_IN = CommandSpec(
    "users",
    "oidc_sign_in",
    1,
    OidcSignIn,
    LoginResult,
    summary="Sign in with a provider's ID token: the linked account, an account with the same verified email "
    "(linked now), or a new member.",
)
IDENTITY_LINKED = EventSpec(
    "users", "identity_linked", 1, IdentityLinked, summary="An identity provider was linked to an existing account."
)

COMMANDS = (OIDC_SIGN_IN,)
EVENTS = (IDENTITY_LINKED,)
