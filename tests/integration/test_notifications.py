"""Notifications end to end: events from the real workers, email into the stack's SMTP sink,
SMS into the suite's Twilio sandbox, and the deliveries table that keeps them to one each.

The sink and the sandbox are shared by the whole suite: every test tells its messages
apart by recipient (a fresh account each).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aio_pika.abc import AbstractRobustConnection
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from contracts.inventory import LOW_STOCK, LowStock
from contracts.money import for_people
from contracts.users import GET_CONTACT, PASSWORD_CHANGED, PasswordChanged
from harness import environment, processes
from harness.accounts import bearer, login, make_seller, register
from harness.bus import Bus, list_product, publish_event, service_token
from harness.database import create_database
from harness.stack import Stack
from tests.catalog_support import create_category, create_product, new_tag
from tests.orders_support import confirmed_and_captured, place_body, place_when_priced
from tests.reliability.conftest import dead_letters
from workers.notifications.templates import CANCEL_REASONS, DEFAULTS

Mail = dict[str, Any]
PASSWORD_CHANGED_QUEUE = "notifications.on_users_password_changed_v1"


# --- reading what was sent ----------------------------------------------------------------


async def mails(to: str, *, subject: str = "", expect: int = 1, within: float = 30) -> list[Mail]:
    """The sink's messages to `to` whose subject contains `subject` (with their text and
    headers), once `expect` arrived or the time is up."""
    deadline = asyncio.get_running_loop().time() + within
    async with aiohttp.ClientSession(environment.SMTP_SINK_URL) as sink:
        while True:
            async with sink.get("/messages", params={"to": to}) as resp:
                found = [m for m in await resp.json() if subject in m["subject"]]
            if len(found) >= expect or asyncio.get_running_loop().time() > deadline:
                details = []
                for summary in found:
                    async with sink.get(f"/messages/{summary['id']}") as resp:
                        details.append(await resp.json())
                return details
            await asyncio.sleep(0.2)


async def texts(to: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession(environment.SMS_SANDBOX_URL) as sandbox,
        sandbox.get("/sandbox/messages", params={"to": to}) as resp,
    ):
        found: list[dict[str, Any]] = await resp.json()
        return found


async def deliveries(db: AsyncEngine, user_id: str) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.execute(
            text("SELECT * FROM notifications.deliveries WHERE recipient_id = :u ORDER BY id"), {"u": user_id}
        )
        return [dict(row._mapping) for row in rows]


async def until(check: Any, *, within: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.2)


def _phone() -> str:
    # Valid US numbers, unique enough for one run: area code 202 (Washington DC) and an
    # exchange that starts with 2-9 (NANP exchanges never start with 0 or 1).
    number = uuid.uuid4().int
    return f"+1202{2 + number % 8}{number // 8 % 1_000_000:06d}"


@pytest.fixture
async def member(http: aiohttp.ClientSession) -> dict[str, Any]:
    user = await register(http)
    return {**user, **await login(http, user["email"], user["password"])}


@pytest.fixture(scope="module")
async def seller(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    return await make_seller(http, admin)


async def product(amqp: AbstractRobustConnection, http: aiohttp.ClientSession, seller: dict[str, Any]) -> str:
    return await list_product(amqp, http, seller["user"]["user_id"], stock=100)


async def status(http: aiohttp.ClientSession, who: dict[str, Any], order_id: str, wanted: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        async with http.get(f"/api/orders/{order_id}", headers=bearer(who["access_token"])) as resp:
            order: dict[str, Any] = await resp.json()
            return order if order["status"] == wanted and order["payment_status"] != "authorized" else None

    order = await until(check, within=40)
    assert order, f"order {order_id} never became {wanted}"
    return order


# --- the users service's side ---------------------------------------------------------------


async def test_only_the_notifications_service_may_read_contacts(
    stack: Stack, amqp: AbstractRobustConnection, member: dict[str, Any]
) -> None:
    async with Bus(amqp) as bus:
        query = {"user_id": member["user_id"]}
        reply = await bus.call(
            GET_CONTACT.routing_key, query, token=await service_token(bus, stack.env, "notifications")
        )
        assert reply["ok"], reply
        assert reply["data"] == {
            "user_id": member["user_id"],
            "email": member["email"],
            "username": member["username"],
            "phone": None,
            "erased": False,
            "disabled": False,
        }
        for token in (await service_token(bus, stack.env, "catalog"), member["access_token"]):
            reply = await bus.call(GET_CONTACT.routing_key, query, token=token)
            assert not reply["ok"] and reply["error"]["code"] == "forbidden", reply


# --- account ----------------------------------------------------------------------------------


async def test_registration_sends_a_welcome_email(http: aiohttp.ClientSession, db: AsyncEngine) -> None:
    user = await register(http)
    [mail] = await mails(user["email"], subject="Welcome")
    assert user["username"] in mail["text"]
    assert mail["html"] and user["username"] in mail["html"]
    [delivery] = await until(lambda: deliveries(db, user["user_id"]))
    assert (delivery["template"], delivery["channel"], delivery["status"]) == ("welcome", "email", "sent")
    assert delivery["attempts"] == 1 and delivery["sent_at"] is not None
    # The Message-ID is the delivery's own: a copy sent again would be the same message.
    assert mail["headers"]["Message-ID"] == delivery["provider_id"]
    assert f"delivery-{delivery['id']}@" in delivery["provider_id"]


async def test_a_sign_in_from_a_new_browser_is_announced_but_not_the_first(
    http: aiohttp.ClientSession, db: AsyncEngine
) -> None:
    user = await register(http)
    forged = {"email": user["email"], "password": user["password"], "client_fingerprint": "0" * 64}
    async with http.post("/api/users/login", json=forged) as resp:
        assert resp.status == 422  # the edge's to set, not the client's
    for agent in ("Firefox/1", "Firefox/1", "Lynx/2"):  # first ever, seen before, new
        async with http.post(
            "/api/users/login",
            json={"email": user["email"], "password": user["password"]},
            headers={"User-Agent": agent},
        ) as resp:
            assert resp.status == 200
    [notice] = await mails(user["email"], subject="New sign-in")
    await asyncio.sleep(2)  # nothing else is on its way
    assert len(await mails(user["email"], subject="New sign-in", within=0)) == 1
    assert "new device or browser" in notice["text"]
    async with db.connect() as conn:
        known = await conn.scalar(
            text("SELECT count(*) FROM notifications.sign_in_fingerprints WHERE user_id = :u"), {"u": user["user_id"]}
        )
    assert known == 2


# --- orders -----------------------------------------------------------------------------------


async def test_a_confirmed_order_is_emailed_once_with_its_id_and_total(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, seller: dict[str, Any], member: dict[str, Any]
) -> None:
    product_id = await product(amqp, http, seller)
    order = await place_when_priced(http, member, product_id)
    await status(http, member, order["order_id"], "confirmed")
    [mail] = await mails(member["email"], subject="confirmed")
    assert order["order_id"] in mail["text"]
    assert "$19.99" in mail["text"]
    assert f"product {product_id[:8]}" in mail["text"]  # the item's name, from the catalog's event
    await asyncio.sleep(2)
    assert len(await mails(member["email"], subject="confirmed", within=0)) == 1


async def test_the_confirmation_lists_discount_shipping_and_tax_as_the_order_does(
    http: aiohttp.ClientSession, admin: dict[str, Any], member: dict[str, Any]
) -> None:
    """Issue 18: the receipt in the email is the order's, to the cent (here with VAT in the prices)."""
    as_admin = bearer(admin["access_token"])
    async with http.put("/api/tax-settings/GBP", json={"prices_include_tax": True}, headers=as_admin) as resp:
        assert resp.status == 200, await resp.text()
    rate = {"country": "GB", "rate": "20", "name": "VAT"}
    async with http.post("/api/tax-rates", json=rate, headers=as_admin) as resp:
        assert resp.status == 201, await resp.text()
    category = f"receipts-{new_tag()}"
    await create_category(http, admin, category)
    shop = await make_seller(http, admin)
    kettle = await create_product(http, shop, category, price="24.00", currency="GBP", stock=20)
    method = {"name": f"Royal Mail {new_tag()}", "countries": ["GB"], "prices": {"GBP": "6.00"}}
    async with http.post("/api/shipping-methods", json={**method, "min_days": 1, "max_days": 3}, headers=as_admin) as r:
        assert r.status == 201, await r.text()
        method_id = (await r.json())["method_id"]
    code = f"R-{new_tag()}".upper()
    async with http.post("/api/vouchers", json={"code": code, "amounts": {"GBP": "5.00"}}, headers=as_admin) as r:
        assert r.status == 201, await r.text()
    body = {
        "items": [{"product_id": kettle["product_id"], "quantity": 2}],
        "shipping_address": {"line1": "1 Strand", "city": "London", "postal_code": "WC2N 5HR", "country": "GB"},
        "payment_token": "tok_visa",
        "shipping_method_id": method_id,
        "voucher_code": code,
    }
    placed, order = await place_body(http, member, body)
    assert placed == 202, order
    order = await confirmed_and_captured(http, member, order["order_id"])
    # By hand: 2 x 24.00 = 48.00, less 5.00; VAT carved out of 43.00 (7.1666… → 7.17) and
    # of shipping's 6.00 (1.00): 8.17. Total 48.00 - 5.00 + 6.00 = 49.00, the VAT in it.
    assert (order["subtotal"], order["discount_total"], order["shipping"]["price"]) == ("48.00", "5.00", "6.00")
    assert (order["tax_total"], order["total_amount"], order["prices_include_tax"]) == ("8.17", "49.00", True)
    [tax] = order["taxes"]
    [mail] = await mails(member["email"], subject="confirmed")
    assert order["order_id"] in mail["text"]

    def gbp(amount: str) -> str:
        return for_people(amount, "GBP")

    # (The item's name comes from the catalog's event, on a queue of its own: not waited for here.)
    receipt = (
        f": 2 at {gbp(order['items'][0]['price'])} each\n"
        f"Subtotal: {gbp(order['subtotal'])}\n"
        f"Discount ({order['voucher_code']}): -{gbp(order['discount_total'])}\n"
        f"Shipping ({method['name']}): {gbp(order['shipping']['price'])}\n"
        f"Total: {gbp(order['total_amount'])} (includes {tax['name']} {tax['rate']} %: {gbp(tax['amount'])})\n"
    )
    assert receipt in mail["text"], mail["text"]
    assert "Total: £49.00 (includes VAT 20 %: £8.17)" in mail["text"]
    assert "includes VAT 20 %" in mail["html"] and f"Shipping ({method['name']})" in mail["html"]


