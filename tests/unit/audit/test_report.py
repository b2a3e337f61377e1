"""The audit's inputs (Delivery, gateway records and their dicts), duplicates and the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keylane.audit import ComplianceReport, ConsentChange, audit
from keylane.clock import ManualClock
from keylane.errors import InvalidArgumentError
from keylane.journeys import load_default_journeys
from keylane.web.gateway.ledger import Ledger
from tests.unit.audit.helpers import delivery, local, stop

JOURNEYS = load_default_journeys()
T = local("America/New_York", 2026, 11, 27, 12, 0)


def test_duplicates_count_every_delivery_of_a_key_after_the_first() -> None:
    log = [delivery(T, key="k1"), delivery(T, key="k1"), delivery(T, key="k1"), delivery(T)]
    report = audit(log, JOURNEYS)
    assert report.counts["duplicate"] == 2
    assert report.examples["duplicate"][-1].detail == "idempotency key delivered 3 times"
    # the same content under different keys is no duplicate
    assert audit([delivery(T), delivery(T + timedelta(hours=30))], JOURNEYS).clean


def test_gateway_records_and_their_dicts_are_accepted() -> None:
    # Given a real gateway ledger holding two deliveries, one of them a repeat of a key
    ledger = Ledger(clock=ManualClock(T))
    first = delivery(local("America/New_York", 2026, 11, 27, 22, 0), key="late")
    ledger.submit(first)
    ledger.submit(delivery(T, key="fine"))
    records = ledger.deliveries()
    # Then records, their dicts and the log's delivery records give the same report
    as_records = audit(records, JOURNEYS)
    as_dicts = audit([r.to_dict() for r in records], JOURNEYS)
    as_log = audit([{"type": "delivery", **r.to_dict()} for r in records], JOURNEYS)
    assert as_records == as_dicts == as_log
    assert as_records.counts["quiet_hours"] == 1
    assert as_records.deliveries == 2


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (42, r"^deliveries\[1\]: must be a Delivery, a DeliveryRecord or a mapping"),
        ({"channel": "sms"}, r"^deliveries\[1\]: .*idempotency_key"),
        ({**delivery(T).to_dict(), "sent_at": "yesterday"}, r"^deliveries\[1\]: "),
        ({**delivery(T).to_dict(), "channel": "fax"}, r"^deliveries\[1\]: channel: "),
    ],
)
def test_bad_deliveries_name_their_index(item: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        audit([delivery(T), item], JOURNEYS)


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^journeys: "):
        audit([], object())  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"^consent_changes\[0\]: "):
        audit([], JOURNEYS, [("acme:u1", T, False)])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match=r"^now: "):
        audit([], JOURNEYS, now=datetime(2026, 11, 27))
    with pytest.raises(InvalidArgumentError, match=r"^max_examples: "):
        audit([], JOURNEYS, max_examples=-1)
    with pytest.raises(InvalidArgumentError, match=r"^phones: "):
        audit([], JOURNEYS, phones={"acme:u1": "555"})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("u1", T, False), r"^key: "),
        (("acme:u1", datetime(2026, 11, 27), False), r"^at: "),
        (("acme:u1", T, "no"), r"^opted_in: "),
    ],
)
def test_bad_consent_changes(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        ConsentChange(*args)


def test_consent_change_times_are_kept_in_utc() -> None:
    assert ConsentChange("acme:u1", T, False).at.tzinfo is UTC


def test_report_counts_every_kind_examples_are_bounded_and_json() -> None:
    # Given 12 quiet-hours violations and one after an opt-out
    night = local("America/New_York", 2026, 11, 27, 3, 0)
    log = [
        delivery(night + timedelta(seconds=i), subscriber=f"u{i}", to=f"+1212555{i:04d}")
        for i in range(12)
    ]
    log.append(delivery(T, subscriber="gone"))
    report = audit(log, JOURNEYS, [stop(T, "acme:gone")], now=T, max_examples=5)
    assert report.counts == {
        "quiet_hours": 12, "frequency_cap": 0, "after_opt_out": 1, "duplicate": 0,
    }  # fmt: skip
    assert report.total == 13
    assert not report.clean
    assert report.deliveries == report.marketing == 13
    assert len(report.examples["quiet_hours"]) == 5
    assert report.examples["quiet_hours"][0].sent_at == night  # earliest first
    data = json.loads(report.to_json())
    assert data["total"] == 13
    assert data["clean"] is False
    assert data["audited_at"] == "2026-11-27T17:00:00Z"
    assert data["examples"]["after_opt_out"][0]["key"] == "acme:gone"
    assert "frequency_cap" not in data["examples"]


def test_an_empty_log_is_clean() -> None:
    report = audit([], JOURNEYS)
    assert report.clean
    assert report.total == 0
    assert isinstance(report, ComplianceReport)
    assert json.loads(report.to_json())["counts"]["duplicate"] == 0
