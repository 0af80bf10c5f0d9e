"""The payment sandbox's ledger (sandboxes/payment_sandbox.py) survives a restart: its journal
replays to the same payment intents, refunds, stored answers and failure counts; a journal of
the earlier home-made protocol is set aside, not misread."""

from pathlib import Path

from sandboxes.payment_sandbox import Intent, Ledger, Refund


def _intent(intent_id: str, order_id: str, status: str) -> Intent:
    return Intent(
        id=intent_id,
        amount=500,
        currency="usd",
        capture_method="manual",
        status=status,
        metadata={"order_id": order_id},
        created=1,
        token="tok_visa",
    )


def test_the_journal_replays_to_the_same_ledger(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    ledger = Ledger(path)
    intent = _intent("pi_1", "o1", "requires_capture")
    ledger.keep(intent)
    declined = _intent("pi_2", "o2", "requires_payment_method")
    declined.last_payment_error = {"code": "card_declined"}
    ledger.keep(declined)
    intent.amount_received, intent.captures = 500, 1
    intent.move("succeeded")
    ledger.keep(intent)  # the same intent again, moved: the last line wins
    intent.amount_refunded, intent.refunds = 200, 1
    ledger.keep_refund(Refund(id="re_1", amount=200, currency="usd", payment_intent="pi_1", charge="ch_1", created=2))
    ledger.keep(intent)
    ledger.keep_response("k1", {"scope": "capture", "fingerprint": "f", "status": 200, "body": {"id": "pi_1"}})
    ledger.keep_failures("k2", 2)

    again = Ledger(path)
    assert [i.agora_status() for i in again.for_order("o1")] == ["captured"]
    assert [i.agora_status() for i in again.for_order("o2")] == ["declined"]
    assert again.intents["pi_1"].captures == 1 and again.refunds["re_1"].amount == 200
    assert again.summary() == ledger.summary()
    assert again.summary()["orders"]["o1"]["net_captured"] == 300
    assert again.responses == ledger.responses and again.failures == {"k2": 2}

    again.reset()
    assert Ledger(path).intents == {}


def test_a_line_cut_short_by_a_crash_is_dropped_and_the_journal_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    Ledger(path).keep_failures("k1", 1)
    with path.open("a") as journal:
        journal.write('{"failures": ["k2", ')  # the process died here
    ledger = Ledger(path)
    assert ledger.failures == {"k1": 1}
    ledger.keep_failures("k3", 3)
    assert Ledger(path).failures == {"k1": 1, "k3": 3}


def test_a_journal_of_the_earlier_protocol_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('{"authorization": {"id": "auth_1", "order_id": "o1", "status": "authorized"}}\n')
    assert Ledger(path).intents == {}
    assert not path.exists() and (tmp_path / "journal.jsonl.pre-stripe").exists()
    Ledger(path).keep_failures("k", 1)
    assert Ledger(path).failures == {"k": 1}
