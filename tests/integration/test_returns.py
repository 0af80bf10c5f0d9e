"""Returns and partial refunds (issue 18 point 6): a member returns one of two lines of a
delivered order; its seller approves, receives (the goods back on sale) and refunds it;
the payment provider's ledger shows exactly that line's amount refunded."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from harness.accounts import bearer, login, make_seller, register
from tests.integration.test_notifications import mails
from tests.orders_support import ADDRESS, confirmed_and_captured, ledger, place_body
from tests.returns_support import eventually, request_return, two_line_order


async def _stock(http: aiohttp.ClientSession, product_id: str) -> int:
    async with http.get(f"/api/inventory/{product_id}") as resp:
        assert resp.status == 200, await resp.text()
        stock: int = (await resp.json())["stock"]
        return stock


def _cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


def _paid(line: dict[str, Any], order: dict[str, Any]) -> int:
    """What a whole line cost the customer, in cents: its total less its discount, plus its
    tax when that was added on top."""
    tax = 0 if order["prices_include_tax"] else _cents(line["tax"])
    return _cents(line["line_total"]) - _cents(line["discount"]) + tax


async def test_a_return_of_one_of_two_lines_is_refunded_partially_and_its_goods_go_back_on_sale(
    http: aiohttp.ClientSession, admin: dict[str, Any]
) -> None:
    made = await two_line_order(http, admin)
    order, member, shirts, caps = made["order"], made["member"], made["shirts"], made["caps"]
    order_id, shirt_id = order["order_id"], made["shirt"]["product_id"]
    shirt_line = next(x for x in order["items"] if x["product_id"] == shirt_id)
    expected = _paid(shirt_line, order)
    assert 0 < expected < _cents(order["total_amount"])
    stock_before = await _stock(http, shirt_id)

    # The member asks to return the two shirts; the same Idempotency-Key finds the same return.
    key = str(uuid.uuid4())
    status, ret = await request_return(http, member, order_id, [{"product_id": shirt_id, "quantity": 2}], key)
    assert status == 201, ret
    assert ret["status"] == "requested" and ret["reason"] == "Does not fit"
    assert [(x["product_id"], x["quantity"], _cents(x["refund"])) for x in ret["items"]] == [(shirt_id, 2, expected)]
    status, again = await request_return(http, member, order_id, [{"product_id": shirt_id, "quantity": 2}], key)
    assert status == 201 and again["return_id"] == ret["return_id"]
    url = f"/api/returns/{ret['return_id']}"

    # The cap's seller has no line in it, another member is not its customer: it does not exist for them.
    other_user = await register(http)
    other = await login(http, other_user["email"], other_user["password"])
    for stranger in (caps, other):
        async with http.get(url, headers=bearer(stranger["access_token"])) as resp:
            assert resp.status == 404, await resp.text()
        async with http.put(url, json={"status": "approved"}, headers=bearer(stranger["access_token"])) as resp:
            assert resp.status == 404, await resp.text()
    # The customer may see it but not approve it.
    async with http.put(url, json={"status": "approved"}, headers=bearer(member["access_token"])) as resp:
        assert resp.status == 403, await resp.text()
    async with http.get("/api/returns", params={"status": "requested"}, headers=bearer(shirts["access_token"])) as resp:
        assert resp.status == 200 and ret["return_id"] in [r["return_id"] for r in (await resp.json())["items"]]
    async with http.get("/api/returns", headers=bearer(caps["access_token"])) as resp:
        assert resp.status == 200 and ret["return_id"] not in [r["return_id"] for r in (await resp.json())["items"]]

    # Not received yet: nothing to refund.
    async with http.post(f"{url}/refund", headers=bearer(shirts["access_token"])) as resp:
        assert resp.status == 409, await resp.text()

    auth = bearer(shirts["access_token"])
    async with http.put(url, json={"status": "approved", "note": "Send them back"}, headers=auth) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "approved"
    # The customer is told what to send back, with the seller's note.
    [approved] = await mails(member["email"], subject="return was approved")
    assert f"- {made['shirt']['name']}: 2" in approved["text"] and "Send them back" in approved["text"]
    async with http.put(url, json={"status": "received", "resaleable": True}, headers=auth) as resp:
        assert resp.status == 200, await resp.text()
        received = await resp.json()
    assert received["status"] == "received" and received["items"][0]["resaleable"] is True
    # Received again (a retry) is not an error, and puts nothing back twice.
    async with http.put(url, json={"status": "received"}, headers=auth) as resp:
        assert resp.status == 200, await resp.text()
    await eventually(http, shirts, f"/api/inventory/{shirt_id}", lambda s: s["stock"] == stock_before + 2)

    # Refunded: pending until the provider has refunded it; a repeat is the same refund.
    async with http.post(f"{url}/refund", json={}, headers=auth) as resp:
        assert resp.status == 202, await resp.text()
        refund = await resp.json()
    assert refund["status"] in ("pending", "refunded") and _cents(refund["amount"]) == expected
    assert refund["return_id"] == ret["return_id"] and _cents(refund["shipping"]) == 0
    async with http.post(f"{url}/refund", json={}, headers=auth) as resp:
        assert resp.status == 202 and (await resp.json())["refund_id"] == refund["refund_id"]

    final = await eventually(
        http, member, f"/api/orders/{order_id}", lambda o: [r["status"] for r in o["refunds"]] == ["refunded"]
    )
    assert final["status"] == "delivered" and _cents(final["refunded_total"]) == expected
    assert [r["status"] for r in final["returns"]] == ["refunded"]
    assert final["returns"][0]["refunded_at"] is not None
    books = await ledger(order_id)
    assert books["captured"] == _cents(order["total_amount"]) and books["refunded"] == expected, books
    assert books["refunds"] == 1
    # ...and is told of the refund, for that line's amount.
    [refunded] = await mails(member["email"], subject="refund")
    assert f"${expected // 100}.{expected % 100:02d}" in refunded["text"] and order_id in refunded["text"]

    # Asked again once refunded: the same refund, and nothing more at the provider.
    async with http.post(f"{url}/refund", json={}, headers=auth) as resp:
        assert resp.status == 202 and (await resp.json())["refund_id"] == refund["refund_id"]
    assert (await ledger(order_id))["refunded"] == expected
    # Those shirts are all returned: none is left to return.
    status, refused = await request_return(http, member, order_id, [{"product_id": shirt_id, "quantity": 1}])
    assert status == 422 and refused["errors"][0]["field"] == "items.0.quantity", refused
    await stock_stays(http, shirt_id, stock_before + 2)


async def stock_stays(http: aiohttp.ClientSession, product_id: str, stock: int) -> None:
    assert await _stock(http, product_id) == stock


async def test_what_cannot_be_returned_or_refunded_is_refused(
    http: aiohttp.ClientSession, admin: dict[str, Any], db: AsyncEngine
) -> None:
    made = await two_line_order(http, admin)
    order, member, shirts, caps = made["order"], made["member"], made["shirts"], made["caps"]
    order_id, shirt_id, cap_id = order["order_id"], made["shirt"]["product_id"], made["cap"]["product_id"]

    # Lines the order does not have, more than it has, nothing, or no reason: 422.
    for items, field in (
        ([{"product_id": str(uuid.uuid4()), "quantity": 1}], "items.0.product_id"),
        ([{"product_id": shirt_id, "quantity": 3}], "items.0.quantity"),
        ([{"product_id": shirt_id, "quantity": 1}, {"product_id": shirt_id, "quantity": 2}], "items.1.quantity"),
        ([], "items"),
    ):
        status, refused = await request_return(http, member, order_id, items)
        assert status == 422 and refused["errors"][0]["field"] == field, (items, refused)
    async with http.post(
        f"/api/orders/{order_id}/returns",
        json={"items": [{"product_id": shirt_id, "quantity": 1}]},
        headers=bearer(member["access_token"]),
    ) as resp:
        assert resp.status == 422
    # Another member, and a seller with no line in the order: it does not exist for them.
    other_user = await register(http)
    other = await login(http, other_user["email"], other_user["password"])
    stranger_seller = await make_seller(http, admin)
    for stranger in (other, stranger_seller):
        status, _ = await request_return(http, stranger, order_id, [{"product_id": shirt_id, "quantity": 1}])
        assert status == 404
        async with http.get(f"/api/orders/{order_id}/returns", headers=bearer(stranger["access_token"])) as resp:
            assert resp.status == 404

    # A refused return (a note is required to refuse) cannot be refunded, and frees its goods.
    status, cap_return = await request_return(http, member, order_id, [{"product_id": cap_id, "quantity": 1}])
    assert status == 201, cap_return
    url, auth = f"/api/returns/{cap_return['return_id']}", bearer(caps["access_token"])
    async with http.put(url, json={"status": "refused"}, headers=auth) as resp:
        assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "note"
    async with http.put(url, json={"status": "refused", "note": "Worn"}, headers=auth) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["note"] == "Worn"
    async with http.post(f"{url}/refund", json={}, headers=auth) as resp:
        assert resp.status == 409, await resp.text()
    async with http.put(url, json={"status": "received"}, headers=auth) as resp:
        assert resp.status == 409, await resp.text()
    status, _ = await request_return(http, member, order_id, [{"product_id": cap_id, "quantity": 1}])
    assert status == 201
    # A seller handles a return of their own lines only (both sellers' lines: the admin).
    status, both = await request_return(http, member, order_id, [{"product_id": shirt_id, "quantity": 1}])
    assert status == 201
    async with http.put(
        f"/api/returns/{both['return_id']}", json={"status": "approved"}, headers=bearer(caps["access_token"])
    ) as resp:
        assert resp.status == 404  # the cap's seller has no line in this one
    async with http.put(
        f"/api/returns/{both['return_id']}", json={"status": "approved"}, headers=bearer(shirts["access_token"])
    ) as resp:
        assert resp.status == 200

    # An admin refunds directly, never more than is left of what was captured.
    refunds, admin_auth = f"/api/orders/{order_id}/refunds", bearer(admin["access_token"])
    async with http.post(refunds, json={"amount": "2.50", "reason": "Sorry"}, headers=admin_auth) as resp:
        assert resp.status == 422, await resp.text()  # without an Idempotency-Key a retry could refund twice
        assert (await resp.json())["errors"][0]["field"] == "Idempotency-Key"
    admin_auth = {**admin_auth, "Idempotency-Key": str(uuid.uuid4())}
    async with http.post(refunds, json={"amount": "1000.00", "reason": "Sorry"}, headers=admin_auth) as resp:
        assert resp.status == 409, await resp.text()
    async with http.post(
        refunds,
        json={"amount": "2.50", "reason": "Sorry"},
        headers={**bearer(caps["access_token"]), "Idempotency-Key": str(uuid.uuid4())},
    ) as resp:
        assert resp.status == 403
    key = {"Idempotency-Key": str(uuid.uuid4())}  # another refund than the refused one
    async with http.post(refunds, json={"amount": "2.50", "reason": "Late"}, headers={**admin_auth, **key}) as resp:
        assert resp.status == 202, await resp.text()
        goodwill = await resp.json()
    async with http.post(refunds, json={"amount": "2.50", "reason": "Late"}, headers={**admin_auth, **key}) as resp:
        assert resp.status == 202 and (await resp.json())["refund_id"] == goodwill["refund_id"]
    await eventually(http, member, f"/api/orders/{order_id}", lambda o: o["refunded_total"] == "2.50")
    assert (await ledger(order_id))["refunded"] == 250

    # Past the return window (30 days after delivery): as if it had been delivered 31 days ago.
    async with db.begin() as conn:
        await conn.execute(
            text(
                "UPDATE orders.order_history SET at = at - interval '31 days' "
                "WHERE order_id = :order_id AND status = 'delivered'"
            ),
            {"order_id": order_id},
        )
    status, late = await request_return(http, member, order_id, [{"product_id": shirt_id, "quantity": 1}])
    assert status == 422 and "window" in late["detail"], late

    # An order not delivered has nothing to return.
    status, fresh = await place_body(
        http,
        member,
        {"items": [{"product_id": shirt_id, "quantity": 1}], "shipping_address": ADDRESS, "payment_token": "tok_visa"},
    )
    assert status == 202
    await confirmed_and_captured(http, member, fresh["order_id"])
    status, refused = await request_return(http, member, fresh["order_id"], [{"product_id": shirt_id, "quantity": 1}])
    assert status == 422 and refused["errors"][0]["field"] == "order_id", refused

    # The member's export holds their returns; once they are erased, the returns stay (for
    # the books) without the customer's words.
    async with http.get(f"/api/users/{member['user_id']}/export", headers=bearer(member["access_token"])) as resp:
        assert resp.status == 200
        assert cap_return["return_id"] in await resp.text()
    async with http.delete(f"/api/users/{member['user_id']}", headers=bearer(member["access_token"])) as resp:
        assert resp.status == 204
    erased = await eventually(
        http, admin, f"/api/returns/{cap_return['return_id']}", lambda r: r["reason"] != "Does not fit"
    )
    assert erased["reason"] == "(erased)" and erased["status"] == "refused"
