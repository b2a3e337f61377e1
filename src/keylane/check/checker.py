"""The exclusivity checker: finds the anomalies of a recorded history.

A *message* is identified by ``(key, seq)``; its *completion* is the end of its first successful
(``"ok"``) attempt. The anomalies (``docs/checker.md`` has the long form):

* **exclusivity violation**: a pair of attempts of one key whose intervals overlap,
  ``a.start < b.end and b.start < a.end``, whatever their consumers and outcomes. Each
  overlapping pair counts once; touching intervals (``a.end == b.start``) do not overlap.
* **order violation**: a message that completed before a message of its key with a smaller
  ``seq`` (it *overtook* it), where at least one overtaken message was not *redelivered*. Each
  overtaking message counts once. A message is *redelivered* when its first successful attempt
  has ``attempt > 1`` or some non-ok attempt of it started no later than that attempt: at-least-once
  redelivery (a nack, a timeout) legitimately lets later messages pass. An overtaking message whose
  overtaken messages were all redelivered is *excused* and counted separately. With
  ``strict_order=True`` nothing is excused (use it for strategies that retry in place, such as
  ``keylane.lanes``).
* **lost message**: a published ``(key, seq)`` with no successful attempt.
* **duplicate**: a message with more than one successful attempt (counted once per message),
  unless every success after its first ran on a broker redelivery (the attempt's optional
  ``redelivery_count`` > 0): that is a *redelivered duplicate*, counted separately and not an
  anomaly, like an excused reordering. On Pulsar's default entry-level batch acks a redelivery
  brings back already-acked batch-mates, so these are expected; handlers must be idempotent.
* **lost updates** (with ``counters``): ``sum(max(0, completions(key) - counters.get(key, 0)))``
  over keys, where ``completions`` counts every successful attempt, duplicates included.

A *decision history* (keylane's runtime; any attempt with a ``version`` or a ``dedupe`` /
``fenced`` outcome) is judged by what was committed (:mod:`keylane.check.decisions`): overlapping
*attempts* are then expected under faults (a zombie runs while the key's new owner does) and are
reported but are not an anomaly, a ``dedupe`` completes a message (the checks there make sure it
is backed by a commit), and no duplicate is excused: a message committed twice was decided twice.

Everything is ``O(n log n)`` in the number of records.

This module imports only the standard library and :mod:`keylane.check`; no backend.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Generic, TypeVar

from keylane.check.decisions import check_decisions, is_decision_history
from keylane.check.records import DEDUPE, OK, Attempt, History
from keylane.check.report import (
    Duplicate,
    ExclusivityViolation,
    LostMessage,
    LostUpdate,
    OrderViolation,
    Report,
    Totals,
)
from keylane.errors import InvalidArgumentError

__all__ = ["check"]

_MessageKey = tuple[str, int]
T = TypeVar("T")


@dataclass(slots=True)
class _Message:
    """What the checker needs to know about one ``(key, seq)``."""

    message_id: str
    attempts: int = 0
    last: Attempt | None = None
    first_ok: Attempt | None = None
    ok_count: int = 0
    ok_consumers: list[str] = field(default_factory=list)
    #: Successful attempts that ran on a broker redelivery (``redelivery_count`` > 0).
    ok_redelivered: int = 0
    earliest_failure_start: float | None = None
    #: A decision found the event already committed (decision histories only).
    deduped: bool = False

    def add(self, a: Attempt) -> None:
        self.attempts += 1
        if a.outcome == DEDUPE:
            self.deduped = True
        if self.last is None or a.end >= self.last.end:
            self.last = a
        if a.outcome == OK:
            self.ok_count += 1
            self.ok_consumers.append(a.consumer)
            if a.redelivery_count:
                self.ok_redelivered += 1
            if self.first_ok is None or a.end < self.first_ok.end:
                self.first_ok = a
        elif self.earliest_failure_start is None or a.start < self.earliest_failure_start:
            self.earliest_failure_start = a.start

    @property
    def duplicate_redelivered(self) -> bool:
        """Every success after the first ran on a broker redelivery."""
        ok = self.first_ok
        if ok is None or self.ok_count < 2:
            return False
        later_redelivered = self.ok_redelivered - (1 if ok.redelivery_count else 0)
        return later_redelivered == self.ok_count - 1

    @property
    def redelivered(self) -> bool:
        """The first success was a retry or redelivery, so later messages may legitimately pass."""
        ok = self.first_ok
        if ok is None:
            return False
        if ok.attempt > 1:
            return True
        failed = self.earliest_failure_start
        return failed is not None and failed <= ok.start


def check(
    history: History,
    *,
    counters: Mapping[str, int] | None = None,
    strict_order: bool = False,
    max_examples: int = 10,
) -> Report:
    """Find the anomalies of ``history`` (see the module docstring for the definitions).

    Args:
        history: attempts and publications, e.g. from :func:`~keylane.check.read_history`.
        counters: final per-key counter values of a handler that adds one per successful
            attempt; enables the lost-update count.
        strict_order: report every reordering as a violation, excusing none.
        max_examples: cap on the examples kept per kind (counts stay exact).

    Raises:
        InvalidArgumentError: ``max_examples`` is negative or a counter is not an integer.
    """
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 0:
        raise InvalidArgumentError(f"max_examples must be an int >= 0, got {max_examples!r}")
    by_key: dict[str, list[Attempt]] = defaultdict(list)
    messages: dict[_MessageKey, _Message] = {}
    for a in history.attempts:
        by_key[a.key].append(a)
        message = messages.get((a.key, a.seq))
        if message is None:
            message = messages[(a.key, a.seq)] = _Message(a.message_id)
        message.add(a)

    decisions = (
        check_decisions(history.attempts, max_examples)
        if is_decision_history(history.attempts)
        else None
    )
    exclusivity_count, exclusivity = _exclusivity(by_key, max_examples)
    order_count, order, excused_count, excused = _order(messages, strict_order, max_examples)
    lost_count, lost = _lost(history, messages, max_examples, decisions is not None)
    duplicates: list[Duplicate] = []
    redelivered: list[Duplicate] = []
    for (key, seq), m in messages.items():
        if m.ok_count > 1:
            duplicate = Duplicate(key, seq, m.message_id, m.ok_count, tuple(m.ok_consumers))
            excused_duplicate = m.duplicate_redelivered and decisions is None
            (redelivered if excused_duplicate else duplicates).append(duplicate)
    duplicates.sort(key=lambda d: (d.key, d.seq))
    redelivered.sort(key=lambda d: (d.key, d.seq))
    lost_updates, update_examples = _lost_updates(messages, counters, max_examples)
    return Report(
        exclusivity_count=exclusivity_count,
        order_count=order_count,
        excused_order_count=excused_count,
        lost_count=lost_count,
        duplicate_count=len(duplicates),
        redelivered_duplicate_count=len(redelivered),
        lost_updates=lost_updates,
        exclusivity_violations=exclusivity,
        order_violations=order,
        excused_order=excused,
        lost_messages=lost,
        duplicates=duplicates[:max_examples],
        redelivered_duplicates=redelivered[:max_examples],
        lost_update_examples=update_examples,
        totals=Totals(
            attempts=len(history.attempts),
            messages=len(messages),
            published=len({(p.key, p.seq) for p in history.published}),
            keys=len(by_key),
            consumers=len({a.consumer for a in history.attempts}),
            outcomes=dict(Counter(a.outcome for a in history.attempts)),
            skipped_lines=len(history.skipped),
        ),
        strict_order=strict_order,
        decisions=decisions,
    )


class _Earliest(Generic[T]):
    """Keeps the ``limit`` items with the smallest times seen, in ``O(log limit)`` per offer."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._heap: list[tuple[float, int, T]] = []  # (-time, -arrival, item): a max-heap
        self._arrivals = 0

    def offer(self, time: float, make: Callable[[], T]) -> None:
        """Keep ``make()`` if it is among the earliest so far (``make`` runs only then)."""
        if self._limit == 0:
            return
        full = len(self._heap) >= self._limit
        if full and -self._heap[0][0] <= time:
            return
        self._arrivals += 1
        entry = (-time, -self._arrivals, make())
        if full:
            heapq.heapreplace(self._heap, entry)
        else:
            heapq.heappush(self._heap, entry)

    def items(self) -> list[T]:
        """The kept items, earliest first (ties in arrival order)."""
        return [entry[2] for entry in sorted(self._heap, reverse=True)]


