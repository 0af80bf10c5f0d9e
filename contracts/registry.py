"""Every command and event of every service, for documents and checks."""

from contracts import users
from contracts.topology import CommandSpec, EventSpec

COMMANDS: tuple[CommandSpec, ...] = (*users.COMMANDS,)
EVENTS: tuple[EventSpec, ...] = (*users.EVENTS,)
