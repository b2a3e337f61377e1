"""The checker on crafted histories: each anomaly is found with its exact count and examples."""

from __future__ import annotations

import json

import pytest

from keylane.check import (
    Duplicate,
    ExclusivityViolation,
    History,
    LostMessage,
    LostUpdate,
    OrderViolation,
    check,
)
from keylane.errors import InvalidArgumentError
from tests.unit.check.factories import attempt, history, published


def zero_counts(**overrides: int | None) -> dict[str, int | None]:
    counts: dict[str, int | None] = {
        "exclusivity_violations": 0,
        "order_violations": 0,
        "excused_order": 0,
        "lost_messages": 0,
        "duplicates": 0,
        "redelivered_duplicates": 0,
        "lost_updates": None,
    }
    counts.update(overrides)
    return counts


class TestClean:
    def test_serial_keys_processed_concurrently_are_clean(self):
        # Given two keys processed at the same time, each serially and in order
        h = history(
            attempt("a", 1, 0, 1, consumer="c1"),
            attempt("a", 2, 1, 2, consumer="c2"),  # touching is not overlapping
            attempt("a", 3, 5, 6, consumer="c1"),
            attempt("b", 1, 0.5, 3, consumer="c2"),
            attempt("b", 2, 3, 4, consumer="c2"),
            published_seqs={"a": 3, "b": 2},
        )
        # When it is checked
        report = check(h, counters={"a": 3, "b": 2})
        # Then nothing is found
        assert report.clean
        assert report.counts() == zero_counts(lost_updates=0)
        assert report.totals.attempts == 5
        assert report.totals.messages == 5
        assert report.totals.published == 5
        assert report.totals.keys == 2
        assert report.totals.consumers == 2
        assert report.totals.outcomes == {"ok": 5}

    def test_retry_in_place_is_clean_and_excuses_nothing(self):
        # Given a message that failed, timed out, then succeeded before its successor
        h = history(
            attempt("a", 1, 0, 1, "error"),
            attempt("a", 1, 1.5, 2.5, "timeout", number=2),
            attempt("a", 1, 3, 4, number=3),
            attempt("a", 2, 4, 5),
            published_seqs={"a": 2},
        )
        report = check(h)
        assert report.clean
        assert report.counts() == zero_counts()
        assert check(h, strict_order=True).clean

    def test_empty_history_is_clean(self):
        report = check(History())
        assert report.clean
        assert report.totals.attempts == 0


class TestExclusivity:
    def test_overlapping_attempts_of_one_key_are_counted_per_pair(self):
        # Given three attempts of key k where 1 overlaps 2 and 2 overlaps 3, on other consumers
        a1 = attempt("k", 1, 0, 10, consumer="c1")
        a2 = attempt("k", 2, 5, 12, consumer="c2")
        a3 = attempt("k", 3, 11, 13, consumer="c1")
        # and another key running at the same time (no violation)
        other = attempt("j", 1, 0, 13, consumer="c3")
        report = check(history(a1, a2, a3, other))
        assert report.exclusivity_count == 2
        assert report.exclusivity_violations == [
            ExclusivityViolation("k", a1, a2),
            ExclusivityViolation("k", a2, a3),
        ]
        assert report.order_count == 0
        assert not report.clean

    def test_every_pair_of_a_pileup_counts(self):
        # Given three attempts all running at once on one consumer
        attempts = [attempt("k", 1, 0, 10), attempt("k", 2, 1, 10.5), attempt("k", 3, 2, 11)]
        report = check(history(*attempts))
        assert report.exclusivity_count == 3  # (1,2), (1,3), (2,3)
        assert [v.second.seq for v in report.exclusivity_violations] == [2, 3]

    def test_failed_attempts_overlapping_count_too(self):
        a1 = attempt("k", 1, 0, 2, "timeout", consumer="c1")
        a2 = attempt("k", 1, 1, 3, "ok", consumer="c2", number=2)
        report = check(history(a1, a2))
        assert report.exclusivity_count == 1
        assert report.exclusivity_violations == [ExclusivityViolation("k", a1, a2)]

    def test_touching_and_zero_length_attempts_do_not_overlap(self):
        report = check(
            history(
                attempt("k", 1, 0, 1),
                attempt("k", 2, 1, 1),
                attempt("k", 3, 1, 1),
                attempt("k", 4, 1, 2),
            )
        )
        assert report.exclusivity_count == 0

    def test_identical_intervals_overlap(self):
        report = check(history(attempt("k", 1, 0, 1), attempt("k", 1, 0, 1, consumer="c2")))
        assert report.exclusivity_count == 1
        assert report.duplicate_count == 1