async def _migrate(env: dict[str, str], revision: str) -> None:
    alembic = [str(environment.ROOT / ".venv/bin/alembic"), "-c", "db/alembic.ini", "upgrade", revision]
    result = await asyncio.to_thread(
        subprocess.run, alembic, env=env, cwd=environment.ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def test_migration_0030_reseeds_the_changed_defaults_but_never_an_edit(stack: Stack) -> None:
    """A database at 0029 with stored templates and an order: the defaults nobody edited of
    the templates 0030 changed are dropped (the worker seeds the new ones at start), an
    admin's edit stays, and the order reads as one without amounts."""
    url = make_url(stack.env["AGORA_DATABASE_URL"]).set(database=f"agora_0030_{new_tag()}".replace("-", "_"))
    await create_database(url.render_as_string(hide_password=False))
    env = {**stack.env, "AGORA_DATABASE_URL": url.render_as_string(hide_password=False)}
    engine = create_async_engine(url)
    try:
        await _migrate(env, "0029")
        stored = [("order_confirmed", "email", None), ("order_confirmed", "sms", uuid.uuid4())]
        stored += [("order_shipped", "email", None), ("welcome", "email", None), ("order_cancelled", "email", None)]
        async with engine.begin() as conn:
            for key, channel, by in stored:
                await conn.execute(
                    text(
                        "INSERT INTO notifications.templates (key, channel, text, updated_at, updated_by)"
                        " VALUES (:key, :channel, 'as it was', now(), :by)"
                    ),
                    {"key": key, "channel": channel, "by": by},
                )
            await conn.execute(
                text(
                    "INSERT INTO notifications.orders (order_id, user_id, total_minor, currency, items, placed_at)"
                    " VALUES (:o, :u, 1999, 'USD', '[]', now())"
                ),
                {"o": uuid.uuid4(), "u": uuid.uuid4()},
            )
        await _migrate(env, "0030")
        async with engine.connect() as conn:
            left = {(r.key, r.channel) for r in await conn.execute(text("SELECT * FROM notifications.templates"))}
            order = (await conn.execute(text("SELECT * FROM notifications.orders"))).one()
        assert left == {("order_confirmed", "sms"), ("welcome", "email"), ("order_cancelled", "email")}
        assert (order.subtotal_minor, order.discount_minor, order.shipping_minor, order.tax_minor) == (0, 0, 0, 0)
        assert (order.voucher_code, order.shipping_method, order.taxes, order.prices_include_tax) == (
            None,
            None,
            [],
            False,
        )
    finally:
        await engine.dispose()
        admin_db = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        async with admin_db.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}"'))
        await admin_db.dispose()


