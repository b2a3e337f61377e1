"""Property tests: the checker agrees with brute-force definitions on random histories."""

from __future__ import annotations

import itertools
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from keylane.check import Attempt, History, Published, check
from tests.unit.check.factories import attempt

KEYS = ("a", "b", "c")
OUTCOMES = ("ok", "ok", "ok", "error", "timeout")


@st.composite
def random_attempts(draw: st.DrawFn) -> list[Attempt]:
    """Arbitrary attempts on a small integer time grid, so ties and overlaps are frequent."""
    attempts = []
    for _ in range(draw(st.integers(0, 25))):
        start = draw(st.integers(0, 30))
        attempts.append(
            attempt(
                draw(st.sampled_from(KEYS)),
                draw(st.integers(1, 6)),
                start,
                start + draw(st.integers(0, 6)),
                draw(st.sampled_from(OUTCOMES)),
                consumer=draw(st.sampled_from(("c1", "c2"))),
                number=draw(st.integers(1, 3)),
            )
        )
    return attempts


def brute_overlapping_pairs(attempts: list[Attempt]) -> int:
    return sum(
        1
        for x, y in itertools.combinations(attempts, 2)
        if x.key == y.key and x.start < y.end and y.start < x.end
    )


def brute_order(attempts: list[Attempt], strict: bool) -> tuple[int, int]:
    by_message: dict[tuple[str, int], list[Attempt]] = defaultdict(list)
    for a in attempts:
        by_message[(a.key, a.seq)].append(a)
    first_ok: dict[tuple[str, int], Attempt] = {}
    redelivered: dict[tuple[str, int], bool] = {}
    for message, runs in by_message.items():
        oks = [a for a in runs if a.outcome == "ok"]
        if not oks:
            continue
        ok = min(oks, key=lambda a: a.end)
        first_ok[message] = ok
        redelivered[message] = ok.attempt > 1 or any(
            a.outcome != "ok" and a.start <= ok.start for a in runs
        )
    violations = excused = 0
    for (key, seq), ok in first_ok.items():
        overtaken = [
            m for m, other in first_ok.items() if m[0] == key and m[1] < seq and other.end > ok.end
        ]
        if any(strict or not redelivered[m] for m in overtaken):
            violations += 1
        elif overtaken:
            excused += 1
    return violations, excused


@settings(max_examples=300, deadline=None)
@given(random_attempts(), st.booleans())
def test_counts_match_the_brute_force_definitions(attempts, strict):
    # Given arbitrary attempts and publications of seqs 1..4 of every key
    published = [Published(k, s, f"{k}/{s}") for k in KEYS for s in range(1, 5)]
    report = check(History(attempts=attempts, published=published), strict_order=strict)
    # Then every count is the one the definitions give
    assert report.exclusivity_count == brute_overlapping_pairs(attempts)
    assert (report.order_count, report.excused_order_count) == brute_order(attempts, strict)
    ok = [(a.key, a.seq) for a in attempts if a.outcome == "ok"]
    assert report.lost_count == len({(p.key, p.seq) for p in published} - set(ok))
    assert report.duplicate_count == sum(1 for m in set(ok) if ok.count(m) > 1)
    # and the examples are real instances, within the cap
    # one example per attempt that overlaps an attempt started before it
    ordered = sorted(attempts, key=lambda a: (a.start, a.end))
    overlapping = sum(
        1
        for j, y in enumerate(ordered)
        if any(x.key == y.key and x.end > y.start for x in ordered[:j])
    )
    assert len(report.exclusivity_violations) == min(10, overlapping)
    for v in report.exclusivity_violations:
        assert v.first.key == v.second.key == v.key
        assert v.first.start < v.second.end
        assert v.second.start < v.first.end
    for o in report.order_violations + report.excused_order:
        assert o.overtaken_seq < o.seq
        assert o.completed < o.overtaken_completed


@st.composite
def serial_histories(draw: st.DrawFn) -> History:
    """Per key, messages in seq order, one attempt at a time, retries in place; all published."""
    history = History()
    consumers = ("c1", "c2", "c3")
    for key in KEYS[: draw(st.integers(1, len(KEYS)))]:
        clock = draw(st.integers(0, 5))
        for seq in range(1, draw(st.integers(1, 8)) + 1):
            history.published.append(Published(key, seq, f"{key}/{seq}"))
            failures = draw(st.integers(0, 2))
            for number in range(1, failures + 2):
                clock += draw(st.integers(0, 3))  # gap; 0 = touching the previous attempt
                duration = draw(st.integers(1, 4))
                outcome = "ok" if number == failures + 1 else draw(st.sampled_from(OUTCOMES[3:]))
                history.attempts.append(
                    attempt(
                        key,
                        seq,
                        clock,
                        clock + duration,
                        outcome,
                        consumer=draw(st.sampled_from(consumers)),
                        number=number,
                    )
                )
                clock += duration
    history.attempts = draw(st.permutations(history.attempts))
    return history


@settings(max_examples=200, deadline=None)
@given(serial_histories())
def test_serial_per_key_histories_are_clean(history):
    report = check(history, strict_order=True)
    assert report.clean, report.counts()
    assert report.excused_order_count == 0
    counters: defaultdict[str, int] = defaultdict(int)
    for a in history.attempts:
        counters[a.key] += a.outcome == "ok"
    assert check(history, counters=counters).lost_updates == 0


@settings(max_examples=200, deadline=None)
@given(serial_histories(), st.data())
def test_an_injected_overlap_is_always_caught(history, data):
    # Given a serial history and one extra attempt that starts inside an existing attempt
    victim = data.draw(st.sampled_from(history.attempts))
    start = data.draw(st.floats(victim.start, victim.end, exclude_max=True))
    end = start + data.draw(st.floats(0.001, 5))
    intruder = attempt(victim.key, victim.seq, start, end, "error", consumer="intruder", number=9)
    history.attempts.append(intruder)
    # When checked, the overlap is found, and the intruder is in the example
    report = check(history)
    assert report.exclusivity_count >= 1
    assert not report.clean
    assert any(intruder in (v.first, v.second) for v in report.exclusivity_violations)


@settings(max_examples=100, deadline=None)
@given(serial_histories(), st.data())
def test_a_dropped_success_is_lost(history, data):
    oks = [a for a in history.attempts if a.outcome == "ok"]
    dropped = data.draw(st.sampled_from(oks))
    history.attempts.remove(dropped)
    report = check(history)
    assert report.lost_count == 1
    assert [(m.key, m.seq) for m in report.lost_messages] == [(dropped.key, dropped.seq)]
