"""A set of integers kept as sorted, disjoint ranges: the cursor's acknowledgement holes.

Pulsar's cursor keeps its ``individuallyDeletedMessages`` as a range set, so that one message
left unacknowledged costs one range however many messages after it are acknowledged.
:class:`RangeSet` does the same for the embedded broker: its size is the number of *gaps*, not
the number of members. Members are added one at a time (acks) or as a range; the smallest range
can be popped (the mark-delete position catching up).

A plain data structure: imports only :mod:`bisect`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

__all__ = ["RangeSet"]


class RangeSet:
    """Integers as sorted, disjoint, non-adjacent half-open ranges ``[start, end)``.

    Attributes:
        starts: range starts, ascending (read only; an empty list means an empty set, which
            hot loops test without a method call).
        ends: range ends (exclusive), parallel to ``starts``.
    """

    __slots__ = ("ends", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        i = bisect.bisect_right(self.starts, value) - 1
        return i >= 0 and value < self.ends[i]

    def __bool__(self) -> bool:
        return bool(self.starts)

    def __len__(self) -> int:
        """Number of members (not of ranges)."""
        return sum(e - s for s, e in zip(self.starts, self.ends, strict=True))

    def __iter__(self) -> Iterator[int]:
        for start, end in zip(self.starts, self.ends, strict=True):
            yield from range(start, end)

    def __repr__(self) -> str:
        return f"RangeSet({self.ranges()!r})"

    @property
    def range_count(self) -> int:
        """Number of disjoint ranges (what the set costs in memory)."""
        return len(self.starts)

    def ranges(self) -> list[tuple[int, int]]:
        """The ranges as ``(start, end)`` pairs, ``end`` exclusive, ascending."""
        return list(zip(self.starts, self.ends, strict=True))

    def add(self, value: int) -> bool:
        """Add one integer; returns False if it was already a member."""
        starts, ends = self.starts, self.ends
        n = len(starts)
        if n and value >= ends[-1]:  # the common case: at or after the last range
            if value == ends[-1]:
                ends[-1] = value + 1
                return True
            i = n - 1
        else:
            i = bisect.bisect_right(starts, value) - 1
            if i >= 0 and value < ends[i]:
                return False
        left = i >= 0 and ends[i] == value
        right = i + 1 < n and starts[i + 1] == value + 1
        if left and right:
            ends[i] = ends[i + 1]
            del starts[i + 1]
            del ends[i + 1]
        elif left:
            ends[i] = value + 1
        elif right:
            starts[i + 1] = value
        else:
            starts.insert(i + 1, value)
            ends.insert(i + 1, value + 1)
        return True

    def add_range(self, start: int, end: int) -> None:
        """Add ``[start, end)``, which must lie after every member (``start >= max + 1``)."""
        if end <= start:
            return
        if self.ends and start < self.ends[-1]:
            raise ValueError(f"range [{start}, {end}) does not lie after {self.ends[-1] - 1}")
        if self.ends and start == self.ends[-1]:
            self.ends[-1] = end
        else:
            self.starts.append(start)
            self.ends.append(end)

    def end_of(self, value: int) -> int:
        """The first integer >= ``value`` that is not a member."""
        i = bisect.bisect_right(self.starts, value) - 1
        if i >= 0 and value < self.ends[i]:
            return self.ends[i]
        return value

    def pop_first_if_starts_at(self, value: int) -> int | None:
        """Remove the first range if it starts at ``value``; returns its end, else None."""
        if self.starts and self.starts[0] == value:
            end = self.ends[0]
            del self.starts[0]
            del self.ends[0]
            return end
        return None

    def discard_below(self, value: int) -> None:
        """Remove every member < ``value``."""
        starts, ends = self.starts, self.ends
        i = bisect.bisect_right(ends, value)
        if i:
            del starts[:i]
            del ends[:i]
        if starts and starts[0] < value:
            starts[0] = value

    def clear(self) -> None:
        """Remove every member."""
        self.starts.clear()
        self.ends.clear()