async def test_a_declined_order_is_cancelled_by_email_with_the_reason_in_words(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, seller: dict[str, Any], member: dict[str, Any]
) -> None:
    product_id = await product(amqp, http, seller)
    order = await place_when_priced(http, member, product_id, "tok_chargeDeclined")
    # First the failed payment, with the link to pay again and until when; then, the
    # window passed (10 s in tests), the cancellation.
    [failed] = await mails(member["email"], subject="did not go through")
    assert order["order_id"] in failed["text"] and f"/orders/{order['order_id']}" in failed["text"]
    assert "Pay again" in failed["html"] and " UTC" in failed["text"]
    [mail] = await mails(member["email"], subject="cancelled")
    assert order["order_id"] in mail["text"]
    assert CANCEL_REASONS["payment_declined"] in mail["text"]
    assert await mails(member["email"], subject="confirmed", within=0) == []


async def test_shipping_and_a_refund_are_emailed(
    http: aiohttp.ClientSession,
    amqp: AbstractRobustConnection,
    seller: dict[str, Any],
    admin: dict[str, Any],
    member: dict[str, Any],
) -> None:
    product_id = await product(amqp, http, seller)
    order_id = (await place_when_priced(http, member, product_id))["order_id"]
    await status(http, member, order_id, "confirmed")
    parcel = {"status": "shipped", "tracking_number": "1Z999AA10123456784", "carrier": "UPS"}
    async with http.put(f"/api/orders/{order_id}", json=parcel, headers=bearer(seller["access_token"])) as resp:
        assert resp.status == 200
    [shipped] = await mails(member["email"], subject="order is on its way")
    assert order_id in shipped["text"]
    # With its tracking number and carrier (issue 18), and UPS's own tracking page.
    page = "https://www.ups.com/track?tracknum=1Z999AA10123456784"
    assert "Tracking number: 1Z999AA10123456784 (UPS)" in shipped["text"] and page in shipped["text"]
    assert f'href="{page}"' in shipped["html"]
    # Cancelled after shipping (an admin): the captured payment is refunded.
    async with http.put(
        f"/api/orders/{order_id}", json={"status": "cancelled"}, headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 200
    [refund] = await mails(member["email"], subject="refund")
    assert "$19.99" in refund["text"] and order_id in refund["text"]


async def test_a_parcel_of_a_carrier_without_a_known_tracking_page_is_named_without_a_link(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, seller: dict[str, Any], member: dict[str, Any]
) -> None:
    product_id = await product(amqp, http, seller)
    order_id = (await place_when_priced(http, member, product_id))["order_id"]
    await status(http, member, order_id, "confirmed")
    parcel = {"status": "shipped", "tracking_number": "3SABCD1234567", "carrier": "PostNL"}
    async with http.patch(f"/api/orders/{order_id}", json=parcel, headers=bearer(seller["access_token"])) as resp:
        assert resp.status == 405  # a status move is not a partial update: PUT only
    async with http.put(f"/api/orders/{order_id}", json=parcel, headers=bearer(seller["access_token"])) as resp:
        assert resp.status == 200
    shipped = [m for m in await mails(member["email"], subject="order is on its way") if order_id in m["text"]]
    assert len(shipped) == 1
    assert "Tracking number: 3SABCD1234567 (PostNL)" in shipped[0]["text"]
    assert "Follow your parcel" not in shipped[0]["text"] and "Follow your parcel" not in shipped[0]["html"]


async def test_order_texts_go_only_to_members_who_consented_and_have_a_phone(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, seller: dict[str, Any]
) -> None:
    product_id = await product(amqp, http, seller)
    consenting, declining = [await register(http, phone=_phone()) for _ in range(2)]
    async with db.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO notifications.preferences (user_id, sms_orders, updated_at) VALUES (:u, true, now()), "
                "(:v, false, now())"
            ),
            {"u": consenting["user_id"], "v": declining["user_id"]},
        )
    for user in (consenting, declining):
        session = await login(http, user["email"], user["password"])
        order_id = (await place_when_priced(http, session, product_id))["order_id"]
        await status(http, session, order_id, "confirmed")
        assert await mails(user["email"], subject="confirmed")
    [sms] = await until(lambda: texts(consenting["phone"]))
    assert "confirmed" in sms["body"] and "$19.99" in sms["body"]
    assert await texts(declining["phone"]) == []
    sent = [
        (d["channel"], d["status"]) for d in await deliveries(db, consenting["user_id"]) if d["template"] != "welcome"
    ]
    assert sent == [("email", "sent"), ("sms", "sent")]


