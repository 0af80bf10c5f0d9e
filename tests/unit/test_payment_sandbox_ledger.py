"""The payment sandbox's ledger (sandboxes/payment_sandbox.py) survives a restart: its journal
replays to the same authorizations, stored answers and failure counts."""

import json
from dataclasses import asdict
from pathlib import Path

from sandboxes.payment_sandbox import Authorization, Ledger


def test_the_journal_replays_to_the_same_ledger(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    ledger = Ledger(path)
    auth = Authorization(id="auth_1", order_id="o1", amount=500, currency="USD", token="tok_visa", status="authorized")
    ledger.keep(auth)
    ledger.keep(
        Authorization(id="auth_2", order_id="o2", amount=700, currency="USD", token="tok_visa", status="declined")
    )
    auth.amount_captured, auth.captures = 500, 1
    auth.move("captured")
    ledger.keep(auth)  # the same authorization again, moved: the last line wins
    ledger.keep_response("k1", {"scope": "capture", "fingerprint": "f", "status": 200, "body": {"id": "auth_1"}})
    ledger.keep_failures("k2", 2)

    again = Ledger(path)
    assert [a.status for a in again.for_order("o1")] == ["captured"]
    assert again.authorizations["auth_1"].captures == 1
    assert again.summary() == ledger.summary()
    assert again.responses == ledger.responses and again.failures == {"k2": 2}

    again.reset()
    assert Ledger(path).authorizations == {}


def test_a_line_cut_short_by_a_crash_is_dropped_and_the_journal_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    Ledger(path).keep_failures("k1", 1)
    with path.open("a") as journal:
        journal.write('{"failures": ["k2", ')  # the process died here
    ledger = Ledger(path)
    assert ledger.failures == {"k1": 1}
    ledger.keep_failures("k3", 3)
    assert Ledger(path).failures == {"k1": 1, "k3": 3}


def test_the_whole_file_ledger_of_before_is_taken_over(tmp_path: Path) -> None:
    auth = Authorization(id="auth_1", order_id="o1", amount=500, currency="USD", token="tok_visa", status="authorized")
    (tmp_path / "ledger.json").write_text(
        json.dumps({"authorizations": [asdict(auth)], "responses": {}, "failures": {"k": 1}})
    )
    path = tmp_path / "journal.jsonl"
    Ledger(path)
    again = Ledger(path)
    assert again.for_order("o1") == [auth] and again.failures == {"k": 1}
