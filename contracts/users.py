"""Users service contracts: registration, login, profile."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import phonenumbers
from pydantic import AfterValidator, EmailStr, Field, StrictBool, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from contracts.base import SECRET, Contract
from contracts.privacy import export_spec
from contracts.topology import CommandSpec, EventSpec

Role = Literal["guest", "member", "seller", "admin"]
# Roles an account can hold ("guest" is whoever has no account).
AccountRole = Literal["member", "seller", "admin"]
Username = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=256), SECRET]
# E.164: a plus, a non-zero country code digit, up to 15 digits in all.
def _e164(number: str) -> str:
    """An international number as people write it (`+1 415 555 2671`, `+1 (415) 555-2671`),
    stored and shown in E.164 (`+14155552671`); a number its country code cannot have is refused."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        raise ValueError("must be an international number: + and the country code, e.g. +14155552671") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("is not a valid phone number for its country code")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=32, pattern=r"^\+[1-9][0-9 ().-]{5,30}$"),
    AfterValidator(_e164),
    Field(
        description="International form: + and the country code; spaces, dashes and brackets are fine, and it is "
        "kept in E.164 (`+14155552671`)",
        examples=["+14155552671"],
    ),
]
Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"\S")]
# A keyed SHA-256 (hex) of the client's network and user agent, made by the edge: equal
# for the same browser on the same network, and says nothing about either.
ClientFingerprint = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Address(Contract):
    line1: Line
    line2: Line | None = None
    city: Line
    region: Line | None = None
    # Every country's postal codes fit (at most 10 characters, letters, digits, a space or
    # a dash); a longer string of digits would look like a card number to the filters.
    postal_code: Annotated[
        str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9 -]{0,10}[A-Za-z0-9])?$")
    ]
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
    password: Annotated[str, StringConstraints(max_length=256), SECRET]
    client_fingerprint: ClientFingerprint | None = Field(
        default=None, description="Set by the edge (never by the client): who is signing in from where, hashed"
    )


class GetUser(Contract):
    """`user_id` absent means the caller (`GET /api/users/me`)."""

    user_id: UUID | None = None


class UpdateUser(Contract):
    """A partial update: only the fields present change; `null` clears phone/address.

    `role` and `disabled` are for admins only; from anyone else they are refused (403).
    """

    user_id: UUID
    # Absent leaves them as they are; null is refused (only phone and address clear).
    username: Username | SkipJsonSchema[None] = None
    phone: Phone | None = None
    address: Address | None = None
    role: AccountRole | SkipJsonSchema[None] = None
    disabled: StrictBool | SkipJsonSchema[None] = None


class ListUsers(Contract):
    """Admin search over accounts, newest first, a page at a time."""

    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = Field(
        default=None, description="Matches anywhere in the email or username (case-insensitive)"
    )
    role: AccountRole | None = None
    disabled: bool | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, description="`next_cursor` of the previous page"
    )


class EraseUser(Contract):
    """Erase an account's personal data (GDPR): the owner or an admin."""

    user_id: UUID


class GetJwks(Contract):
    pass


class GetContact(Contract):
    """How to reach a user (Agora's notifications service only)."""

    user_id: UUID


class Contact(Contract):
    """Read at send time and never stored by the asker: personal data stays in one place."""

    user_id: UUID
    email: str
    username: str
    phone: str | None = Field(description="E.164, or null")
    erased: bool
    disabled: bool


RefreshToken = Annotated[str, StringConstraints(min_length=1, max_length=200), SECRET]


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
    current_password: Annotated[str, StringConstraints(max_length=256), SECRET]
    new_password: Password


class UserView(Contract):
    user_id: UUID
    email: str
    username: str
    role: Role
    phone: str | None
    address: Address | None
    disabled: bool = False
    created_at: datetime
    updated_at: datetime


class UserPage(Contract):
    items: tuple[UserView, ...]
    next_cursor: str | None


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
    # The account's standing after the change, for services that act on it.
    role: Role | None = None
    disabled: bool | None = None
    username: str | None = Field(
        default=None, description="The new username, when it changed (null otherwise, and from older publishers)"
    )