class TestOrder:
    def test_overtaking_without_redelivery_is_a_violation(self):
        # Given seq 2 and 3 completing before seq 1, which had a single successful attempt
        h = history(
            attempt("k", 2, 0, 1),
            attempt("k", 3, 2, 3),
            attempt("k", 1, 10, 11),
            attempt("k", 4, 12, 13),
        )
        report = check(h)
        assert report.order_count == 2
        assert report.excused_order_count == 0
        assert report.order_violations == [
            OrderViolation("k", 2, "k/2", 1, 1, "k/1", 11),
            OrderViolation("k", 3, "k/3", 3, 1, "k/1", 11),
        ]
        assert not report.clean

    def test_overtaking_a_redelivered_message_is_excused(self):
        # Given seq 1 failing (nack), seq 2 passing it, then seq 1 redelivered and succeeding
        h = history(
            attempt("k", 1, 0, 1, "error", consumer="c1"),
            attempt("k", 2, 2, 3, consumer="c2"),
            attempt("k", 1, 4, 5, consumer="c2", number=2),
        )
        report = check(h)
        assert report.order_count == 0
        assert report.excused_order_count == 1
        assert report.excused_order == [OrderViolation("k", 2, "k/2", 3, 1, "k/1", 5)]
        assert report.clean  # an excused reordering is not an anomaly
        # With strict order nothing is excused
        strict = check(h, strict_order=True)
        assert strict.order_count == 1
        assert strict.excused_order_count == 0
        assert strict.order_violations == [OrderViolation("k", 2, "k/2", 3, 1, "k/1", 5)]
        assert not strict.clean

    def test_an_attempt_number_above_one_excuses_without_a_failure_record(self):
        # Given seq 1's only recorded attempt is a redelivery (its first run was lost in a crash)
        h = history(attempt("k", 2, 0, 1), attempt("k", 1, 2, 3, number=2))
        report = check(h)
        assert report.order_count == 0
        assert report.excused_order_count == 1

    def test_one_unexcused_overtaken_message_makes_it_a_violation(self):
        # Given seq 3 overtaking seq 1 (redelivered) and seq 2 (not redelivered)
        h = history(
            attempt("k", 1, 0, 0.5, "error"),
            attempt("k", 3, 1, 2),
            attempt("k", 2, 8, 9),
            attempt("k", 1, 9, 10, number=2),
        )
        report = check(h)
        # seq 3 overtook seq 2 (unexcused); seq 2 overtook only seq 1 (excused)
        assert report.order_count == 1
        assert report.order_violations == [OrderViolation("k", 3, "k/3", 2, 2, "k/2", 9)]
        assert report.excused_order_count == 1
        assert report.excused_order == [OrderViolation("k", 2, "k/2", 9, 1, "k/1", 10)]

    def test_a_failure_starting_with_the_success_excuses(self):
        # Given seq 1 failing on c1 while it succeeds on c2, both starting at t=5
        h = history(
            attempt("k", 2, 0, 1),
            attempt("k", 1, 5, 7, "error", consumer="c1"),
            attempt("k", 1, 5, 6, consumer="c2"),
        )
        report = check(h)
        assert (report.order_count, report.excused_order_count) == (0, 1)

    def test_a_failure_after_the_success_excuses_nothing(self):
        # Given seq 1 succeeding once, then failing in a duplicate delivery
        h = history(
            attempt("k", 2, 0, 1),
            attempt("k", 1, 5, 6),
            attempt("k", 1, 7, 8, "error", number=2),
        )
        report = check(h)
        assert report.order_count == 1
        assert report.excused_order_count == 0

    def test_keys_are_ordered_independently(self):
        h = history(attempt("a", 2, 0, 1), attempt("b", 1, 2, 3), attempt("a", 1, 0.2, 0.5))
        report = check(h)
        # a/1 completes at 0.5, a/2 at 1: in order; b is another key
        assert report.order_count == 0

    def test_a_duplicate_completion_does_not_reorder(self):
        # Given seq 1 completing, seq 2 completing, then seq 1 again (duplicate delivery)
        h = history(attempt("k", 1, 0, 1), attempt("k", 2, 2, 3), attempt("k", 1, 4, 5))
        report = check(h)
        assert report.order_count == 0
        assert report.duplicate_count == 1


