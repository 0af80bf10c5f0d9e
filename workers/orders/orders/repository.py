"""Loading and saving orders and their sagas.

The saga columns of an order row change only through `save_saga`, an
`UPDATE ... WHERE version = :v`: two replicas that decided on the same version cannot
both win, and the loser decides again from what the winner wrote. The shipping
address is sealed (AES-256-GCM) bound to its order.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import ARRAY, JSON, Boolean, ColumnElement, bindparam, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.inventory import ReservationLine
from contracts.orders import HistoryEntry
from contracts.users import Address
from db.prepared import Prepared, bind_columns
from db.sealed import ORDER_ADDRESS
from db.tables.orders import closed_accounts, order_history, order_lines, orders
from kernel.crypto import FieldCipher, Sealed
from workers.orders.orders.model import Line, Order, OrderHead, reservation_lines
from workers.orders.orders.saga import Saga

if TYPE_CHECKING:
    from workers.runtime.context import HandlerContext

_SAGA_COLUMNS = (
    "status",
    "cancel_reason",
    "step",
    "attempt",
    "deadline",
    "reservation",
    "payment",
    "authorized_at",
    "voided_at",
    "restock",
)

_HEAD_LINES = (
    select(
        func.json_agg(
            aggregate_order_by(
                func.json_build_array(order_lines.c.product_id, order_lines.c.quantity, order_lines.c.variant_id),
                order_lines.c.product_id,
                order_lines.c.variant_id,
            ),
            type_=JSON,
        )
    )
    .where(order_lines.c.order_id == orders.c.order_id)
    .scalar_subquery()
)
_HEAD = Prepared(
    select(
        orders.c.order_id,
        orders.c.user_id,
        orders.c.total_minor,
        orders.c.currency,
        orders.c.payment_token,
        orders.c.version,
        *(orders.c[name] for name in _SAGA_COLUMNS),
        _HEAD_LINES.label("reservation_lines"),
    ).where(orders.c.order_id == bindparam("order_id"))
)


def _history_from(source: Any, changed: ColumnElement[bool] | None = None) -> Any:
    """An INSERT of one history entry per row of `source` (a CTE returning order_id),
    with status `:h_status` at `:h_at`, as a CTE of its own."""
    rows = select(
        source.c.order_id,
        bindparam("h_status", type_=order_history.c.status.type),
        bindparam("h_at", type_=order_history.c.at.type),
    )
    if changed is not None:
        rows = rows.where(changed)
    return order_history.insert().from_select(["order_id", "status", "at"], rows).cte(f"{source.name}_history")


def _save_saga() -> Prepared:
    """The saga's columns, if the version is still the one read, and a history entry if
    the status changed (`:h_changed`), in one statement; the order's id if it was saved."""
    saved = (
        update(orders)
        .where(orders.c.order_id == bindparam("b_order_id"), orders.c.version == bindparam("b_version"))
        .values(
            version=bindparam("new_version"),
            updated_at=bindparam("now"),
            **{name: bindparam(f"new_{name}") for name in _SAGA_COLUMNS},
        )
        .returning(orders.c.order_id)
        .cte("saved")
    )
    return Prepared(select(saved.c.order_id).add_cte(_history_from(saved, bindparam("h_changed", type_=Boolean))))


_SAVE_SAGA = _save_saga()

_ORDER_COLUMNS = (
    "order_id",
    "user_id",
    "placed_by",
    "request_hash",
    "currency",
    "total_minor",
    "shipping_address_enc",
    "shipping_address_key_id",
    "payment_token",
    "version",
    "created_at",
    "updated_at",
    *_SAGA_COLUMNS,
)
_LINE_COLUMNS = (
    "product_id",
    "variant_id",
    "seller_id",
    "name",
    "sku",
    "variant_label",
    "quantity",
    "unit_price_minor",
)


def _place() -> Prepared:
    """A new order, its lines (given as one array per column) and its first history entry,
    in one statement; the order's id if it was new, no row if the id was taken."""
    new = (
        pg_insert(orders)
        .values(**bind_columns(orders, _ORDER_COLUMNS, "o_"))
        .on_conflict_do_nothing()
        .returning(orders.c.order_id)
        .cte("new_order")
    )
    arrays = (
        func.unnest(*(bindparam(f"l_{name}", type_=ARRAY(order_lines.c[name].type)) for name in _LINE_COLUMNS))
        .table_valued(*_LINE_COLUMNS)
        .render_derived(name="line")
    )
    lines = (
        order_lines.insert()
        .from_select(["order_id", *_LINE_COLUMNS], select(new.c.order_id, *(arrays.c[name] for name in _LINE_COLUMNS)))
        .cte("new_lines")
    )
    return Prepared(select(new.c.order_id).add_cte(lines, _history_from(new)))