class UserErased(Contract):
    """Every service anonymises what it holds about this user (orders keep the pseudonymous id)."""

    user_id: UUID
    erased_at: datetime


class PasswordChanged(Contract):
    user_id: UUID
    changed_at: datetime


class SignedIn(Contract):
    """A successful sign-in (password or identity provider); not a token refresh."""

    user_id: UUID
    at: datetime
    method: Literal["password", "oidc"]
    client_fingerprint: ClientFingerprint | None = Field(
        description="The edge's hash of the client's network and user agent; null when it sent none"
    )


RevocationReason = Literal[
    "logout", "logout_all", "password_changed", "refresh_reuse", "role_changed", "disabled", "erased"
]


class TokensRevoked(Contract):
    """Access tokens issued before `not_before` stop working at once, wherever they are
    verified: the tokens of one session (`session_id`: a logout, a reused refresh token),
    or every token of the user (`session_id` null)."""

    user_id: UUID
    session_id: UUID | None = None
    not_before: datetime
    reason: RevocationReason


class GetRevocations(Contract):
    """Every revocation still in force (younger than an access token's lifetime)."""


class Revocations(Contract):
    items: tuple[TokensRevoked, ...]


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
    "users",
    "update_user",
    1,
    UpdateUser,
    UserView,
    requires_actor=True,
    summary="Change username, phone or address; admins also role and disabled.",
)
LIST_USERS = CommandSpec(
    "users", "list_users", 1, ListUsers, UserPage, kind="query", requires_actor=True, summary="Admin: search accounts."
)
GET_JWKS = CommandSpec("users", "get_jwks", 1, GetJwks, Jwks, kind="query", summary="Public token-signing keys.")
GET_REVOCATIONS = CommandSpec(
    "users",
    "get_revocations",
    1,
    GetRevocations,
    Revocations,
    kind="query",
    summary="Token revocations still in force: what a token verifier loads when it starts.",
)
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

ERASE_USER = CommandSpec(
    "users",
    "erase_user",
    1,
    EraseUser,
    None,
    requires_actor=True,
    summary="Erase an account: personal data anonymised everywhere, sessions ended.",
)
EXPORT_USER_DATA = export_spec("users")
GET_CONTACT = CommandSpec(
    "users",
    "get_contact",
    1,
    GetContact,
    Contact,
    kind="query",
    requires_actor=True,
    summary="A user's email, name and phone, for the notifications service only (its service token).",
)

USER_REGISTERED = EventSpec("users", "user_registered", 1, UserRegistered, summary="A member account was created.")
USER_UPDATED = EventSpec("users", "user_updated", 1, UserUpdated, summary="A profile changed (names of fields only).")
PASSWORD_CHANGED = EventSpec(
    "users", "password_changed", 1, PasswordChanged, summary="A password changed; every session was ended."
)
USER_ERASED = EventSpec(
    "users", "user_erased", 1, UserErased, summary="An account was erased: anonymise what you hold about it."
)
SIGNED_IN = EventSpec(
    "users", "signed_in", 1, SignedIn, summary="Someone signed in to an account (password or identity provider)."
)
TOKENS_REVOKED = EventSpec(
    "users",
    "tokens_revoked",
    1,
    TokensRevoked,
    summary="Access tokens of a session or a user issued before a moment are void: every verifier drops them.",
)

COMMANDS = (
    REGISTER_USER,
    LOGIN_USER,
    GET_USER,
    UPDATE_USER,
    LIST_USERS,
    GET_JWKS,
    GET_REVOCATIONS,
    REFRESH_SESSION,
    LOGOUT,
    LOGOUT_ALL,
    CHANGE_PASSWORD,
    ERASE_USER,
    EXPORT_USER_DATA,
    GET_CONTACT,
)
EVENTS = (USER_REGISTERED, USER_UPDATED, PASSWORD_CHANGED, USER_ERASED, SIGNED_IN, TOKENS_REVOKED)
