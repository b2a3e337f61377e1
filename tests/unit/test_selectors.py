"""Key_Shared selectors (spec section 1.4.3) and their slot-range bookkeeping."""

from __future__ import annotations

import itertools
import random

import pytest

from keylane.brokers.memory.range_selectors import HashRangeAutoSplitSelector, StickyRangeSelector
from keylane.brokers.memory.selectors import ConsistentHashingSelector
from keylane.errors import StickyRangeConflictError
from keylane.hashing import slot_consistent, slot_range


class C:
    """A consumer as selectors see it: a name, hashed by identity."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


KEYS = [f"key-{i}" for i in range(10)]


def owners(selector: ConsistentHashingSelector[C], keys: list[str]) -> dict[str, str]:
    result = {}
    for key in keys:
        owner = selector.select(slot_consistent(key))
        assert owner is not None
        result[key] = owner.name
    return result


def assert_covers(ranges: list[tuple[int, int, C]], first: int, last: int) -> None:
    """Ranges are sorted, contiguous and cover exactly first..last."""
    assert ranges[0][0] == first
    assert ranges[-1][1] == last
    for (_, end, _), (start, _, _) in itertools.pairwise(ranges):
        assert start == end + 1


# --------------------------------------------------------------------------- consistent hashing


def test_case_34_reference_vectors() -> None:
    # Given the default selector and consumers "c1", "c2"
    selector = ConsistentHashingSelector[C](100)
    c1, c2, c3 = C("c1"), C("c2"), C("c3")
    selector.add(c1)
    selector.add(c2)
    # Then key-0,2,4,6 -> c1 and key-1,3,5,7,8,9 -> c2 (the spec's reference vectors agree)
    before = owners(selector, KEYS)
    assert [k for k, o in before.items() if o == "c1"] == ["key-0", "key-2", "key-4", "key-6"]
    assert [k for k, o in before.items() if o == "c2"] == [
        "key-1",
        "key-3",
        "key-5",
        "key-7",
        "key-8",
        "key-9",
    ]
    # When c3 joins, then key-0,2,6 move to c3 and nothing moves between c1 and c2
    selector.add(c3)
    after = owners(selector, KEYS)
    moved = sorted(k for k in KEYS if before[k] != after[k])
    assert moved == ["key-0", "key-2", "key-6"]
    assert all(after[k] == "c3" for k in moved)


def test_adding_moves_slots_only_to_the_newcomer() -> None:
    selector = ConsistentHashingSelector[C](100)
    consumers = [C(f"consumer-{i}") for i in range(4)]
    keys = [f"user-{i}" for i in range(3000)]
    for c in consumers[:3]:
        selector.add(c)
    before = owners(selector, keys)
    lost = selector.add(consumers[3])
    after = owners(selector, keys)
    for key in keys:
        if before[key] != after[key]:
            assert after[key] == "consumer-3"
            slot = slot_consistent(key)
            old = next(c for c in consumers if c.name == before[key])
            assert any(s <= slot <= e for s, e in lost[old])
    assert consumers[3] not in lost


def test_removing_moves_only_the_leavers_slots() -> None:
    selector = ConsistentHashingSelector[C](100)
    consumers = [C(f"consumer-{i}") for i in range(4)]
    keys = [f"user-{i}" for i in range(3000)]
    for c in consumers:
        selector.add(c)
    before = owners(selector, keys)
    lost = selector.remove(consumers[1])
    after = owners(selector, keys)
    for key in keys:
        if before[key] != "consumer-1":
            assert after[key] == before[key]
        else:
            assert after[key] != "consumer-1"
    # Only the removed consumer lost ranges.
    assert set(lost) == {consumers[1]}


def test_ring_ranges_cover_the_hash_space() -> None:
    selector = ConsistentHashingSelector[C](100)
    a, b = C("a"), C("b")
    selector.add(a)
    selector.add(b)
    ranges = selector.ranges()
    assert_covers(ranges, 1, 65535)
    for slot in random.Random(7).sample(range(1, 65536), 500):
        owner = next(o for s, e, o in ranges if s <= slot <= e)
        assert selector.select(slot) is owner
    assert selector.ranges_of(a)
    assert selector.ranges_of(b)


def test_ring_point_formula() -> None:
    # Points are slot_consistent(name + "\0" + nameIndex + "\0" + i): a lone consumer with one
    # point owns exactly that point and wraps around from it.
    selector = ConsistentHashingSelector[C](1)
    c = C("solo")
    selector.add(c)
    point = slot_consistent("solo\x000\x000")
    assert selector._points == [point]
    assert selector.select(point) is c
    assert selector.select(65535) is c


def test_same_name_consumers_get_distinct_name_indexes() -> None:
    selector = ConsistentHashingSelector[C](100)
    first, second = C("same"), C("same")
    selector.add(first)
    selector.add(second)
    assert selector._name_index[first] == 0
    assert selector._name_index[second] == 1
    # Both own slots; removing the first keeps the second's assignment.
    assert selector.ranges_of(first)
    assert selector.ranges_of(second)
    kept = selector.ranges_of(second)
    selector.remove(first)
    assert all(any(s <= a and b <= e for s, e in selector.ranges_of(second)) for a, b in kept)
    # The lowest free index is reused.
    third = C("same")
    selector.add(third)
    assert selector._name_index[third] == 0


def test_collision_keeps_earlier_owner_and_hands_over_on_removal() -> None:
    # Given two consumers whose points collide completely
    selector = ConsistentHashingSelector[C](3)
    selector._points_of = lambda name, index: [100, 200, 300]  # type: ignore[method-assign]
    early, late = C("early"), C("late")
    selector.add(early)
    lost = selector.add(late)
    # Then the earlier owner keeps every point and nothing changed owner
    assert selector.select(150) is early
    assert lost == {}
    # When the owner leaves, the colliding consumer takes over
    selector.remove(early)
    assert selector.select(150) is late
    assert selector.select(65000) is late


def test_empty_selector_selects_nobody() -> None:
    selector = ConsistentHashingSelector[C](100)
    assert selector.select(5) is None
    assert selector.ranges() == []
    c = C("x")
    selector.add(c)
    selector.remove(c)
    assert selector.select(5) is None


# --------------------------------------------------------------------------- hash-range auto split


def build_case_32() -> tuple[HashRangeAutoSplitSelector[C], list[C]]:
    selector = HashRangeAutoSplitSelector[C]()
    consumers = [C(f"C{i}") for i in range(1, 5)]
    for c in consumers:
        selector.add(c)
    return selector, consumers


def test_case_32_layout() -> None:
    selector, (c1, c2, c3, c4) = build_case_32()
    assert selector.ranges() == [
        (0, 16384, c3),
        (16385, 32768, c2),
        (32769, 49152, c4),
        (49153, 65535, c1),
    ]
    assert slot_range("Order-3459134") == 6067
    assert selector.select(6067) is c3
    assert selector.select(16384) is c3
    assert selector.select(16385) is c2


def test_case_33_removals() -> None:
    selector, (c1, c2, c3, c4) = build_case_32()
    lost = selector.remove(c4)
    assert selector.ranges()[-1] == (32769, 65535, c1)
    assert set(lost) == {c4}
    selector.remove(c1)
    # The top range's owner left: its lower neighbour takes over the top key.
    assert selector.ranges() == [(0, 16384, c3), (16385, 65535, c2)]


def test_auto_split_new_consumer_takes_lower_half_of_biggest() -> None:
    selector = HashRangeAutoSplitSelector[C]()
    a, b = C("a"), C("b")
    assert selector.add(a) == {}
    lost = selector.add(b)
    assert selector.ranges() == [(0, 32768, b), (32769, 65535, a)]
    assert lost == {a: [(0, 32768)]}


# --------------------------------------------------------------------------- sticky


def test_case_35_sticky_ranges() -> None:
    selector = StickyRangeSelector[C]()
    s1, s2 = C("S1"), C("S2")
    selector.add(s1, [(0, 32767)])
    selector.add(s2, [(32768, 65535)])
    assert selector.select(slot_range("Order-3459134")) is s1
    assert selector.select(32768) is s2
    assert selector.select(0) is s1


def test_case_36_sticky_conflict_changes_nothing() -> None:
    selector = StickyRangeSelector[C]()
    s1, s2 = C("S1"), C("S2")
    selector.add(s1, [(0, 100)])
    with pytest.raises(StickyRangeConflictError, match="Range conflict with consumer 'S1'"):
        selector.add(s2, [(50, 200)])
    assert selector.ranges() == [(0, 100, s1)]
    assert selector.select(150) is None


def test_case_37_uncovered_slots_have_no_owner() -> None:
    selector = StickyRangeSelector[C]()
    s1 = C("S1")
    selector.add(s1, [(0, 1000)])
    assert selector.select(6067) is None
    s2 = C("S2")
    selector.add(s2, [(1001, 65535)])
    assert selector.select(6067) is s2
    selector.remove(s2)
    assert selector.select(6067) is None


def test_sticky_rejects_empty_and_invalid_ranges() -> None:
    selector = StickyRangeSelector[C]()
    with pytest.raises(StickyRangeConflictError, match="must not be empty"):
        selector.add(C("x"), [])
    with pytest.raises(StickyRangeConflictError, match="invalid"):
        selector.add(C("x"), [(10, 5)])
    assert selector.ranges() == []