# --- sellers ----------------------------------------------------------------------------------


async def test_low_stock_is_emailed_to_the_seller(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, admin: dict[str, Any]
) -> None:
    seller = await make_seller(http, admin)
    product_id = await list_product(amqp, http, seller["user"]["user_id"], stock=10)

    async def named() -> bool:  # the notifications worker has the catalog's event too
        async with db.connect() as conn:
            found = await conn.scalar(
                text("SELECT name FROM notifications.products WHERE product_id = :p"), {"p": product_id}
            )
        return bool(found)

    assert await until(named)
    async with http.put(
        f"/api/inventory/{product_id}",
        json={"stock": 2, "low_stock_threshold": 3},
        headers=bearer(seller["access_token"]),
    ) as resp:
        assert resp.status == 200, await resp.text()
    [mail] = await mails(seller["user"]["email"], subject="Low stock")
    assert f"product {product_id[:8]}" in mail["subject"]  # its name, from the catalog's event
    assert "2" in mail["text"]


async def stock_record(http: aiohttp.ClientSession, product_id: str, variant_id: str) -> None:
    """Wait until the inventory service has the variant's stock record (from the catalog's event)."""

    async def found() -> bool:
        async with http.get(f"/api/inventory/{product_id}", params={"variant_id": variant_id}) as resp:
            return resp.status == 200

    assert await until(found), f"no stock record for variant {variant_id}"


