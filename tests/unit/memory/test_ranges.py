"""RangeSet, the cursor's ack holes: the same members as a plain set, kept as few ranges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keylane.brokers.memory.ranges import RangeSet


def build(values: list[int]) -> RangeSet:
    ranges = RangeSet()
    for value in values:
        ranges.add(value)
    return ranges


def expected_ranges(members: set[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for value in sorted(members):
        if out and out[-1][1] == value:
            out[-1] = (out[-1][0], value + 1)
        else:
            out.append((value, value + 1))
    return out


@given(st.lists(st.integers(min_value=0, max_value=200)))
def test_adds_behave_like_a_set_and_merge_into_maximal_ranges(values: list[int]) -> None:
    ranges = RangeSet()
    members: set[int] = set()
    for value in values:
        assert ranges.add(value) == (value not in members)
        members.add(value)
    assert set(ranges) == members
    assert len(ranges) == len(members)
    assert ranges.ranges() == expected_ranges(members)
    for probe in range(-1, 202):
        assert (probe in ranges) == (probe in members)
        after = probe
        while after in members:
            after += 1
        assert ranges.end_of(probe) == after


@given(st.lists(st.integers(min_value=0, max_value=200)), st.integers(0, 210))
def test_discard_below(values: list[int], cut: int) -> None:
    ranges = build(values)
    ranges.discard_below(cut)
    assert set(ranges) == {v for v in values if v >= cut}
    assert ranges.ranges() == expected_ranges({v for v in values if v >= cut})


def test_one_hole_costs_one_range_whatever_follows() -> None:
    ranges = build(list(range(1, 100_001)))
    assert ranges.range_count == 1
    assert ranges.ranges() == [(1, 100_001)]


def test_pop_first_if_starts_at() -> None:
    ranges = build([3, 4, 5, 9])
    assert ranges.pop_first_if_starts_at(2) is None
    assert ranges.pop_first_if_starts_at(3) == 6
    assert ranges.ranges() == [(9, 10)]


def test_add_range_appends_after_the_last_member_only() -> None:
    ranges = build([1])
    ranges.add_range(2, 5)
    ranges.add_range(7, 9)
    ranges.add_range(9, 9)  # empty: nothing
    assert ranges.ranges() == [(1, 5), (7, 9)]
    with pytest.raises(ValueError, match="does not lie after"):
        ranges.add_range(3, 10)


def test_non_int_is_never_a_member() -> None:
    assert "1" not in build([1])