_PLACE = _place()
_ORDER = Prepared(select(orders).where(orders.c.order_id == bindparam("order_id")))
_ACCOUNT_CLOSED = Prepared(select(closed_accounts.c.user_id).where(closed_accounts.c.user_id == bindparam("user_id")))


class OrdersRepository:
    """The saga's own reads and writes (`head`, `save_saga`), placing an order and reading one are statements
    compiled once and run on the transaction's asyncpg connection (db/prepared.py); the
    rest goes through the SQLAlchemy session."""

    def __init__(self, ctx: HandlerContext, cipher: FieldCipher) -> None:
        self._ctx = ctx
        self._cipher = cipher

    @property
    def _session(self) -> AsyncSession:
        return self._ctx.session

    async def add(self, order: Order) -> bool:
        """Insert a new order with its lines and first history entry; False if the id is taken."""
        assert order.shipping_address is not None  # only an erased customer's orders have none
        sealed = self._cipher.seal(order.shipping_address.model_dump_json(), ORDER_ADDRESS.context(order.order_id))
        values = {
            "order_id": order.order_id,
            "user_id": order.user_id,
            "placed_by": order.placed_by,
            "request_hash": order.request_hash,
            "currency": order.currency,
            "total_minor": order.total_minor,
            "shipping_address_enc": sealed.ciphertext,
            "shipping_address_key_id": sealed.key_id,
            "payment_token": order.saga.payment_token,
            "version": order.saga.version,
            "created_at": order.created_at,
            "updated_at": order.updated_at,
            **_saga_values(order.saga),
        }
        placed = await _PLACE.fetchrow(
            self._ctx.db,
            **{f"o_{name}": value for name, value in values.items()},
            **{f"l_{name}": [getattr(x, name) for x in order.lines] for name in _LINE_COLUMNS},
            h_status=order.saga.status,
            h_at=order.created_at,
        )
        return placed is not None

    async def get(self, order_id: UUID) -> Order | None:
        row = await _ORDER.fetchrow(self._ctx.db, order_id=order_id)
        if row is None:
            return None
        return (await self._assemble([row]))[0]

    async def head(self, order_id: UUID) -> OrderHead | None:
        """What a saga step needs, in one statement: the row and its reservation lines
        (no history, no shipping address to open)."""
        row = await _HEAD.fetchrow(self._ctx.db, order_id=order_id)
        if row is None:
            return None
        lines = tuple(
            ReservationLine(product_id=UUID(p), variant_id=UUID(v), quantity=q)
            for p, q, v in row["reservation_lines"] or ()
        )
        return OrderHead(row["user_id"], _saga(row, lines))

    async def save_saga(self, before: Saga, after: Saga, now: datetime) -> bool:
        """Write the saga if nobody changed it since `before` was read, with an entry in
        the order's history if its status changed."""
        changed = {f"new_{name}": value for name, value in _saga_values(after).items()}
        row = await _SAVE_SAGA.fetchrow(
            self._ctx.db,
            b_order_id=before.order_id,
            b_version=before.version,
            new_version=before.version + 1,
            now=now,
            **changed,
            h_changed=after.status != before.status,
            h_status=after.status,
            h_at=now,
        )
        return row is not None

    async def due_for_update(self, now: datetime, limit: int) -> list[UUID]:
        """Sagas past their deadline, locked; rows another replica holds are skipped."""
        rows = await self._session.execute(
            select(orders.c.order_id)
            .where(orders.c.step != "done", orders.c.deadline <= now)
            .order_by(orders.c.deadline)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [row.order_id for row in rows]

    async def listing(
        self,
        *,
        user_id: UUID | None = None,
        status: str | None = None,
        placed_from: datetime | None = None,
        placed_before: datetime | None = None,
        limit: int | None = None,
        after: tuple[datetime, UUID] | None = None,
    ) -> list[Order]:
        """Orders newest first, filtered, strictly after the cursor's (created_at, order_id);
        all of them with no `limit`."""
        query = select(orders)
        if user_id is not None:
            query = query.where(orders.c.user_id == user_id)
        if status is not None:
            query = query.where(orders.c.status == status)
        if placed_from is not None:
            query = query.where(orders.c.created_at >= placed_from)
        if placed_before is not None:
            query = query.where(orders.c.created_at < placed_before)
        if after is not None:
            query = query.where(tuple_(orders.c.created_at, orders.c.order_id) < tuple_(*after))
        rows = await self._session.execute(
            query.order_by(orders.c.created_at.desc(), orders.c.order_id.desc()).limit(limit)
        )
        return await self._assemble([row._mapping for row in rows])

    async def open_for_user(self, user_id: UUID) -> list[UUID]:
        """A member's orders that can still be cancelled by them (pending or confirmed)."""
        rows = await self._session.execute(
            select(orders.c.order_id).where(orders.c.user_id == user_id, orders.c.status.in_(("pending", "confirmed")))
        )
        return [row.order_id for row in rows]

    async def close_account(self, user_id: UUID, reason: str, at: datetime) -> None:
        stmt = pg_insert(closed_accounts).values(user_id=user_id, reason=reason, closed_at=at)
        # Erased is for good: a later "enabled" must not reopen it.
        await self._session.execute(
            stmt.on_conflict_do_update(
                index_elements=[closed_accounts.c.user_id],
                set_={"reason": stmt.excluded.reason, "closed_at": stmt.excluded.closed_at},
                where=closed_accounts.c.reason != "erased",
            )
        )

    async def reopen_account(self, user_id: UUID) -> None:
        c = closed_accounts.c
        await self._session.execute(closed_accounts.delete().where(c.user_id == user_id, c.reason == "disabled"))

    async def account_closed(self, user_id: UUID) -> bool:
        return await _ACCOUNT_CLOSED.fetchrow(self._ctx.db, user_id=user_id) is not None

    async def erase_addresses(self, user_id: UUID) -> int:
        """Drop the shipping address of every order of the member; how many had one."""
        result = await self._session.execute(
            update(orders)
            .where(orders.c.user_id == user_id, orders.c.shipping_address_enc.is_not(None))
            .values(shipping_address_enc=None, shipping_address_key_id=None)
            .returning(orders.c.order_id)
        )
        return len(result.all())

    async def _assemble(self, rows: list[Mapping[Any, Any]]) -> list[Order]:
        """Orders from their rows (asyncpg records, or SQLAlchemy rows' `_mapping`)."""
        if not rows:
            return []
        ids = [row["order_id"] for row in rows]
        lines: dict[UUID, list[Line]] = {i: [] for i in ids}
        for x in await self._session.execute(
            select(order_lines)
            .where(order_lines.c.order_id.in_(ids))
            .order_by(order_lines.c.product_id, order_lines.c.variant_id)
        ):
            lines[x.order_id].append(
                Line(
                    x.product_id,
                    x.seller_id,
                    x.name,
                    x.quantity,
                    x.unit_price_minor,
                    x.variant_id,
                    x.sku,
                    x.variant_label,
                )
            )
        history: dict[UUID, list[HistoryEntry]] = {i: [] for i in ids}
        for h in await self._session.execute(
            select(order_history).where(order_history.c.order_id.in_(ids)).order_by(order_history.c.id)
        ):
            history[h.order_id].append(HistoryEntry(status=h.status, at=h.at))
        return [self._order(row, tuple(lines[row["order_id"]]), tuple(history[row["order_id"]])) for row in rows]

    def _order(self, row: Mapping[Any, Any], lines: tuple[Line, ...], history: tuple[HistoryEntry, ...]) -> Order:
        address = None
        if row["shipping_address_enc"] is not None:  # None: the customer's account was erased
            sealed = Sealed(row["shipping_address_enc"], row["shipping_address_key_id"])
            address = Address.model_validate_json(self._cipher.open(sealed, ORDER_ADDRESS.context(row["order_id"])))
        return Order(
            order_id=row["order_id"],
            user_id=row["user_id"],
            placed_by=row["placed_by"],
            request_hash=row["request_hash"],
            currency=row["currency"],
            total_minor=row["total_minor"],
            shipping_address=address,
            lines=lines,
            saga=_saga(row, reservation_lines(lines)),
            history=history,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


def _saga(row: Mapping[Any, Any], lines: tuple[ReservationLine, ...]) -> Saga:
    return Saga(
        order_id=row["order_id"],
        lines=lines,
        amount_minor=row["total_minor"],
        currency=row["currency"],
        payment_token=row["payment_token"],
        version=row["version"],
        **{name: row[name] for name in _SAGA_COLUMNS},
    )


def _saga_values(saga: Saga) -> dict[str, Any]:
    return {name: getattr(saga, name) for name in _SAGA_COLUMNS}
