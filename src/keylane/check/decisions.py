"""The checks of a *decision* history: what was committed, not only what ran.

keylane's runtime decides each event by loading the subscriber's state at version ``v``,
deciding, and committing ``v + 1`` with a compare-and-set. Under faults (a crash, a paused zombie,
a rebalance) two attempts of one key can *run* at once; what must never happen is that two
*commits* interleave. An attempt record of a decision carries ``read_version``, ``version``,
``loaded`` and ``committed`` (see :mod:`keylane.check.records`); the anomalies here:

* **committed overlap**: two committed decisions of one key whose read-modify-write windows
  ``[loaded, committed]`` overlap, and that the store did not put in order. A working
  compare-and-set makes this impossible: the second commit would have read a stale version and
  been fenced. The windows are measured by each worker on its own event loop, and ``committed``
  is when the commit's *return* was seen, which can lag the store's commit by a few
  milliseconds on a busy loop. So a pair whose later decision read the version the earlier one
  wrote (``read_version >= version``: it loaded after that commit, the store ordered them) is
  an overlap only if it loaded before the earlier decision even handed its commit to the store
  (``commit_started``; ``committed`` when not recorded): it would have seen a write that did
  not exist yet.
* **version conflict**: a committed decision that did not write ``read_version + 1``, or two
  committed decisions of one key that wrote the same version.
* **decided twice**: an event id committed by more than one decision of its key.
* **commit order**: a committed decision of a key whose message was published before one the
  key had already committed (versions must grow with ``seq``).
* **unbacked dedupe**: a message whose only outcome was ``dedupe`` although no decision of its
  key committed its event id: a decision was skipped, not deduplicated.

Only attempts with a ``version`` (committed) or outcome ``dedupe`` take part. This module imports
only the standard library and :mod:`keylane.check`.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from keylane.check.records import DEDUPE, FENCED, OK, Attempt

__all__ = ["DecisionAnomaly", "DecisionReport", "check_decisions", "is_decision_history"]


@dataclass(frozen=True, slots=True)
class DecisionAnomaly:
    """One anomaly of a decision history: its kind, its key and the attempts involved."""

    kind: str
    key: str
    attempts: tuple[Attempt, ...]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DecisionReport:
    """Counts (exact) and examples (at most ``max_examples`` per kind) of the decision checks.

    Attributes:
        committed: committed decisions; ``dedupes`` and ``fenced`` the other two outcomes.
        committed_overlaps: pairs of committed decisions of one key whose windows overlap.
        version_conflicts, decided_twice, commit_order, unbacked_dedupes: see the module doc.
    """

    committed: int = 0
    dedupes: int = 0
    fenced: int = 0
    committed_overlaps: int = 0
    version_conflicts: int = 0
    decided_twice: int = 0
    commit_order: int = 0
    unbacked_dedupes: int = 0
    examples: tuple[DecisionAnomaly, ...] = field(default_factory=tuple)

    @property
    def clean(self) -> bool:
        """No committed overlap, version conflict, double decision, order break or lost dedupe."""
        return not (
            self.committed_overlaps
            or self.version_conflicts
            or self.decided_twice
            or self.commit_order
            or self.unbacked_dedupes
        )

    def counts(self) -> dict[str, int]:
        """The exact counts."""
        return {
            "committed": self.committed,
            "dedupes": self.dedupes,
            "fenced": self.fenced,
            "committed_overlaps": self.committed_overlaps,
            "version_conflicts": self.version_conflicts,
            "decided_twice": self.decided_twice,
            "commit_order": self.commit_order,
            "unbacked_dedupes": self.unbacked_dedupes,
        }


def is_decision_history(attempts: Iterable[Attempt]) -> bool:
    """Whether the history records decisions (any commit information or decision outcome)."""
    return any(a.version is not None or a.outcome in (DEDUPE, FENCED) for a in attempts)


def check_decisions(attempts: Iterable[Attempt], max_examples: int = 10) -> DecisionReport:
    """Run every decision check over ``attempts`` (``O(n log n)``)."""
    committed: dict[str, list[Attempt]] = defaultdict(list)
    dedupes: dict[tuple[str, int], list[Attempt]] = defaultdict(list)
    done: set[tuple[str, int]] = set()
    fenced = 0
    for a in attempts:
        if a.outcome == OK and a.version is not None:
            committed[a.key].append(a)
            done.add((a.key, a.seq))
        elif a.outcome == OK:
            done.add((a.key, a.seq))
        elif a.outcome == DEDUPE:
            dedupes[(a.key, a.seq)].append(a)
        elif a.outcome == FENCED:
            fenced += 1
    found = _Found(max_examples)
    committed_ids: dict[str, set[str]] = defaultdict(set)
    for key, commits in committed.items():
        _overlaps(key, commits, found)
        _versions(key, commits, found)
        for a in commits:
            if a.event_id is None:
                continue
            if a.event_id in committed_ids[key]:
                found.add("decided_twice", key, (a,), f"event {a.event_id!r} committed again")
            committed_ids[key].add(a.event_id)
    for (key, seq), records in dedupes.items():
        if (key, seq) in done:
            continue
        event_id = next((r.event_id for r in records if r.event_id is not None), None)
        if event_id is None or event_id not in committed_ids[key]:
            found.add("unbacked_dedupes", key, tuple(records[:1]), f"seq {seq} never committed")
    return DecisionReport(
        committed=sum(len(c) for c in committed.values()),
        dedupes=sum(len(d) for d in dedupes.values()),
        fenced=fenced,
        examples=tuple(found.examples),
        **found.counts,
    )


class _Found:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts = {
            "committed_overlaps": 0,
            "version_conflicts": 0,
            "decided_twice": 0,
            "commit_order": 0,
            "unbacked_dedupes": 0,
        }
        self.examples: list[DecisionAnomaly] = []
        self._per_kind: dict[str, int] = defaultdict(int)

    def add(self, kind: str, key: str, attempts: tuple[Attempt, ...], detail: str = "") -> None:
        self.counts[kind] += 1
        if self._per_kind[kind] < self.limit:
            self._per_kind[kind] += 1
            self.examples.append(DecisionAnomaly(kind, key, attempts, detail))


def _window(a: Attempt) -> tuple[float, float]:
    loaded = a.loaded if a.loaded is not None else a.start
    committed = a.committed if a.committed is not None else a.end
    return loaded, committed


def _ordered_by_the_store(earlier: Attempt, later: Attempt) -> bool:
    """``later`` read ``earlier``'s write, and loaded once that write could exist."""
    if earlier.version is None or later.read_version is None:
        return False
    if later.read_version < earlier.version:
        return False
    visible_from = earlier.commit_started
    if visible_from is None:
        visible_from = earlier.committed if earlier.committed is not None else earlier.end
    loaded = later.loaded if later.loaded is not None else later.start
    return loaded >= visible_from


