"""Recovery times (gaps in completions, the gateway's redeliveries) and the history tail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keylane.service.chaos.timeline import (
    Completion,
    GatewayEvent,
    HistoryTail,
    completion_gap,
    gateway_recovery,
    longest_gap,
    owned_keys,
    per_second,
)


def test_the_longest_gap_starts_at_the_last_time_before_the_fault() -> None:
    times = [1.0, 2.0, 3.0, 9.0, 9.5, 12.0]
    gap = longest_gap(times, start=4.0, end=20.0)
    assert gap is not None
    assert (gap.start, gap.end, gap.seconds) == (3.0, 9.0, 6.0)


def test_times_after_the_end_do_not_count_and_no_time_means_no_recovery() -> None:
    times = [1.0, 2.0, 30.0]
    assert longest_gap(times, start=3.0, end=20.0) is None
    gap = longest_gap(times, start=3.0, end=31.0)
    assert gap is not None
    assert gap.seconds == 28.0
    assert longest_gap([], start=0.0, end=10.0) is None


def test_a_gap_without_a_time_before_the_fault_counts_from_the_fault() -> None:
    gap = longest_gap([5.0, 5.5], start=2.0, end=10.0)
    assert gap is not None
    assert (gap.start, gap.end) == (2.0, 5.0)


def test_owned_keys_are_those_the_worker_decided_last() -> None:
    completions = [
        Completion(1.0, "a:1", "w1-0"),
        Completion(2.0, "a:2", "w1-0"),
        Completion(3.0, "a:2", "w2-0"),  # moved to w2
        Completion(4.0, "a:3", "w10-0"),  # w10 is not w1
        Completion(50.0, "a:4", "w1-0"),  # after the fault
    ]
    assert owned_keys(completions, "w1", at=10.0) == {"a:1"}
    assert owned_keys(completions, "w2", at=10.0) == {"a:2"}
    assert owned_keys(completions, "w1", at=10.0, window=8.5) == set()


def test_completion_gap_of_some_keys_only() -> None:
    completions = [Completion(t, k, "w1-0") for t, k in [(1, "a"), (2, "b"), (8, "a"), (3, "b")]]
    gap = completion_gap(completions, 2.5, 20.0, keys={"a"})
    assert gap is not None
    assert (gap.start, gap.end) == (1, 8)


def test_gateway_recovery_waits_for_every_failed_key() -> None:
    events = [
        GatewayEvent(10.0, "k1", fault=True),
        GatewayEvent(11.0, "k2", fault=True),
        GatewayEvent(12.0, "k1", fault=False),  # delivered during the window
        GatewayEvent(25.0, "k2", fault=False),  # delivered 5 s after the window
        GatewayEvent(26.0, "k3", fault=False),  # never failed
    ]
    assert gateway_recovery(events, 9.0, 20.0) == pytest.approx(5.0)
    assert gateway_recovery(events[:3], 9.0, 20.0) is None  # k2 never delivered
    assert gateway_recovery([], 9.0, 20.0) == 0.0


def test_per_second_bins_after_the_origin() -> None:
    assert per_second([9.0, 10.2, 10.9, 11.5], origin=10.0) == {0: 2, 1: 1}


def test_the_tail_reads_whole_lines_and_skips_a_cut_one(tmp_path: Path) -> None:
    path = tmp_path / "w1.jsonl"
    ok = {"key": "a:1", "consumer": "w1-0", "message_id": "(1,1,-1,-1)", "outcome": "ok",
          "end": 5.0, "committed": 4.9}  # fmt: skip
    dedupe = {**ok, "message_id": "(1,2,-1,-1)", "outcome": "dedupe"}
    path.write_text(json.dumps(ok) + "\n" + json.dumps(dedupe)[:20])
    tail = HistoryTail()
    tail.follow(path)
    tail.follow(path)  # once
    tail.follow(tmp_path / "not-yet.jsonl")
    tail.poll()
    assert tail.decided == {"(1,1,-1,-1)"}
    assert tail.completions == [Completion(4.9, "a:1", "w1-0")]
    # The rest of the line arrives (after a line cut by kill -9, which is skipped)
    with open(path, "a") as file:
        file.write("\n" + json.dumps(dedupe) + "\n")
    tail.poll()
    assert tail.decided == {"(1,1,-1,-1)", "(1,2,-1,-1)"}
    assert tail.keys_of("w1", at=5.0) == {"a:1"}