async def report_low(http: aiohttp.ClientSession, seller: dict[str, Any], product_id: str, variant_id: str) -> None:
    """Set the variant's stock below its threshold: the inventory service reports it low."""
    await stock_record(http, product_id, variant_id)
    async with http.put(
        f"/api/inventory/{product_id}",
        json={"variant_id": variant_id, "stock": 2, "low_stock_threshold": 3},
        headers=bearer(seller["access_token"]),
    ) as resp:
        assert resp.status == 200, await resp.text()


async def low_stock_mail(seller: dict[str, Any], subject: str) -> Mail:
    """The one low-stock email whose subject is exactly `subject`."""
    found = [m for m in await mails(seller["user"]["email"], subject=subject) if m["subject"] == subject]
    subjects = [m["subject"] for m in await mails(seller["user"]["email"], subject="Low stock", within=0)]
    assert len(found) == 1, f"wanted {subject!r}, the seller got {subjects}"
    return found[0]


@pytest.fixture(scope="module")
async def category(http: aiohttp.ClientSession, admin: dict[str, Any]) -> str:
    slug = f"notices-{new_tag()}"
    await create_category(http, admin, slug)
    return slug


def tee(tag: str) -> dict[str, Any]:
    """A T-shirt in three sizes and two colours: six variants, each with its SKU."""
    return {
        "name": f"Tee {tag}",
        "options": [{"name": "Size", "values": ["S", "M", "L", "XL"]}, {"name": "Colour", "values": ["Red", "Blue"]}],
        "variants": [
            {"sku": f"TEE-{tag}-{size}-{colour}".upper(), "options": {"Size": size, "Colour": colour}, "stock": 10}
            for size in ("S", "M", "L")
            for colour in ("Red", "Blue")
        ],
    }


