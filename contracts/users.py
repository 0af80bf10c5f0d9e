"""Users service contracts: registration, login, profile."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import EmailStr, Field, StringConstraints

from contracts.base import Contract
from contracts.topology import CommandSpec, EventSpec

Role = Literal["guest", "member", "seller", "admin"]
Username = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=256)]
# E.164: a plus, a non-zero country code digit, up to 15 digits in all.
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+[1-9][0-9]{6,14}$")]
Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Address(Contract):
    line1: Line
    line2: Line | None = None
    city: Line
    region: Line | None = None
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = Field(
        description="ISO 3166-1 alpha-2 country code"
    )


class RegisterUser(Contract):
    email: EmailStr
    username: Username
    password: Password
    phone: Phone | None = None
    address: Address | None = None


class LoginUser(Contract):
    email: Annotated[str, StringConstraints(max_length=320)]
    password: Annotated[str, StringConstraints(max_length=256)]


class GetUser(Contract):
    """`user_id` absent means the caller (`GET /api/users/me`)."""

    user_id: UUID | None = None


class UpdateUser(Contract):
    """A partial update: only the fields present change; `null` clears phone/address."""

    user_id: UUID
    username: Username | None = None
    phone: Phone | None = None
    address: Address | None = None


class GetJwks(Contract):
    pass


RefreshToken = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class RefreshSession(Contract):
    """Trade a refresh token for new tokens; the old refresh token is used up."""

    refresh_token: RefreshToken


class Logout(Contract):
    """End the session (token family) this refresh token belongs to."""

    refresh_token: RefreshToken


class LogoutAll(Contract):
    """End every session of the actor."""


class ChangePassword(Contract):
    user_id: UUID
    current_password: Annotated[str, StringConstraints(max_length=256)]
    new_password: Password


class UserView(Contract):
    user_id: UUID
    email: str
    username: str
    role: Role
    phone: str | None
    address: Address | None
    created_at: datetime
    updated_at: datetime


class LoginResult(Contract):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str
    user: UserView


class Jwks(Contract):
    keys: tuple[dict[str, Any], ...]


class UserRegistered(Contract):
    user_id: UUID
    email: str
    username: str
    role: Role
    registered_at: datetime


class UserUpdated(Contract):
    user_id: UUID
    changed: tuple[str, ...]
    updated_at: datetime


class PasswordChanged(Contract):
    user_id: UUID
    changed_at: datetime


REGISTER_USER = CommandSpec("users", "register_user", 1, RegisterUser, UserView, summary="Create a member account.")
LOGIN_USER = CommandSpec("users", "login_user", 1, LoginUser, LoginResult, summary="Exchange credentials for tokens.")
GET_USER = CommandSpec(
    "users",
    "get_user",
    1,
    GetUser,
    UserView,
    kind="query",
    requires_actor=True,
    summary="Read a profile the actor may see.",
)
UPDATE_USER = CommandSpec(
    "users", "update_user", 1, UpdateUser, UserView, requires_actor=True, summary="Change username, phone or address."
)
GET_JWKS = CommandSpec("users", "get_jwks", 1, GetJwks, Jwks, kind="query", summary="Public token-signing keys.")
REFRESH_SESSION = CommandSpec(
    "users", "refresh_session", 1, RefreshSession, LoginResult, summary="Rotate a refresh token for new tokens."
)
LOGOUT = CommandSpec("users", "logout", 1, Logout, None, summary="End one session (its refresh token family).")
LOGOUT_ALL = CommandSpec(
    "users", "logout_all", 1, LogoutAll, None, requires_actor=True, summary="End every session of the actor."
)
CHANGE_PASSWORD = CommandSpec(
    "users",
    "change_password",
    1,
    ChangePassword,
    None,
    requires_actor=True,
    summary="Change one's own password (needs the current one); ends every session.",
)

USER_REGISTERED = EventSpec("users", "user_registered", 1, UserRegistered, summary="A member account was created.")
USER_UPDATED = EventSpec("users", "user_updated", 1, UserUpdated, summary="A profile changed (names of fields only).")
PASSWORD_CHANGED = EventSpec(
    "users", "password_changed", 1, PasswordChanged, summary="A password changed; every session was ended."
)

COMMANDS = (
    REGISTER_USER,
    LOGIN_USER,
    GET_USER,
    UPDATE_USER,
    GET_JWKS,
    REFRESH_SESSION,
    LOGOUT,
    LOGOUT_ALL,
    CHANGE_PASSWORD,
)
EVENTS = (USER_REGISTERED, USER_UPDATED, PASSWORD_CHANGED)
