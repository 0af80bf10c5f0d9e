"""Migration building blocks that more than one migration uses."""

from __future__ import annotations

from alembic import op
from sqlalchemy import MetaData

from db.tables.base import messaging_tables, outbox_channel

# The schemas with an outbox and an inbox: one per service.
SERVICE_SCHEMAS = ("users", "catalog", "inventory", "orders", "payments", "notifications")


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


def fill_sales() -> None:
    """Fill the sales projection (orders.sales) from the orders and their history: every
    line of an order ever confirmed, cancelled when the order was. Rows already there
    are kept (a cancellation they missed is added)."""
    op.execute(
        """
        INSERT INTO orders.sales
            (order_id, product_id, seller_id, name, quantity, unit_price_minor, currency, confirmed_at, cancelled_at)
        SELECT l.order_id, l.product_id, l.seller_id, l.name, l.quantity, l.unit_price_minor, o.currency,
               c.at,
               (SELECT min(h.at) FROM orders.order_history h
                 WHERE h.order_id = o.order_id AND h.status = 'cancelled')
          FROM orders.order_lines l
          JOIN orders.orders o ON o.order_id = l.order_id
          JOIN (SELECT order_id, min(at) AS at FROM orders.order_history
                 WHERE status = 'confirmed' GROUP BY order_id) c ON c.order_id = o.order_id
        ON CONFLICT DO NOTHING
        """
    )
    op.execute(
        """
        UPDATE orders.sales s SET cancelled_at = h.at
          FROM (SELECT order_id, min(at) AS at FROM orders.order_history
                 WHERE status = 'cancelled' GROUP BY order_id) h
         WHERE s.order_id = h.order_id AND s.cancelled_at IS NULL
        """
    )
