"""The chaos run's verdict (each invariant counts what it must) and the consent replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keylane.audit import ConsentChange
from keylane.check import Attempt, History, Published
from keylane.journeys import Event, load_default_journeys, parse_event
from keylane.service.chaos.consent import Replay, replay_consent
from keylane.service.chaos.verify import Evidence, verify

JOURNEYS = load_default_journeys()
START = datetime(2026, 11, 27, 16, tzinfo=UTC)


def _commit(key: str, seq: int, version: int, at: float, consumer: str = "w1-0") -> Attempt:
    return Attempt(
        key=key, consumer=consumer, message_id=f"(1,{seq},-1,-1)", seq=seq, attempt=1,
        start=at, end=at + 0.01, outcome="ok", event_id=f"e{seq}", read_version=version - 1,
        version=version, loaded=at, committed=at + 0.01,
    )  # fmt: skip


def _evidence(history: History, **changes: object) -> Evidence:
    values: dict[str, object] = {
        "history": history,
        "poison": (),
        "dead_letters": {},
        "deliveries": [],
        "gateway_duplicates": 0,
        "sent_keys": frozenset(),
        "consent": Replay((), 0, 0, 0),
        "journeys": JOURNEYS,
    }
    values.update(changes)
    return Evidence(**values)  # type: ignore[arg-type]


def _clean() -> History:
    commits = [_commit("acme:u1", 1, 1, 1.0), _commit("acme:u1", 2, 2, 2.0)]
    published = [Published("acme:u1", 1, "(1,1,-1,-1)"), Published("acme:u1", 2, "(1,2,-1,-1)")]
    return History(attempts=commits, published=published)


def _delivery(key: str) -> dict[str, object]:
    return {
        "type": "delivery", "idempotency_key": key, "channel": "sms", "to": "+14155550100",
        "brand_id": "acme", "subscriber_id": "u1", "journey": "system", "step": "help_reply",
        "message_class": "transactional", "body": "help", "sent_at": "2026-11-27T16:00:00Z",
        "subscriber_timezone": None,
    }  # fmt: skip


def _counts(evidence: Evidence) -> dict[str, int]:
    return {inv.name: inv.violations for inv in verify(evidence).invariants}


def test_a_clean_run_counts_zero_everywhere() -> None:
    verification = verify(_evidence(_clean()))
    assert verification.ok
    assert set(_counts(_evidence(_clean())).values()) == {0}
    assert (verification.published, verification.decided) == (2, 2)


def test_an_undecided_event_is_lost_unless_dead_lettered_with_a_reason() -> None:
    history = _clean()
    history.published.append(Published("acme:u2", 3, "(1,3,-1,-1)"))
    assert _counts(_evidence(history))["lost events"] == 1
    dead = {"(1,3,-1,-1)": "RetriesExhausted: 3 attempts"}
    assert _counts(_evidence(history, dead_letters=dead))["lost events"] == 0
    assert _counts(_evidence(history, dead_letters={"(1,3,-1,-1)": ""}))["lost events"] == 1


def test_a_poison_event_must_be_dead_lettered() -> None:
    evidence = _evidence(_clean(), poison=("(1,9,-1,-1)",))
    assert _counts(evidence)["lost events"] == 1
    dead = {"(1,9,-1,-1)": "PoisonEventError: not a valid event"}
    clean = _counts(_evidence(_clean(), poison=("(1,9,-1,-1)",), dead_letters=dead))
    assert clean == dict.fromkeys(clean, 0)


def test_overlapping_commits_and_a_double_decision_are_exclusivity_violations() -> None:
    history = _clean()
    overlapping = _commit("acme:u1", 2, 3, 2.005, consumer="w2-0")  # e2 again, inside e2's window
    history.attempts.append(overlapping)
    counts = _counts(_evidence(history))
    assert counts["committed exclusivity violations"] >= 2  # an overlap and a double decision


def test_a_key_delivered_twice_is_a_duplicate_whichever_count_sees_it() -> None:
    deliveries = [_delivery("k1"), _delivery("k1")]
    assert _counts(_evidence(_clean(), deliveries=deliveries))["duplicate deliveries"] == 1
    stats_only = _evidence(_clean(), deliveries=[_delivery("k1")], gateway_duplicates=2)
    assert _counts(stats_only)["duplicate deliveries"] == 2


def test_a_sent_row_the_gateway_never_delivered_is_lost() -> None:
    evidence = _evidence(_clean(), deliveries=[_delivery("k1")], sent_keys=frozenset({"k1", "k2"}))
    assert _counts(evidence)["SENT rows never delivered"] == 1


def _events() -> list[Event]:
    base = {"brand_id": "acme", "subscriber_id": "u1"}
    raw = [
        ("e1", "subscribed", {"phone": "+14155550100", "consent": {"sms": True}}),
        ("e2", "sms_received", {"text": "STOP"}),
        ("e3", "sms_received", {"text": "STOP"}),  # already out: no change
        ("e4", "sms_received", {"text": "START"}),
    ]
    return [
        parse_event(
            {
                **base,
                "event_id": eid,
                "type": kind,
                "properties": props,
                "occurred_at": (START + timedelta(minutes=i)).isoformat(),
            }
        )
        for i, (eid, kind, props) in enumerate(raw)
    ]


def _dating(monotonic: float) -> datetime:
    return START + timedelta(seconds=monotonic * 60)


def test_consent_changes_are_replayed_in_version_order_and_dated_at_the_commit() -> None:
    events = {e.event_id: e for e in _events()}
    # Recorded out of order, by two workers
    attempts = [_commit("acme:u1", seq, seq, 10.0 * seq, f"w{seq % 2}-0") for seq in (4, 2, 1, 3)]
    replay = replay_consent(attempts, events, JOURNEYS, _dating)
    assert (replay.keys, replay.decisions, replay.unknown_events) == (1, 4, 0)
    # e1 subscribes (not a change of consent), e2 opts out, e3 is a STOP while out (no
    # change), e4 opts in again. An opt-out counts from its commit's return (loaded + 0.01),
    # an opt-in from its load
    assert [(c.opted_in, c.at) for c in replay.changes] == [
        (False, _dating(20.01)),
        (True, _dating(40.0)),
    ]


def test_an_unknown_event_is_counted_not_replayed() -> None:
    attempts = [_commit("acme:u1", 7, 1, 1.0)]
    replay = replay_consent(attempts, {}, JOURNEYS, _dating)
    assert (replay.decisions, replay.unknown_events, replay.changes) == (0, 1, ())


def test_sends_after_an_opt_out_are_judged_on_the_gateways_receive_times() -> None:
    # A STOP committed at 16:10; a send stamped 16:10:05 by a relay whose clock runs ahead,
    # which the gateway received at 16:09:59 (before the STOP)
    stop = ConsentChange("acme:u1", START + timedelta(minutes=10), opted_in=False)
    consent = Replay((stop,), 1, 1, 0)
    sent = {**_delivery("k1"), "sent_at": "2026-11-27T16:10:05Z", "journey": "welcome"}
    before = {**sent, "sent_at": "2026-11-27T16:09:59Z"}
    after = {**sent, "sent_at": "2026-11-27T16:10:01Z"}
    early = _evidence(_clean(), deliveries=[sent], received=[before], consent=consent)
    assert _counts(early)["compliance violations"] == 0
    late = _evidence(_clean(), deliveries=[sent], received=[after], consent=consent)
    verification = verify(late)
    assert _counts(late)["compliance violations"] == 1
    (row,) = [i for i in verification.invariants if i.name == "compliance violations"]
    assert "after_opt_out acme:u1" in row.examples[0]
