"""The embedded gateway's framework-free core: the ledger, its journal and the stats."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from keylane.clock import ManualClock
from keylane.errors import InvalidArgumentError
from keylane.web.gateway import FaultKind, Ledger
from keylane.web.gateway.journal import Journal
from tests.unit.providers.deliveries import SENT_AT, make_delivery

START = dt.datetime(2026, 11, 27, 15, 0, tzinfo=dt.UTC)


def ledger(journal: Journal | None = None) -> Ledger:
    return Ledger(journal, ManualClock(START))


def test_first_submit_delivers_with_201():
    book = ledger()
    answer = book.submit(make_delivery(1))
    body = json.loads(answer.body)
    assert (answer.status, answer.replayed) == (201, False)
    assert body["status"] == "delivered"
    assert body["id"] == "msg_00000001"
    assert body["idempotency_key"] == make_delivery(1).idempotency_key
    assert body["received_at"] == "2026-11-27T15:00:00Z"
    assert len(book) == 1


def test_repeat_answers_like_the_first_and_does_not_deliver():
    book = ledger()
    first = book.submit(make_delivery(1))
    again = book.submit(make_delivery(1, sent_at=SENT_AT + dt.timedelta(minutes=1)))
    assert (again.status, again.body, again.replayed) == (first.status, first.body, True)
    assert len(book) == 1
    assert book.deliveries()[0].delivery.sent_at == SENT_AT
    stats = book.stats()
    assert (stats.deliveries, stats.repeated_attempts, stats.duplicate_deliveries) == (1, 1, 0)
    assert stats.by_channel["sms"].repeated_attempts == 1


def test_reuse_with_a_different_body_is_409_and_not_saved():
    book = ledger()
    book.submit(make_delivery(1))
    conflict = book.submit(make_delivery(1, body="changed", message_class="transactional"))
    body = json.loads(conflict.body)
    assert conflict.status == 409
    assert body["error"] == "idempotency_key_reused"
    assert body["field"] == "idempotency_key"
    assert "differs in: body, message_class" in body["reason"]
    # the original is still what replays answer with
    assert book.submit(make_delivery(1)).replayed is True
    assert book.stats().conflicts == 1
    assert len(book) == 1


def test_phone_view_and_paging():
    book = ledger()
    for n in (1, 2, 1, 3):
        book.submit(make_delivery(n, idempotency_key=f"key-{len(book)}"))
    to_one = [r.delivery.idempotency_key for r in book.messages_to(make_delivery(1).to)]
    assert to_one == ["key-0", "key-2"]
    assert book.messages_to("+19999999999") == []
    assert [r.seq for r in book.deliveries(after=1, limit=2)] == [2, 3]
    assert [r.seq for r in book.deliveries(after=3)] == [4]
    record = book.deliveries()[0].to_dict()
    assert record["to"] == make_delivery(1).to
    assert record["sent_at"] == "2026-11-27T14:30:00Z"


def test_same_content_under_another_key_is_counted_apart_from_duplicates():
    book = ledger()
    book.submit(make_delivery(1, idempotency_key="run-1"))
    book.submit(make_delivery(1, idempotency_key="run-2"))  # same step, same text, new key
    book.submit(make_delivery(1, idempotency_key="run-3", body="other text"))
    stats = book.stats()
    assert stats.duplicate_deliveries == 0
    assert stats.same_content_deliveries == 1


def test_faults_and_rejections_are_counted():
    book = ledger()
    book.note_fault(FaultKind.DOWN, "k")
    book.note_fault(FaultKind.DOWN, None)
    book.note_fault(FaultKind.ERROR, "k")
    book.note_rejected()
    stats = book.stats()
    assert stats.injected_failures["down"] == 2
    assert stats.injected_failures["error"] == 1
    assert stats.injected_failures["timeout_after_delivery"] == 0
    assert stats.rejected == 1
    assert stats.to_dict()["injected_failures"]["down"] == 2


def test_journal_rebuilds_the_ledger(tmp_path):
    path = tmp_path / "gateway.jsonl"
    journal = Journal(path)
    book = ledger(journal)
    book.load(journal.open())
    first = book.submit(make_delivery(1))
    book.submit(make_delivery(1))
    book.submit(make_delivery(1, body="changed"))
    book.submit(make_delivery(2, channel="email", to="b@example.com"))
    book.note_fault(FaultKind.ERROR, None)
    journal.close()
    # When a new ledger is built from the same file
    journal = Journal(path)
    rebuilt = ledger(journal)
    rebuilt.load(journal.open())
    # Then it answers a repeat exactly as the first time and does not deliver it again
    again = rebuilt.submit(make_delivery(1))
    assert (again.body, again.replayed) == (first.body, True)
    before, after = book.stats(), rebuilt.stats()
    assert after.deliveries == before.deliveries == 2
    assert after.repeated_attempts == before.repeated_attempts + 1 == 2
    assert after.conflicts == before.conflicts == 1
    assert after.injected_failures == before.injected_failures
    assert after.injected_failures["error"] == 1
    assert after.duplicate_deliveries == 0
    assert rebuilt.stats().by_channel["email"].deliveries == 1
    assert rebuilt.deliveries()[0].received_at == START
    journal.close()


def test_a_log_with_a_key_delivered_twice_shows_a_duplicate(tmp_path):
    # Given a log written by something that did not keep the ledger (two records, one key)
    record = {"type": "delivery", "seq": 1, "id": "msg_00000001", "status": "delivered"}
    record |= {"received_at": "2026-11-27T15:00:00Z", **make_delivery(1).to_dict()}
    second = record | {"seq": 2, "id": "msg_00000002"}
    path = tmp_path / "gateway.jsonl"
    path.write_text(json.dumps(record) + "\n" + json.dumps(second) + "\n")
    journal = Journal(path)
    book = ledger(journal)
    book.load(journal.open())
    assert book.stats().duplicate_deliveries == 1
    assert json.loads(book.submit(make_delivery(1)).body)["id"] == "msg_00000001"
    journal.close()


def test_torn_last_line_is_dropped_and_the_file_truncated(tmp_path):
    path = tmp_path / "gateway.jsonl"
    journal = Journal(path)
    book = ledger(journal)
    book.load(journal.open())
    book.submit(make_delivery(1))
    journal.close()
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"type": "deliv')  # the crash came mid-write
    journal = Journal(path)
    assert len(journal.open()) == 1
    journal.append({"type": "fault", "kind": "down", "idempotency_key": None, "received_at": "x"})
    journal.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[1])["type"] == "fault"


def test_last_record_without_newline_is_kept(tmp_path):
    path = tmp_path / "gateway.jsonl"
    path.write_bytes(b'{"type": "fault", "kind": "down", "idempotency_key": null}')
    journal = Journal(path)
    assert len(journal.open()) == 1
    journal.append({"type": "fault", "kind": "error", "idempotency_key": None})
    journal.close()
    assert len(path.read_bytes().splitlines()) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"type": "delivery"\n{"type": "fault"}\n', "line 1: not JSON"),
        (b"[1, 2]\n", "line 1: not a gateway record"),
    ],
)
def test_corrupt_log_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "gateway.jsonl"
    path.write_bytes(content)
    with pytest.raises(InvalidArgumentError, match=message):
        Journal(path).open()
    # the lock was released: the file can be opened once fixed
    path.write_bytes(b"")
    journal = Journal(path)
    assert journal.open() == []
    journal.close()


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"type": "teleport"}, "record 1: unknown record type 'teleport'"),
        ({"type": "replay"}, "record 1:"),
        ({"type": "fault", "kind": "meteor"}, "record 1:"),
        ({"type": "delivery", "seq": 1, "id": "m", "received_at": "2026-11-27T15:00:00Z"}, "1:"),
    ],
)
def test_bad_records_are_named(record, message):
    with pytest.raises(InvalidArgumentError, match=message):
        ledger().load([record])


def test_a_second_gateway_on_one_log_is_refused(tmp_path):
    path = tmp_path / "gateway.jsonl"
    first = Journal(path)
    first.open()
    with pytest.raises(InvalidArgumentError, match="in use by another gateway"):
        Journal(path).open()
    first.close()
    second = Journal(path)
    assert second.open() == []
    second.close()


def test_journal_misuse():
    journal = Journal("/nonexistent-dir-for-keylane/x/gateway.jsonl")
    with pytest.raises(InvalidArgumentError, match="not open"):
        journal.append({"type": "fault"})
