"""The incremental selectors agree with a from-scratch computation after any join/leave sequence.

Issue 7 item 9 made joins and leaves update the rings in place. These properties pin that the
result is what recomputing everything gives: after every step the owner of every slot, the range
list, and the ranges reported as lost (which become draining hashes) equal a from-scratch
computation, here or in the independent models of ``tests/contract/reference.py``. Points are
drawn from tiny spaces too, so that collisions, a consumer colliding with itself, the lowest and
the highest slot and the wrap-around all occur.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keylane.brokers.memory.failover import FAILOVER_RING_POINTS, ActiveConsumerSelector
from keylane.brokers.memory.range_selectors import HashRangeAutoSplitSelector, StickyRangeSelector
from keylane.brokers.memory.selectors import ConsistentHashingSelector, Selector
from keylane.errors import StickyRangeConflictError
from keylane.hashing import murmur31
from tests.contract import reference

MAX_SLOT = 65535
Ranges = list[tuple[int, int, "C"]]
Lost = dict["C", list[tuple[int, int]]]

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


_uids = itertools.count()


class C:
    """A consumer as the selectors see it: a name and a priority, hashed by identity."""

    def __init__(self, name: str, priority: int = 0) -> None:
        self.name = name
        self.priority = priority
        #: A unique id, for the reference models (which know consumers by id).
        self.uid = f"{name}#{next(_uids)}"

    def __repr__(self) -> str:
        return f"C({self.uid!r}, {self.priority})"


# --------------------------------------------------------------------------- oracles


def diff_ranges(before: Ranges, after: Ranges) -> Lost:
    """Slot ranges whose owner changed, per previous owner, ordered by their first lost slot.

    The whole-assignment difference the selectors used to compute on every join and leave.
    """
    lost: Lost = {}
    j = 0
    for start, end, owner in before:
        pos = start
        while pos <= end:
            while j < len(after) and after[j][1] < pos:
                j += 1
            if j < len(after) and after[j][0] <= pos:
                seg_end, new_owner = min(end, after[j][1]), after[j][2]
            else:
                seg_end = min(end, after[j][0] - 1) if j < len(after) else end
                new_owner = None
            if new_owner is not owner:
                ranges = lost.setdefault(owner, [])
                if ranges and ranges[-1][1] + 1 == pos:
                    ranges[-1] = (ranges[-1][0], seg_end)
                else:
                    ranges.append((pos, seg_end))
            pos = seg_end + 1
    return lost


def test_diff_ranges_reports_owner_changes_per_previous_owner() -> None:
    a, b, c = C("a"), C("b"), C("c")
    assert diff_ranges([(0, 99, a), (100, 199, b)], [(0, 49, a), (50, 149, c), (150, 199, b)]) == {
        a: [(50, 99)],
        b: [(100, 149)],
    }
    assert diff_ranges([(0, 10, a)], [(0, 4, a)]) == {a: [(5, 10)]}
    assert diff_ranges([(0, 10, a)], []) == {a: [(0, 10)]}
    assert diff_ranges([], [(0, 10, a)]) == {}


def merged(pieces: Sequence[tuple[int, int, C]]) -> Ranges:
    """Adjacent pieces with the same owner joined, as ``Selector.ranges`` reports them."""
    out: Ranges = []
    for start, end, owner in pieces:
        if out and out[-1][2] is owner and out[-1][1] + 1 == start:
            out[-1] = (out[-1][0], end, owner)
        else:
            out.append((start, end, owner))
    return out


def ring_from_scratch(members: Sequence[tuple[C, list[int]]]) -> Ranges:
    """Consistent-hash ranges of ``members`` (arrival order, with their points), from nothing."""
    owner_of: dict[int, C] = {}
    for consumer, points in members:
        for point in points:
            owner_of.setdefault(point, consumer)  # on a collision the earlier one keeps it
    if not owner_of:
        return []
    points = sorted(owner_of)
    pieces, start = [], 1
    for point in points:
        pieces.append((start, point, owner_of[point]))
        start = point + 1
    if start <= MAX_SLOT:
        pieces.append((start, MAX_SLOT, owner_of[points[0]]))
    return merged(pieces)


def owner_in(ranges: Ranges, slot: int) -> C | None:
    i = bisect.bisect_right([r[0] for r in ranges], slot) - 1
    return ranges[i][2] if i >= 0 and slot <= ranges[i][1] else None


def probes(*range_lists: Ranges) -> set[int]:
    """Every range edge and its neighbours: where an off-by-one or a stale cache would show."""
    slots = {0, 1, 2, MAX_SLOT - 1, MAX_SLOT}
    for ranges in range_lists:
        for start, end, _ in ranges:
            slots.update((start - 1, start, start + 1, end - 1, end, end + 1))
    return {s for s in slots if 0 <= s <= MAX_SLOT}


def check_selects(selector: Selector[C], ranges: Ranges, slots: set[int]) -> None:
    for slot in sorted(slots):
        assert selector.select(slot) is owner_in(ranges, slot), slot


# --------------------------------------------------------------------------- consistent hashing

NAMES = ["a", "b", "c", "a", "a", "b"]  # repeated names exercise the name indexes

#: ``(kind, n)``: add a consumer named NAMES[n], or remove connected consumer n (modulo).
OPS = st.lists(
    st.tuples(st.sampled_from(["add", "remove"]), st.integers(0, len(NAMES) - 1)),
    min_size=1,
    max_size=30,
)
TINY_POINTS = st.lists(
    st.one_of(st.sampled_from([1, 2, 3, MAX_SLOT - 1, MAX_SLOT]), st.integers(1, MAX_SLOT)),
    min_size=1,
    max_size=6,
)


@PROPERTY
@given(ops=OPS, data=st.data())
def test_consistent_ring_equals_a_ring_built_from_scratch(
    ops: list[tuple[str, int]], data: st.DataObject
) -> None:
    # Given a ring whose points are drawn per (name, name index): few, colliding, at the edges
    drawn: dict[tuple[str, int], list[int]] = {}

    def points_of(name: str, index: int) -> list[int]:
        if (name, index) not in drawn:
            drawn[name, index] = data.draw(TINY_POINTS, label=f"points of {name}/{index}")
        return drawn[name, index]

    selector = ConsistentHashingSelector[C](replica_points=0)
    selector._points_of = points_of  # type: ignore[method-assign]
    members: list[tuple[C, list[int]]] = []  # connected, in arrival order
    index_of: dict[C, int] = {}
    before: Ranges = []
    for kind, n in ops:
        # When a consumer joins or leaves
        if kind == "add":
            consumer = C(NAMES[n])
            used = {index_of[c] for c, _ in members if c.name == consumer.name}
            index_of[consumer] = min(i for i in range(len(used) + 1) if i not in used)
            members.append((consumer, points_of(consumer.name, index_of[consumer])))
            lost = selector.add(consumer)
        elif members:
            consumer, _ = members.pop(n % len(members))
            lost = selector.remove(consumer)
        else:
            continue
        # Then the ring, every slot's owner and the lost ranges are those of a fresh ring
        after = ring_from_scratch(members)
        assert selector.ranges() == after
        assert lost == diff_ranges(before, after)
        check_selects(selector, after, probes(before, after) - {0})  # slots start at 1
        before = after


@PROPERTY
@given(ops=OPS, replicas=st.integers(1, 8))
def test_consistent_ring_agrees_with_the_reference_model(
    ops: list[tuple[str, int]], replicas: int
) -> None:
    # Given the real point formula, and the contract tests' independent model of Pulsar's ring
    selector = ConsistentHashingSelector[C](replicas)
    model = reference.ConsistentHashRing(replicas)
    connected: list[C] = []
    before: Ranges = []
    for kind, n in ops:
        if kind == "add":
            consumer = C(NAMES[n])
            connected.append(consumer)
            lost = selector.add(consumer)
            model.add(consumer.uid, consumer.name)
        elif connected:
            consumer = connected.pop(n % len(connected))
            lost = selector.remove(consumer)
            model.remove(consumer.uid)
        else:
            continue
        after = selector.ranges()
        assert lost == diff_ranges(before, after)
        by_id = {c.uid: c for c in connected}
        for slot in sorted(probes(before, after) - {0}):
            expected = by_id[model.select_slot(slot)] if connected else None
            assert selector.select(slot) is expected, slot
        before = after


# --------------------------------------------------------------------------- hash-range auto split


def auto_split_from_model(model: reference.HashRangeAutoSplit, by_id: dict[str, C]) -> Ranges:
    pieces = [
        (start, min(end, MAX_SLOT), by_id[owner])
        for owner, spans in model.ranges().items()
        for start, end in spans
    ]
    return sorted(pieces, key=lambda r: r[0])


@PROPERTY
@given(ops=OPS)
def test_auto_split_equals_the_reference_model(ops: list[tuple[str, int]]) -> None:
    selector = HashRangeAutoSplitSelector[C]()
    model = reference.HashRangeAutoSplit()
    connected: list[C] = []
    before: Ranges = []
    for kind, n in ops:
        if kind == "add":
            consumer = C(NAMES[n])
            connected.append(consumer)
            lost = selector.add(consumer)
            model.add(consumer.uid)
        elif connected:
            consumer = connected.pop(n % len(connected))
            lost = selector.remove(consumer)
            model.remove(consumer.uid)
        else:
            continue
        after = auto_split_from_model(model, {c.uid: c for c in connected})
        assert selector.ranges() == after
        assert lost == diff_ranges(before, after)
        check_selects(selector, after, probes(before, after))
        before = after


# --------------------------------------------------------------------------- sticky ranges


def first_conflict(held: Ranges, start: int, end: int) -> tuple[int, int, C] | None:
    """The lowest held range overlapping ``[start, end]`` (the scan the selector used to do)."""
    return next(
        (r for r in sorted(held, key=lambda r: r[0]) if start <= r[1] and r[0] <= end), None
    )


STICKY_RANGES = st.lists(
    st.tuples(st.integers(0, MAX_SLOT), st.integers(0, 3000)).map(
        lambda p: (p[0], min(p[0] + p[1], MAX_SLOT))
    ),
    min_size=1,
    max_size=3,
).filter(lambda rs: all(a[1] < b[0] or b[1] < a[0] for i, a in enumerate(rs) for b in rs[i + 1 :]))


@PROPERTY
@given(ops=st.lists(st.tuples(st.booleans(), STICKY_RANGES, st.integers(0, 20)), max_size=25))
def test_sticky_selector_equals_a_scan_of_the_held_ranges(
    ops: list[tuple[bool, list[tuple[int, int]], int]],
) -> None:
    selector = StickyRangeSelector[C]()
    connected: list[tuple[C, list[tuple[int, int]]]] = []
    for i, (add, ranges, n) in enumerate(ops):
        held = [(s, e, c) for c, rs in connected for s, e in rs]
        if add:
            consumer = C(f"s{i}")
            conflicts = [first_conflict(held, s, e) for s, e in ranges]
            conflict = next((c for c in conflicts if c is not None), None)
            if conflict is None:
                assert selector.add(consumer, ranges) == {}
                connected.append((consumer, ranges))
            else:
                s, e, other = conflict
                message = f"consumer {other.name!r}: .* overlaps its range \\[{s}, {e}\\]"
                with pytest.raises(StickyRangeConflictError, match=message):
                    selector.add(consumer, ranges)
        elif connected:
            consumer, _ = connected.pop(n % len(connected))
            assert selector.remove(consumer) == {}
        expected = sorted(((s, e, c) for c, rs in connected for s, e in rs), key=lambda r: r[0])
        assert selector.ranges() == expected
        check_selects(selector, expected, probes(expected))


# --------------------------------------------------------------------------- Failover


def active_from_scratch(arrivals: Sequence[C], topic: str, partition: int | None) -> C:
    """The active consumer as computed before issue 7 item 9: everything, on every change."""
    consumers = sorted(arrivals, key=lambda c: (c.priority, c.name))  # stable: arrival order
    eligible = [c for c in consumers if c.priority == consumers[0].priority]
    if partition is not None:
        return eligible[partition % len(eligible)]
    ring: dict[int, int] = {}
    for i, consumer in enumerate(eligible):
        for j in range(FAILOVER_RING_POINTS):
            ring[murmur31(f"{consumer.name}{j}")] = i  # later consumers overwrite collisions
    points = sorted(ring)
    at = bisect.bisect_left(points, murmur31(topic))
    return eligible[ring[points[at % len(points)]]]


@PROPERTY
@given(
    ops=st.lists(
        st.tuples(st.booleans(), st.sampled_from(NAMES), st.integers(0, 2), st.integers(0, 20)),
        max_size=25,
    ),
    topic=st.sampled_from([f"persistent://public/default/t{i}" for i in range(1, 5)]),
    partition=st.one_of(st.none(), st.integers(0, 7)),
)
def test_active_consumer_equals_a_pick_from_scratch(
    ops: list[tuple[bool, str, int, int]], topic: str, partition: int | None
) -> None:
    selector = ActiveConsumerSelector[C](topic, partition)
    connected: list[C] = []
    for add, name, priority, n in ops:
        if add:
            consumer = C(name, priority)
            connected.append(consumer)
            selector.add(consumer)
        elif connected:
            selector.remove(connected.pop(n % len(connected)))
        if not connected:
            assert selector.active() is None
            continue
        active = selector.active()
        assert active is active_from_scratch(connected, topic, partition)
        pairs = [(c.name, c.priority) for c in connected]
        expected_name = (
            reference.failover_ring_pick(pairs, topic)
            if partition is None
            else reference.failover_active_for_partition(pairs, partition)
        )
        assert active is not None
        assert active.name == expected_name