class TestLostAndDuplicates:
    def test_published_but_never_completed_is_lost(self):
        h = history(
            attempt("k", 1, 0, 1),
            attempt("k", 2, 1, 2, "error"),
            attempt("k", 2, 2, 3, "timeout", number=2),
            attempt("k", 3, 3, 4),
            published_seqs={"k": 4},
        )
        report = check(h)
        assert report.lost_count == 2
        assert report.lost_messages == [
            LostMessage("k", 2, "k/2", attempts=2, last_outcome="timeout"),
            LostMessage("k", 4, "k/4", attempts=0, last_outcome=None),
        ]
        assert not report.clean

    def test_without_publications_nothing_is_lost(self):
        report = check(history(attempt("k", 1, 0, 1, "error")))
        assert report.lost_count == 0
        assert report.totals.published == 0

    def test_a_publication_recorded_twice_is_one_message(self):
        h = History(attempts=[], published=[published("k", 1), published("k", 1)])
        report = check(h)
        assert report.lost_count == 1
        assert report.totals.published == 1

    def test_completed_twice_is_a_duplicate(self):
        h = history(
            attempt("k", 1, 0, 1, consumer="c1"),
            attempt("k", 1, 2, 3, consumer="c2", number=2),
            attempt("k", 1, 3, 4, "error", consumer="c2", number=3),
            attempt("k", 2, 4, 5),
            published_seqs={"k": 2},
        )
        report = check(h)
        assert report.duplicate_count == 1
        assert report.duplicates == [Duplicate("k", 1, "k/1", 2, ("c1", "c2"))]
        assert report.lost_count == 0
        assert not report.clean


class TestLostUpdates:
    def test_counter_below_completions_counts_the_difference(self):
        h = history(
            attempt("k1", 1, 0, 1),
            attempt("k1", 2, 1, 2),
            attempt("k1", 3, 2, 3),
            attempt("k1", 4, 3, 4, "error"),
            attempt("k2", 1, 0, 1),
            attempt("k2", 2, 1, 2),
            attempt("k3", 1, 0, 1),
        )
        # k1: 3 completions, counter 2 -> 1 lost; k2: counter above completions -> 0;
        # k3: no counter at all -> 1 lost; k4: a counter without completions -> 0
        report = check(h, counters={"k1": 2, "k2": 5, "k4": 7})
        assert report.lost_updates == 2
        assert report.counts()["lost_updates"] == 2
        assert report.lost_update_examples == [LostUpdate("k1", 3, 2), LostUpdate("k3", 1, 0)]
        assert not report.clean

    def test_duplicates_count_as_completions(self):
        h = history(attempt("k", 1, 0, 1), attempt("k", 1, 1, 2))
        assert check(h, counters={"k": 2}).lost_updates == 0
        assert check(h, counters={"k": 1}).lost_updates == 1

    def test_without_counters_lost_updates_are_unknown(self):
        report = check(history(attempt("k", 1, 0, 1)))
        assert report.lost_updates is None
        assert report.counts()["lost_updates"] is None
        assert report.clean

    def test_non_integer_counter_is_rejected(self):
        with pytest.raises(InvalidArgumentError, match="counter of key 'k' must be an int"):
            check(history(attempt("k", 1, 0, 1)), counters={"k": "3"})  # type: ignore[dict-item]


