"""Every command and event of every service, for documents and checks."""

from contracts import (
    carts,
    catalog,
    inventory,
    notifications,
    oidc,
    orders,
    partners,
    payments,
    returns,
    shipping,
    taxes,
    users,
    vouchers,
)
from contracts.topology import CommandSpec, EventSpec

COMMANDS: tuple[CommandSpec, ...] = (
    *users.COMMANDS,
    *partners.COMMANDS,
    *oidc.COMMANDS,
    *catalog.COMMANDS,
    *inventory.COMMANDS,
    *payments.COMMANDS,
    *orders.COMMANDS,
    *shipping.COMMANDS,
    *returns.COMMANDS,
    *taxes.COMMANDS,
    *vouchers.COMMANDS,
    *carts.COMMANDS,
    *notifications.COMMANDS,
)
EVENTS: tuple[EventSpec, ...] = (
    *users.EVENTS,
    *oidc.EVENTS,
    *catalog.EVENTS,
    *inventory.EVENTS,
    *payments.EVENTS,
    *orders.EVENTS,
    *returns.EVENTS,
)