def variant_of(product: dict[str, Any], label: str) -> dict[str, Any]:
    return next(v for v in product["variants"] if v["label"] == label)


async def test_a_low_stock_email_names_the_variant_and_its_sku(
    http: aiohttp.ClientSession, admin: dict[str, Any], category: str
) -> None:
    seller = await make_seller(http, admin)
    tag = new_tag()
    product = await create_product(http, seller, category, **tee(tag))
    m_red = variant_of(product, "M / Red")
    await report_low(http, seller, product["product_id"], m_red["variant_id"])

    mail = await low_stock_mail(seller, f"Low stock: Tee {tag} (M / Red)")
    assert f"Tee {tag} (M / Red), SKU {m_red['sku']}, is running low: 2 left" in mail["text"]
    assert f"<strong>Tee {tag} (M / Red)</strong>, SKU {m_red['sku']}, is running low" in mail["html"]
    others = [v for v in product["variants"] if v["variant_id"] != m_red["variant_id"]]
    assert not [v["sku"] for v in others if v["sku"] in mail["text"]]  # only the low one


async def test_a_variant_added_or_changed_later_is_named_as_it_is_now(
    http: aiohttp.ClientSession, db: AsyncEngine, admin: dict[str, Any], category: str
) -> None:
    seller = await make_seller(http, admin)
    tag = new_tag()
    product = await create_product(http, seller, category, **tee(tag))
    pid, auth = product["product_id"], bearer(seller["access_token"])

    # Added after the listing (catalog.variant_added): its stock set low at once.
    xl = {"sku": f"XL-{tag}".upper(), "options": {"Size": "XL", "Colour": "Red"}, "price": "22.00", "stock": 10}
    async with http.post(f"/api/products/{pid}/variants", json=xl, headers=auth) as resp:
        assert resp.status == 201, await resp.text()
        xl_red = variant_of(await resp.json(), "XL / Red")
    await report_low(http, seller, pid, xl_red["variant_id"])
    mail = await low_stock_mail(seller, f"Low stock: Tee {tag} (XL / Red)")
    assert f"(XL / Red), SKU {xl['sku']}, is running low" in mail["text"]

    # A new SKU (catalog.variant_updated): the notice names it, not the one at listing.
    l_blue = variant_of(product, "L / Blue")
    new_sku = f"LB-{tag}".upper()
    async with http.put(
        f"/api/products/{pid}/variants/{l_blue['variant_id']}", json={"sku": new_sku}, headers=auth
    ) as resp:
        assert resp.status == 200, await resp.text()

    async def renamed() -> bool:  # the notifications worker has the catalog's event too
        async with db.connect() as conn:
            sku = await conn.scalar(
                text("SELECT sku FROM notifications.variants WHERE variant_id = :v"), {"v": l_blue["variant_id"]}
            )
        return bool(sku == new_sku)

    assert await until(renamed)
    await report_low(http, seller, pid, l_blue["variant_id"])
    mail = await low_stock_mail(seller, f"Low stock: Tee {tag} (L / Blue)")
    assert f"(L / Blue), SKU {new_sku}, is running low" in mail["text"]
    assert l_blue["sku"] not in mail["text"]