def _overlaps(key: str, commits: list[Attempt], found: _Found) -> None:
    ordered = sorted(commits, key=_window)
    running: list[tuple[float, int]] = []  # (committed, index) of windows still open
    for index, a in enumerate(ordered):
        loaded, committed = _window(a)
        while running and running[0][0] <= loaded:
            heapq.heappop(running)
        for _, other in running:
            first, second = sorted((ordered[other], a), key=lambda x: x.version or 0)
            if not _ordered_by_the_store(first, second):
                found.add("committed_overlaps", key, (ordered[other], a))
        heapq.heappush(running, (committed, index))


def _versions(key: str, commits: list[Attempt], found: _Found) -> None:
    by_version: dict[int, Attempt] = {}
    for a in commits:
        assert a.version is not None
        if a.read_version is not None and a.version != a.read_version + 1:
            found.add("version_conflicts", key, (a,), f"read {a.read_version}, wrote {a.version}")
        if a.version in by_version:
            found.add("version_conflicts", key, (by_version[a.version], a), f"v{a.version} twice")
        by_version[a.version] = a
    latest_seq: int | None = None
    for version in sorted(by_version):
        a = by_version[version]
        if latest_seq is not None and a.seq < latest_seq:
            found.add("commit_order", key, (a,), f"seq {a.seq} committed after seq {latest_seq}")
        latest_seq = a.seq if latest_seq is None else max(latest_seq, a.seq)
