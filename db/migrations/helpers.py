"""Migration building blocks shared by every service's first migration."""

from __future__ import annotations

from alembic import op
from sqlalchemy import MetaData

from db.tables import messaging_tables, outbox_channel


def create_messaging_tables(schema: str) -> None:
    """Outbox + inbox for `schema`, and a trigger that wakes the outbox relay.

    The NOTIFY fires when the inserting transaction commits, so the relay never
    wakes up to a row it cannot see yet.
    """
    outbox, inbox = messaging_tables(MetaData(schema=schema))
    bind = op.get_bind()
    outbox.create(bind)
    inbox.create(bind)
    create_outbox_notify(schema)


def create_outbox_notify(schema: str) -> None:
    """The trigger that woke the relay on every outbox insert (dropped by 0015)."""
    op.execute(
        f"""
        CREATE FUNCTION "{schema}".notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{outbox_channel(schema)}', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER outbox_notify AFTER INSERT ON "{schema}".outbox
            FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".notify_outbox();
        """
    )


def drop_messaging_tables(schema: str) -> None:
    op.execute(f'DROP TABLE IF EXISTS "{schema}".outbox, "{schema}".inbox CASCADE')
    op.execute(f'DROP FUNCTION IF EXISTS "{schema}".notify_outbox()')
