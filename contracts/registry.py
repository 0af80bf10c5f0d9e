"""Every command and event of every service, for documents and checks."""

from contracts import oidc, partners, users
from contracts.topology import CommandSpec, EventSpec

COMMANDS: tuple[CommandSpec, ...] = (*users.COMMANDS, *partners.COMMANDS, *oidc.COMMANDS)
EVENTS: tuple[EventSpec, ...] = (*users.EVENTS, *oidc.EVENTS)