def _exclusivity(
    by_key: Mapping[str, list[Attempt]], max_examples: int
) -> tuple[int, list[ExclusivityViolation]]:
    """Count overlapping pairs per key with a sweep over start times and a heap of end times."""
    count = 0
    examples: _Earliest[ExclusivityViolation] = _Earliest(max_examples)
    for key, attempts in by_key.items():
        ordered = sorted(attempts, key=lambda a: (a.start, a.end))
        running: list[tuple[float, int]] = []  # (end, index) of attempts still running
        for index, a in enumerate(ordered):
            while running and running[0][0] <= a.start:
                heapq.heappop(running)
            # Each attempt left started no later than `a` and ends after `a` starts: an overlap.
            if running:
                count += len(running)
                first = ordered[running[0][1]]
                examples.offer(a.start, partial(ExclusivityViolation, key, first, a))
            heapq.heappush(running, (a.end, index))
    return count, examples.items()


_Done = tuple[int, _Message, Attempt]  # (seq, message, its first successful attempt)


def _order(
    messages: Mapping[_MessageKey, _Message], strict: bool, max_examples: int
) -> tuple[int, list[OrderViolation], int, list[OrderViolation]]:
    """Per key, in ``seq`` order, compare each completion with the latest earlier completions."""
    completed: dict[str, list[_Done]] = defaultdict(list)
    for (key, seq), message in messages.items():
        if message.first_ok is not None:
            completed[key].append((seq, message, message.first_ok))
    count = excused_count = 0
    violations: _Earliest[OrderViolation] = _Earliest(max_examples)
    excused: _Earliest[OrderViolation] = _Earliest(max_examples)
    for key, done in completed.items():
        done.sort(key=lambda item: item[0])
        latest: _Done | None = None  # the latest completion among smaller seqs
        latest_unexcused: _Done | None = None  # ... among those not redelivered
        for item in done:
            end = item[2].end
            if latest_unexcused is not None and latest_unexcused[2].end > end:
                count += 1
                overtaken = latest_unexcused
                violations.offer(end, partial(_order_example, key, item, overtaken))
            elif latest is not None and latest[2].end > end:
                excused_count += 1
                overtaken = latest
                excused.offer(end, partial(_order_example, key, item, overtaken))
            if latest is None or end > latest[2].end:
                latest = item
            if (strict or not item[1].redelivered) and (
                latest_unexcused is None or end > latest_unexcused[2].end
            ):
                latest_unexcused = item
    return count, violations.items(), excused_count, excused.items()