async def test_a_low_stock_email_for_a_product_without_options_has_no_empty_label(
    http: aiohttp.ClientSession, admin: dict[str, Any], category: str
) -> None:
    seller = await make_seller(http, admin)
    plain = await create_product(http, seller, category, name=f"Mug {new_tag()}", stock=10)
    sku = f"MUG-{new_tag()}".upper()
    with_sku = await create_product(
        http, seller, category, name=f"Jug {new_tag()}", variants=[{"sku": sku, "stock": 10}]
    )
    for product in (plain, with_sku):
        (default,) = product["variants"]
        assert (default["variant_id"], default["label"]) == (product["product_id"], "")
        await report_low(http, seller, product["product_id"], default["variant_id"])

    mail = await low_stock_mail(seller, f"Low stock: {plain['name']}")
    assert f"Hi {seller['user']['username']},\n\n{plain['name']} is running low: 2 left" in mail["text"]
    assert "()" not in mail["text"] + mail["html"] and "SKU" not in mail["text"]
    assert f"<strong>{plain['name']}</strong> is running low" in mail["html"]
    mail = await low_stock_mail(seller, f"Low stock: {with_sku['name']}")
    assert f"\n\n{with_sku['name']}, SKU {sku}, is running low: 2 left" in mail["text"]
    assert "()" not in mail["text"] + mail["html"]


# --- delivery guarantees -----------------------------------------------------------------------


async def test_a_duplicate_event_sends_one_email_even_without_the_inbox(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, member: dict[str, Any]
) -> None:
    event = PasswordChanged(user_id=member["user_id"], changed_at=datetime.now(UTC))
    message_id = str(uuid.uuid4())
    await publish_event(amqp, PASSWORD_CHANGED, event, message_id=message_id)
    await publish_event(amqp, PASSWORD_CHANGED, event, message_id=message_id)  # a redelivery: the inbox drops it
    assert len(await mails(member["email"], subject="password")) == 1
    # A crash after the send and before the commit loses the inbox claim: the delivery
    # record, committed before the send, still says "sent".
    async with db.begin() as conn:
        await conn.execute(text("DELETE FROM notifications.inbox WHERE message_id = :m"), {"m": message_id})
    await publish_event(amqp, PASSWORD_CHANGED, event, message_id=message_id)
    await asyncio.sleep(3)
    assert len(await mails(member["email"], subject="password", within=0)) == 1
    assert [d["status"] for d in await deliveries(db, member["user_id"]) if d["template"] == "password_changed"] == [
        "sent"
    ]


async def test_an_edited_template_changes_the_next_email(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, member: dict[str, Any]
) -> None:
    edit = text(
        "UPDATE notifications.templates SET subject = :subject, text = :text, html = :html, updated_at = now()"
        " WHERE key = 'password_changed' AND channel = 'email'"
    )
    async with db.begin() as conn:
        await conn.execute(edit, {"subject": "Heads up, {{ name }}", "text": "Edited: {{ shop_name }}", "html": None})
    try:
        event = PasswordChanged(user_id=member["user_id"], changed_at=datetime.now(UTC))
        await publish_event(amqp, PASSWORD_CHANGED, event)
        [mail] = await mails(member["email"], subject="Heads up")
        assert mail["subject"] == f"Heads up, {member['username']}"
        assert mail["text"].strip() == "Edited: Agora"
        assert mail["html"] is None
    finally:
        async with db.begin() as conn:
            await conn.execute(edit, DEFAULTS[("password_changed", "email")].body.model_dump())


class _Inbox:
    """What a test's own SMTP server received."""

    def __init__(self) -> None:
        self.rcpts: list[str] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.rcpts.extend(envelope.rcpt_tos)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def lone_notifications_worker(stack: Stack, smtp_port: int, max_attempts: int = 30) -> Iterator[processes.Process]:
    """The only notifications worker meanwhile: it sends through `smtp_port` and retries fast."""
    stack.workers["notifications"].stop()
    worker = processes.worker("notifications", stack.env, label="notifications-smtp-outage")
    extra = {
        "AGORA_SMTP_PORT": str(smtp_port),
        "AGORA_NOTIFICATION_RETRY_CAP_SECONDS": "2",
        "AGORA_NOTIFICATION_MAX_ATTEMPTS": str(max_attempts),
    }
    try:
        yield worker.start(extra_env=extra)
    finally:
        worker.stop()
        stack.workers["notifications"].start()


