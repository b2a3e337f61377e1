"""The checks of a decision history: committed overlaps, versions, double decisions, dedupes."""

from __future__ import annotations

import dataclasses

from keylane.check import DEDUPE, FENCED, OK, Attempt, History, Published, check
from keylane.check.records import encode_record, parse_record


def decision(
    seq: int,
    *,
    outcome: str = OK,
    read: int | None = None,
    loaded: float = 0.0,
    committed: float | None = None,
    key: str = "k",
    event_id: str | None = None,
    consumer: str = "c1",
    commit_started: float | None = None,
) -> Attempt:
    version = None if outcome != OK or read is None else read + 1
    end = committed if committed is not None else loaded + 1.0
    return Attempt(
        key=key,
        consumer=consumer,
        message_id=f"m{seq}",
        seq=seq,
        attempt=1,
        start=loaded,
        end=end,
        outcome=outcome,
        event_id=event_id or f"e{seq}",
        read_version=read,
        version=version,
        loaded=loaded,
        committed=committed if outcome == OK else None,
        commit_started=commit_started if outcome == OK else None,
    )


def history(*attempts: Attempt, published: tuple[int, ...] = ()) -> History:
    return History(
        attempts=list(attempts), published=[Published("k", s, f"m{s}") for s in published]
    )


def test_a_clean_chain_of_commits_is_clean() -> None:
    h = history(
        decision(1, read=0, loaded=0, committed=1),
        decision(2, read=1, loaded=1, committed=2),
        decision(3, read=2, loaded=2, committed=3),
        published=(1, 2, 3),
    )
    report = check(h)
    assert report.decisions is not None
    assert report.decisions.clean
    assert report.clean
    assert report.decisions.committed == 3


def test_overlapping_attempts_are_reported_but_only_overlapping_commits_are_anomalies() -> None:
    # a zombie's attempt (fenced) overlaps the new owner's commit: expected under faults
    zombie = decision(1, outcome=FENCED, read=0, loaded=0.0, consumer="zombie")
    owner = decision(1, read=0, loaded=0.5, committed=1.5, consumer="owner")
    report = check(history(zombie, owner, published=(1,)))
    assert report.exclusivity_count == 1
    assert report.decisions is not None
    assert report.decisions.fenced == 1
    assert report.clean


def test_interleaved_commits_are_a_committed_overlap() -> None:
    a = decision(1, read=0, loaded=0.0, committed=2.0, consumer="a")
    b = decision(2, read=1, loaded=1.0, committed=3.0, consumer="b")
    report = check(history(a, b))
    assert report.decisions is not None
    assert report.decisions.committed_overlaps == 1
    assert not report.clean


def test_a_pair_the_store_ordered_is_no_overlap_despite_a_late_return() -> None:
    # From make chaos: w3's commit of v5 was handed to PostgreSQL at 17429.10 and its return
    # seen at 17429.913; the zombie w2 loaded v5 (so after that commit) at 17429.910 and
    # committed v6. The measured windows overlap by 3 ms; the versions show the order.
    w3 = decision(1, read=4, loaded=17428.764, commit_started=17429.10, committed=17429.913)
    w2 = decision(2, read=5, loaded=17429.910, committed=17429.956, consumer="w2")
    report = check(history(w3, w2))
    assert report.decisions is not None
    assert report.decisions.committed_overlaps == 0
    assert report.decisions.clean


def test_reading_a_write_before_its_commit_began_is_still_an_overlap() -> None:
    # b read a's version before a even handed its commit to the store: a dirty read
    a = decision(1, read=0, loaded=0.0, commit_started=1.5, committed=2.0, consumer="a")
    b = decision(2, read=1, loaded=1.0, committed=3.0, consumer="b")
    report = check(history(a, b))
    assert report.decisions is not None
    assert report.decisions.committed_overlaps == 1


def test_an_overlap_whose_later_commit_missed_the_earlier_write_is_an_overlap() -> None:
    # b loaded v0 while a was committing v1, and still committed: the compare-and-set failed
    a = decision(1, read=0, loaded=0.0, commit_started=0.5, committed=2.0, consumer="a")
    b = decision(2, read=0, loaded=1.0, committed=3.0, consumer="b")
    report = check(history(a, b))
    assert report.decisions is not None
    assert report.decisions.committed_overlaps == 1
    assert report.decisions.version_conflicts >= 1


def test_two_commits_of_one_version_are_a_version_conflict() -> None:
    a = decision(1, read=0, loaded=0.0, committed=1.0)
    b = decision(2, read=0, loaded=2.0, committed=3.0)
    report = check(history(a, b))
    assert report.decisions is not None
    assert report.decisions.version_conflicts == 1
    assert not report.clean


def test_an_event_committed_twice_is_decided_twice() -> None:
    a = decision(1, read=0, loaded=0, committed=1, event_id="same")
    b = decision(2, read=1, loaded=2, committed=3, event_id="same")
    report = check(history(a, b))
    assert report.decisions is not None
    assert report.decisions.decided_twice == 1


def test_versions_must_grow_with_seq() -> None:
    a = decision(2, read=0, loaded=0, committed=1)
    b = decision(1, read=1, loaded=2, committed=3)
    report = check(history(a, b))
    assert report.decisions is not None
    assert report.decisions.commit_order == 1


def test_a_dedupe_completes_a_message_only_when_backed_by_a_commit() -> None:
    # a redelivered message is deduplicated: it was committed under the same event id
    backed = history(
        decision(1, read=0, loaded=0, committed=1),
        decision(1, outcome=DEDUPE, loaded=2, consumer="c2"),
        published=(1,),
    )
    assert check(backed).clean
    # a message skipped as "duplicate" that nobody committed is a lost decision
    skipped = history(
        decision(2, read=0, loaded=0, committed=1),
        decision(1, outcome=DEDUPE, loaded=2),
        published=(1, 2),
    )
    report = check(skipped)
    assert report.lost_count == 0  # it completed as a no-op ...
    assert report.decisions is not None
    assert report.decisions.unbacked_dedupes == 1  # ... but nothing backs it
    assert not report.clean


def test_a_message_committed_twice_is_a_duplicate_even_after_a_redelivery() -> None:
    a = decision(1, read=0, loaded=0, committed=1)
    b = dataclasses.replace(decision(1, read=1, loaded=2, committed=3), redelivery_count=1)
    report = check(history(a, b))
    assert report.duplicate_count == 1


def test_decision_fields_round_trip_through_the_file_format() -> None:
    a = decision(1, read=4, loaded=1.25, commit_started=2.0, committed=2.5, event_id="évènement")
    line = encode_record(a)
    assert '"commit_started":2.0' in line
    assert parse_record(line) == a
    plain = Attempt("k", "c", "m", 1, 1, 0.0, 1.0, OK)
    assert parse_record(encode_record(plain)) == plain
    assert '"version"' not in encode_record(plain)