class TestExamples:
    def test_counts_are_exact_and_examples_capped_earliest_first(self):
        # Given 25 keys, each with one overlapping pair, in reverse time order
        attempts = []
        for i in reversed(range(25)):
            attempts.append(attempt(f"k{i}", 1, 10 * i, 10 * i + 5))
            attempts.append(attempt(f"k{i}", 2, 10 * i + 1, 10 * i + 6))
        report = check(history(*attempts))
        assert report.exclusivity_count == 25
        assert [v.key for v in report.exclusivity_violations] == [f"k{i}" for i in range(10)]

    def test_max_examples_zero_keeps_counts(self):
        h = history(attempt("k", 2, 0, 1), attempt("k", 1, 0.5, 2), published_seqs={"k": 3})
        report = check(h, max_examples=0)
        assert report.counts() == zero_counts(
            exclusivity_violations=1, order_violations=1, lost_messages=1
        )
        assert report.exclusivity_violations == []
        assert report.order_violations == []
        assert report.lost_messages == []

    @pytest.mark.parametrize("bad", [-1, 1.5, True])
    def test_bad_max_examples_is_rejected(self, bad):
        with pytest.raises(InvalidArgumentError, match="max_examples"):
            check(History(), max_examples=bad)


class TestJson:
    def test_shape(self):
        h = history(
            attempt("k", 1, 0, 10, consumer="c1"),
            attempt("k", 2, 5, 6, consumer="c2"),
            attempt("k", 1, 11, 12, consumer="c2", number=2),
            published_seqs={"k": 3},
        )
        data = check(h, counters={"k": 1}).to_json()
        # it is JSON
        assert json.loads(json.dumps(data)) == data
        assert data["clean"] is False
        assert {k: data[k] for k in zero_counts()} == {
            "exclusivity_violations": 1,
            "order_violations": 1,
            "excused_order": 0,
            "lost_messages": 1,
            "duplicates": 1,
            "redelivered_duplicates": 0,
            "lost_updates": 2,
        }
        assert data["strict_order"] is False
        assert data["totals"] == {
            "attempts": 3,
            "messages": 2,
            "published": 3,
            "keys": 1,
            "consumers": 2,
            "outcomes": {"ok": 3},
            "skipped_lines": 0,
        }
        examples = data["examples"]
        assert isinstance(examples, dict)
        assert examples["exclusivity_violations"][0]["first"]["seq"] == 1
        assert examples["exclusivity_violations"][0]["second"]["consumer"] == "c2"
        assert examples["order_violations"] == [
            {
                "key": "k",
                "seq": 2,
                "message_id": "k/2",
                "completed": 6,
                "overtaken_seq": 1,
                "overtaken_message_id": "k/1",
                "overtaken_completed": 10,
            }
        ]
        assert examples["lost_messages"] == [
            {"key": "k", "seq": 3, "message_id": "k/3", "attempts": 0, "last_outcome": None}
        ]
        assert examples["duplicates"] == [
            {"key": "k", "seq": 1, "message_id": "k/1", "completions": 2, "consumers": ["c1", "c2"]}
        ]
        assert examples["lost_updates"] == [{"key": "k", "completions": 3, "counter": 1, "lost": 2}]
        assert examples["excused_order"] == []

    def test_unknown_lost_updates_is_null(self):
        data = check(History()).to_json()
        assert data["lost_updates"] is None
        assert data["clean"] is True