async def test_an_smtp_outage_delays_the_email_which_is_then_sent_once(
    stack: Stack, amqp: AbstractRobustConnection, db: AsyncEngine, member: dict[str, Any]
) -> None:
    assert await mails(member["email"], subject="Welcome")  # nothing of this member's is in flight
    port, received = _free_port(), _Inbox()
    with lone_notifications_worker(stack, port):
        event = PasswordChanged(user_id=member["user_id"], changed_at=datetime.now(UTC))
        await publish_event(amqp, PASSWORD_CHANGED, event)  # the SMTP server is down

        async def failed_twice() -> list[dict[str, Any]]:
            return [d for d in await deliveries(db, member["user_id"]) if d["attempts"] >= 2 and d["status"] != "sent"]

        [pending] = await until(failed_twice)
        assert pending["status"] == "pending" and pending["last_error"].startswith("TransientDeliveryError")
        assert member["email"] not in pending["last_error"]
        server = Controller(received, hostname="127.0.0.1", port=port)
        server.start()
        try:
            sent = await until(lambda: _sent(db, member["user_id"], "password_changed"), within=20)
            assert sent and sent["attempts"] >= 3
            await asyncio.sleep(3)  # a second copy would be on its way by now
            assert received.rcpts == [member["email"]]
        finally:
            server.stop()


async def test_a_delivery_that_keeps_failing_is_marked_failed_and_its_event_dead_lettered(
    stack: Stack, amqp: AbstractRobustConnection, db: AsyncEngine, member: dict[str, Any]
) -> None:
    assert await mails(member["email"], subject="Welcome")
    with lone_notifications_worker(stack, _free_port(), max_attempts=3):  # nothing listens there
        event = PasswordChanged(user_id=member["user_id"], changed_at=datetime.now(UTC))
        message_id = await publish_event(amqp, PASSWORD_CHANGED, event)
        [failed] = await until(lambda: _with_status(db, member["user_id"], "password_changed", "failed"))
        assert failed["attempts"] == 3 and failed["last_error"].startswith("TransientDeliveryError")
        dead = await dead_letters(amqp, f"{PASSWORD_CHANGED_QUEUE}.dlq", expect=1)
        assert message_id in dead


async def _sent(db: AsyncEngine, user_id: str, template: str) -> dict[str, Any] | None:
    found = [d for d in await deliveries(db, user_id) if d["template"] == template and d["status"] == "sent"]
    return found[0] if found else None


async def test_an_erased_user_is_forgotten_and_not_notified(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, db: AsyncEngine, member: dict[str, Any]
) -> None:
    async with db.begin() as conn:
        await conn.execute(
            text("INSERT INTO notifications.preferences (user_id, sms_security, updated_at) VALUES (:u, true, now())"),
            {"u": member["user_id"]},
        )
    async with http.delete(f"/api/users/{member['user_id']}", headers=bearer(member["access_token"])) as resp:
        assert resp.status == 204

    async def forgotten() -> bool:
        async with db.connect() as conn:
            left = await conn.scalar(
                text(
                    "SELECT (SELECT count(*) FROM notifications.preferences WHERE user_id = :u) "
                    "+ (SELECT count(*) FROM notifications.sign_in_fingerprints WHERE user_id = :u)"
                ),
                {"u": member["user_id"]},
            )
        return left == 0

    assert await until(forgotten)
    event = PasswordChanged(user_id=member["user_id"], changed_at=datetime.now(UTC))
    await publish_event(amqp, PASSWORD_CHANGED, event)
    assert await until(lambda: _with_status(db, member["user_id"], "password_changed", "skipped"))
    assert await mails(member["email"], subject="password", within=0) == []


async def _with_status(db: AsyncEngine, user_id: str, template: str, wanted: str) -> list[dict[str, Any]]:
    return [d for d in await deliveries(db, user_id) if d["template"] == template and d["status"] == wanted]


async def test_a_low_stock_event_for_an_unknown_product_still_reaches_the_seller(
    http: aiohttp.ClientSession, amqp: AbstractRobustConnection, admin: dict[str, Any]
) -> None:
    seller = await make_seller(http, admin)
    product_id = uuid.uuid4()
    event = LowStock(
        product_id=product_id, seller_id=seller["user"]["user_id"], available=1, threshold=5, at=datetime.now(UTC)
    )
    await publish_event(amqp, LOW_STOCK, event)
    [mail] = await mails(seller["user"]["email"], subject="Low stock")
    assert str(product_id) in mail["subject"]
