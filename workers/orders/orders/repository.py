"""Loading and saving orders and their sagas.

The saga columns of an order row change only through `save_saga`, an
`UPDATE ... WHERE version = :v`: two replicas that decided on the same version cannot
both win, and the loser decides again from what the winner wrote. The shipping
address and the customer's snapshot are sealed (AES-256-GCM) bound to their order.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

from sqlalchemy import ARRAY, JSON, Boolean, ColumnElement, bindparam, exists, false, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.inventory import ReservationLine
from contracts.orders import HistoryEntry, OrderCustomer, ShippingAddress
from db.prepared import Prepared, bind_columns, json_value
from db.sealed import ORDER_ADDRESS, ORDER_CUSTOMER, SealedColumn
from db.tables.orders import closed_accounts, customers, order_history, order_lines, orders
from kernel.crypto import FieldCipher, Sealed
from workers.orders.customers.repository import email_indexes, known_customer
from workers.orders.orders.model import Line, Order, OrderHead, ShippingCharge, reservation_lines
from workers.orders.orders.saga import Saga, noted
from workers.orders.orders.search import OrderSearch, like_pattern
from workers.orders.taxes.model import TaxLine

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
    "pay_by",
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
        orders.c.from_cart,
        orders.c.voucher_code,
        *(orders.c[name] for name in _SAGA_COLUMNS),
        _HEAD_LINES.label("reservation_lines"),
    ).where(orders.c.order_id == bindparam("order_id"))
)


# What a history entry keeps of the payment as it was then (migration 0024).
_HISTORY_PAYMENT = ("payment_status", "cancel_reason", "payment_due_by")


def _history_payment(saga: Saga) -> dict[str, Any]:
    """The `:h_<column>` parameters of `_history_from` for the payment, `saga` as it is now."""
    return {
        "h_payment_status": saga.payment_status,
        "h_cancel_reason": saga.cancel_reason,
        "h_payment_due_by": saga.payment_due_by,
    }


def _history_from(source: Any, changed: ColumnElement[bool] | None = None) -> Any:
    """An INSERT of one history entry per row of `source` (a CTE returning order_id),
    with status `:h_status` at `:h_at` (and the payment's status, the cancel reason and
    the pay-again window's end then: `:h_<column>`), as a CTE of its own."""
    names = ("status", "at", *_HISTORY_PAYMENT)
    rows = select(source.c.order_id, *(bindparam(f"h_{name}", type_=order_history.c[name].type) for name in names))
    if changed is not None:
        rows = rows.where(changed)
    return order_history.insert().from_select(["order_id", *names], rows).cte(f"{source.name}_history")


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

# The shipping method chosen at checkout, as it was then (all null: none chosen).
_SHIPPING_COLUMNS = ("shipping_method_id", "shipping_name", "shipping_minor", "shipping_min_days", "shipping_max_days")
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
    "customer_enc",
    "customer_key_id",
    *_SHIPPING_COLUMNS,
    "tracking_number",
    "carrier",
    "from_cart",
    "prices_include_tax",
    "shipping_tax_minor",
    "tax_lines",
    "voucher_code",
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
    "image_url",
    "tax_minor",
    "discount_minor",
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
_ACCOUNT_OF = select(bindparam("user_id", type_=PG_UUID(as_uuid=True)).label("user_id")).subquery("account")
# Whether the account is closed, the customers read model's row, and whether an order
# with this id exists already, in one statement: what placing an order reads first.
_ACCOUNT = Prepared(
    select(
        closed_accounts.c.reason.label("closed"),
        customers.c.email_enc,
        customers.c.email_key_id,
        customers.c.username,
        exists().where(orders.c.order_id == bindparam("order_id")).label("placed"),
    ).select_from(
        _ACCOUNT_OF.outerjoin(closed_accounts, closed_accounts.c.user_id == _ACCOUNT_OF.c.user_id).outerjoin(
            customers, customers.c.user_id == _ACCOUNT_OF.c.user_id
        )
    )
)


class Account(NamedTuple):
    """What placing an order reads first (`OrdersRepository.account`)."""

    closed: bool
    customer: OrderCustomer | None
    placed: bool  # an order with the request's id exists


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
        sealed = self._seal(order.shipping_address, ORDER_ADDRESS, order.order_id)
        customer = self._seal(order.customer, ORDER_CUSTOMER, order.order_id) if order.customer else None
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
            "customer_enc": customer.ciphertext if customer else None,
            "customer_key_id": customer.key_id if customer else None,
            **_shipping_values(order.shipping),
            "tracking_number": order.tracking_number,
            "carrier": order.carrier,
            "from_cart": order.from_cart,
            "prices_include_tax": order.prices_include_tax,
            "shipping_tax_minor": order.shipping.tax_minor if order.shipping is not None else 0,
            "tax_lines": [
                {"name": t.name, "rate": str(t.rate), "amount_minor": t.amount_minor} for t in order.tax_lines
            ],
            "voucher_code": order.voucher_code,
            **_saga_values(order.saga),
        }
        placed = await _PLACE.fetchrow(
            self._ctx.db,
            **{f"o_{name}": value for name, value in values.items()},
            **{f"l_{name}": [getattr(x, name) for x in order.lines] for name in _LINE_COLUMNS},
            h_status=order.saga.status,
            h_at=order.created_at,
            **_history_payment(order.saga),
        )
        return placed is not None

    async def set_tracking(self, order_id: UUID, tracking_number: str | None, carrier: str | None) -> None:
        """The parcel's tracking number and carrier: those given replace what was there."""
        given = {k: v for k, v in (("tracking_number", tracking_number), ("carrier", carrier)) if v is not None}
        if given:
            await self._ctx.session.execute(update(orders).where(orders.c.order_id == order_id).values(**given))

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
        return OrderHead(row["user_id"], _saga(row, lines), row["from_cart"], row["voucher_code"])

    async def save_saga(self, before: Saga, after: Saga, now: datetime) -> bool:
        """Write the saga if nobody changed it since `before` was read, with an entry in
        the order's history if its status changed, or a payment failed or was made again."""
        changed = {f"new_{name}": value for name, value in _saga_values(after).items()}
        row = await _SAVE_SAGA.fetchrow(
            self._ctx.db,
            b_order_id=before.order_id,
            b_version=before.version,
            new_version=before.version + 1,
            now=now,
            **changed,
            h_changed=noted(before, after),
            h_status=after.status,
            h_at=now,
            **_history_payment(after),
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
        seller_id: UUID | None = None,
        status: str | None = None,
        placed_from: datetime | None = None,
        placed_before: datetime | None = None,
        limit: int | None = None,
        after: tuple[datetime, UUID] | None = None,
        search: OrderSearch | None = None,
    ) -> list[Order]:
        """Orders newest first, filtered, strictly after the cursor's (created_at, order_id);
        all of them with no `limit`."""
        query = select(orders)
        if search is not None:
            query = query.where(self._matching(search))
        if user_id is not None:
            query = query.where(orders.c.user_id == user_id)
        if seller_id is not None:
            sold = select(order_lines.c.order_id).where(order_lines.c.seller_id == seller_id)
            query = query.where(orders.c.order_id.in_(sold))
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

    def _matching(self, search: OrderSearch) -> ColumnElement[bool]:
        """Orders with an id in the range, or of a customer with that email or a name like it."""
        found: list[ColumnElement[bool]] = []
        if search.order_ids is not None:
            found.append(orders.c.order_id.between(*search.order_ids))
        c = customers.c
        if search.email is not None:
            by_email = select(c.user_id).where(c.email_index.in_(email_indexes(self._cipher, search.email)))
            found.append(orders.c.user_id.in_(by_email))
        if search.name is not None:
            by_name = select(c.user_id).where(c.username.ilike(like_pattern(search.name), escape="\\"))
            found.append(orders.c.user_id.in_(by_name))
        return or_(*found) if found else false()

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

    async def account(self, user_id: UUID, order_id: UUID) -> Account:
        """Whether the account is closed (no order may be placed for it), the customer as
        the read model knows it (None if it does not), and whether `order_id` is taken."""
        row = await _ACCOUNT.fetchrow(self._ctx.db, user_id=user_id, order_id=order_id)
        assert row is not None  # one row, whatever is known
        customer = known_customer(self._cipher, user_id, row["email_enc"], row["email_key_id"], row["username"])
        return Account(row["closed"] is not None, customer, row["placed"])

    async def erase_personal_data(self, user_id: UUID) -> int:
        """Drop the shipping address and the customer's snapshot of every order of the member;
        how many had either."""
        o = orders.c
        result = await self._session.execute(
            update(orders)
            .where(o.user_id == user_id, or_(o.shipping_address_enc.is_not(None), o.customer_enc.is_not(None)))
            .values(shipping_address_enc=None, shipping_address_key_id=None, customer_enc=None, customer_key_id=None)
            .returning(o.order_id)
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
                    x.image_url,
                    x.tax_minor,
                    x.discount_minor,
                )
            )
        history: dict[UUID, list[HistoryEntry]] = {i: [] for i in ids}
        for h in await self._session.execute(
            select(order_history).where(order_history.c.order_id.in_(ids)).order_by(order_history.c.id)
        ):
            entry = {name: h._mapping[name] for name in ("status", "at", *_HISTORY_PAYMENT)}
            history[h.order_id].append(HistoryEntry(**entry))
        return [self._order(row, tuple(lines[row["order_id"]]), tuple(history[row["order_id"]])) for row in rows]

    def _seal(self, value: ShippingAddress | OrderCustomer, column: SealedColumn, order_id: UUID) -> Sealed:
        return self._cipher.seal(value.model_dump_json(), column.context(order_id))

    def _open(self, row: Mapping[Any, Any], column: SealedColumn) -> str | None:
        """A sealed column of an order row, opened; None if it holds nothing (erased, unknown)."""
        if row[column.value] is None:
            return None
        return self._cipher.open(Sealed(row[column.value], row[column.key_id]), column.context(row["order_id"]))

    def _order(self, row: Mapping[Any, Any], lines: tuple[Line, ...], history: tuple[HistoryEntry, ...]) -> Order:
        address = self._open(row, ORDER_ADDRESS)
        customer = self._open(row, ORDER_CUSTOMER)
        return Order(
            order_id=row["order_id"],
            user_id=row["user_id"],
            placed_by=row["placed_by"],
            request_hash=row["request_hash"],
            currency=row["currency"],
            total_minor=row["total_minor"],
            shipping_address=ShippingAddress.model_validate_json(address) if address is not None else None,
            lines=lines,
            saga=_saga(row, reservation_lines(lines)),
            history=history,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            customer=OrderCustomer.model_validate_json(customer) if customer is not None else None,
            shipping=_shipping(row),
            tracking_number=row["tracking_number"],
            carrier=row["carrier"],
            from_cart=row["from_cart"],
            prices_include_tax=row["prices_include_tax"],
            tax_lines=tuple(
                TaxLine(t["name"], Decimal(t["rate"]), t["amount_minor"]) for t in json_value(row["tax_lines"])
            ),
            voucher_code=row["voucher_code"],
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


def _shipping(row: Mapping[Any, Any]) -> ShippingCharge | None:
    if row["shipping_method_id"] is None:
        return None
    return ShippingCharge(
        row["shipping_method_id"],
        row["shipping_name"],
        row["shipping_minor"],
        row["shipping_min_days"],
        row["shipping_max_days"],
        row["shipping_tax_minor"],
    )


def _shipping_values(shipping: ShippingCharge | None) -> dict[str, Any]:
    if shipping is None:
        return dict.fromkeys(_SHIPPING_COLUMNS)
    return {
        "shipping_method_id": shipping.method_id,
        "shipping_name": shipping.name,
        "shipping_minor": shipping.price_minor,
        "shipping_min_days": shipping.min_days,
        "shipping_max_days": shipping.max_days,
    }


def _saga_values(saga: Saga) -> dict[str, Any]:
    return {name: getattr(saga, name) for name in _SAGA_COLUMNS}