def _order_example(key: str, item: _Done, overtaken: _Done) -> OrderViolation:
    return OrderViolation(
        key=key,
        seq=item[0],
        message_id=item[1].message_id,
        completed=item[2].end,
        overtaken_seq=overtaken[0],
        overtaken_message_id=overtaken[1].message_id,
        overtaken_completed=overtaken[2].end,
    )


def _lost(
    history: History,
    messages: Mapping[_MessageKey, _Message],
    max_examples: int,
    dedupe_completes: bool,
) -> tuple[int, list[LostMessage]]:
    lost: dict[_MessageKey, LostMessage] = {}
    for p in history.published:
        message = messages.get((p.key, p.seq))
        done = message is not None and (
            message.first_ok is not None or (dedupe_completes and message.deduped)
        )
        if not done and (p.key, p.seq) not in lost:
            lost[(p.key, p.seq)] = LostMessage(
                key=p.key,
                seq=p.seq,
                message_id=p.message_id,
                attempts=0 if message is None else message.attempts,
                last_outcome=None
                if message is None or message.last is None
                else message.last.outcome,
            )
    examples = heapq.nsmallest(max_examples, lost.values(), key=lambda m: (m.key, m.seq))
    return len(lost), examples


def _lost_updates(
    messages: Mapping[_MessageKey, _Message],
    counters: Mapping[str, int] | None,
    max_examples: int,
) -> tuple[int | None, list[LostUpdate]]:
    if counters is None:
        return None, []
    for key, value in counters.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentError(f"counter of key {key!r} must be an int, got {value!r}")
    completions: Counter[str] = Counter()
    for (key, _seq), message in messages.items():
        completions[key] += message.ok_count
    short = _short_keys(completions.items(), counters)
    total = sum(u.lost for u in short)
    examples = heapq.nsmallest(max_examples, short, key=lambda u: (-u.lost, u.key))
    return total, examples


def _short_keys(
    completions: Iterable[tuple[str, int]], counters: Mapping[str, int]
) -> list[LostUpdate]:
    return [
        LostUpdate(key, done, counters.get(key, 0))
        for key, done in completions
        if done > counters.get(key, 0)
    ]
