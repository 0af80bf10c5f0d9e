"""Every command and event of every service, for documents and checks."""

from contracts import catalog, inventory, oidc, partners, payments, users
from contracts.topology import CommandSpec, EventSpec

COMMANDS: tuple[CommandSpec, ...] = (
    *users.COMMANDS,
    *partners.COMMANDS,
    *oidc.COMMANDS,
    *catalog.COMMANDS,
    *inventory.COMMANDS,
    *payments.COMMANDS,
)
EVENTS: tuple[EventSpec, ...] = (*users.EVENTS, *oidc.EVENTS, *catalog.EVENTS, *inventory.EVENTS, *payments.EVENTS)
