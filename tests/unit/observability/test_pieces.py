"""Unit tests of the observability's own logic: ownership, redaction, outcome words, the ring."""

from __future__ import annotations

import logging

import pytest

from keylane.journeys.decision import ReasonCode
from keylane.observability.decisions import DecisionLog
from keylane.observability.metrics import _DECISION_OUTCOMES, dispatch_outcome
from keylane.observability.ownership import parse_subscription
from keylane.observability.redact import RedactingFilter, redact
from keylane.runtime import DecisionOutcome, DecisionRecord


def _view(ranges: dict[str, list[list[int]]], draining: dict[str, list[int]] | None = None):
    stats = {
        "consumers": [
            {
                "consumerName": name,
                "keyHashRangeArrays": spans,
                "drainingHashes": [
                    {"hash": h, "unackedMessages": 2, "blockedAttempts": 1}
                    for h in (draining or {}).get(name, [])
                ],
                "unackedMessages": 3,
                "availablePermits": 7,
            }
            for name, spans in ranges.items()
        ]
    }
    return parse_subscription(stats, topic="t", subscription="s", source="memory")


def test_the_owner_of_a_slot_is_the_consumer_whose_range_holds_it():
    view = _view({"a": [[1, 10], [21, 30]], "b": [[11, 20], [31, 65535]]}, {"b": [15]})
    assert [view.owner_of(s) for s in (1, 10, 11, 20, 21, 30, 31, 65535)] == [
        "a", "a", "b", "b", "a", "a", "b", "b",
    ]  # fmt: skip
    assert view.owner_of(0) is None
    assert view.consistent is True
    assert view.consumers[0].slots == 20
    drain = view.draining_of(15)
    assert drain is not None
    assert (drain.unacked, drain.blocked_attempts) == (2, 1)
    assert view.draining_of(16) is None


def test_ranges_from_zero_mean_range_slots_and_garbage_is_ignored():
    view = _view({"a": [[0, 32767], [1, "x"], "bad"], "b": [[32768, 65535]]})  # type: ignore[list-item]
    assert view.consistent is False
    assert view.consumers[0].ranges == ((0, 32767),)
    empty = parse_subscription({"consumers": "nope"}, topic="t", subscription="s", source="x")
    assert empty.consumers == ()
    assert empty.owner_of(5) is None


@pytest.mark.parametrize(
    ("word", "label"),
    [
        ("sent", "sent"),
        ("failed_permanent", "failed"),
        ("unknown", "unknown"),
        ("retry", "retry"),
        ("deferred_quiet_hours", "deferred"),
        ("deferred_frequency_cap", "deferred"),
        ("skipped_frequency_cap", "capped"),
        ("skipped_suppressed", "suppressed"),
        ("skipped_stale", "stale"),
        ("skipped_no_state", "skipped"),
        ("cancelled", "other"),
    ],
)
def test_relay_words_become_low_cardinality_outcomes(word: str, label: str):
    assert dispatch_outcome(word) == label


def test_redact_masks_tokens_secrets_and_phone_numbers():
    text = "GET /v1/x?token=abc123&b=1 Authorization: Bearer tok.en-1 to +14155550123 id s3cr3t!"
    out = redact(text, ["s3cr3t!"])
    assert "abc123" not in out
    assert "tok.en-1" not in out
    assert "s3cr3t!" not in out
    assert "+14155550123" not in out
    assert "0123" in out  # the last 4 digits stay, to tell numbers apart
    assert "b=1" in out
    assert redact("order +12 of 3") == "order +12 of 3"  # not a phone number


def test_the_filter_masks_arguments_and_exceptions():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "to %s", ("+14155550123",), None)
    try:
        raise ValueError("Bearer sekrit-token")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter(["sekrit-token"]).filter(record) is True
    assert "+14155550123" not in record.getMessage()
    assert record.exc_text is not None
    assert "sekrit-token" not in record.exc_text


def _record(key: str, n: int, outcome: DecisionOutcome = DecisionOutcome.COMMITTED):
    return DecisionRecord(
        key=key, consumer="c-0", message_id=f"m{n}", seq=n, event_id=f"e{n}", attempt=1,
        outcome=outcome, start=0.0, end=0.5, loaded=None, committed=None, read_version=None,
        version=n, event_type=None, occurred_at=None, decision=None, now=None,
    )  # fmt: skip


def test_the_ring_is_bounded_per_key_and_in_keys():
    log = DecisionLog(per_key=3, max_keys=2, recent=4)
    for n in range(5):
        log.observe(_record("a", n))
    assert [e.event_id for e in log.decisions_of("a")] == ["e2", "e3", "e4"]
    log.observe(_record("b", 9))
    log.observe(_record("a", 10))  # "a" is the most recent again
    log.observe(_record("c", 11))  # forgets "b", the least recently active
    assert sorted(log) == ["a", "c"]
    assert log.decisions_of("b") == []
    assert [e.event_id for e in log.recent_decisions()] == ["e4", "e9", "e10", "e11"]
    log.observe(_record("d", 12, DecisionOutcome.POISON))
    assert [e.event_id for e in log.poison()] == ["e12"]
    assert len(log.take_durations()) == 8  # committed ones only, then emptied
    assert log.take_durations() == []


async def test_a_feed_gets_its_key_only_and_a_full_one_counts_its_losses():
    log = DecisionLog(feed_queue=2)
    mine = log.subscribe("a")
    everything = log.subscribe()
    for n in range(3):
        log.observe(_record("a", n))
    log.observe(_record("b", 3))
    assert mine.queue.qsize() == 2
    assert mine.lost == 1
    assert everything.lost == 2
    log.unsubscribe(mine)
    log.observe(_record("a", 4))
    assert mine.lost == 1
    assert log.feeds == 1


def test_every_send_skip_or_cancellation_reason_has_a_sends_outcome() -> None:
    # keylane_sends_total{stage="decision"} counts a send's fate by reason; a new skip or
    # cancellation reason without a label would silently vanish from the metric.
    fates = [c for c in ReasonCode if c.value.startswith(("skipped_", "cancelled_"))]
    assert ReasonCode.CANCELLED_PENDING_FULL in fates
    assert [c for c in fates if c not in _DECISION_OUTCOMES] == []
    assert _DECISION_OUTCOMES[ReasonCode.CANCELLED_PENDING_FULL] == "cancelled"
