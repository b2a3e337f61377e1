"""Key_Shared selectors over hash ranges (spec section 1.4.3 B and C), slots 0..65535.

* :class:`HashRangeAutoSplitSelector` (AUTO_SPLIT with consistent hashing off): each new consumer
  takes the lower half of the biggest range.
* :class:`StickyRangeSelector` (STICKY): consumers declare fixed ranges; slots nobody covers have
  no owner.

Both keep their ranges sorted, so a join or leave touches the ranges it changes only. The
consistent-hashing selector and the :class:`~keylane.brokers.memory.selectors.Selector` base are in
:mod:`keylane.brokers.memory.selectors`; this module imports only that, the errors and
:mod:`keylane.hashing`.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from sortedcontainers import SortedList

from keylane.brokers.memory.selectors import MAX_SLOT, C, Selector
from keylane.errors import ConsumerBusyError, StickyRangeConflictError
from keylane.hashing import KEY_SHARED_RANGE_SIZE

__all__ = ["HashRangeAutoSplitSelector", "StickyRangeSelector"]

#: Upper bound key of the hash-range selectors (ranges are ``(previous key, key]``).
_RANGE_TOP = KEY_SHARED_RANGE_SIZE


class HashRangeAutoSplitSelector(Selector[C]):
    """Pulsar ``HashRangeAutoSplitStickyKeyConsumerSelector`` (range size 65536).

    Range sizes are kept sorted too, so finding the biggest range is O(log n); a join splits
    one range and a leave merges two, and only that range is reported as lost.
    """

    def __init__(self) -> None:
        #: Sorted upper bounds; range k is ``(keys[k-1], keys[k]]`` (the first starts at 0).
        self._keys: list[int] = []
        self._owner: dict[int, C] = {}
        self._key_of: dict[C, int] = {}
        #: ``(-size, upper key)`` per range, so the first is the biggest (ties: the lowest).
        #: As in Pulsar, the first range's size is its key (it counts from 0, not from -1).
        self._sizes: SortedList[tuple[int, int]] = SortedList()

    @property
    def uses_consistent_slots(self) -> bool:
        return False

    def _lower(self, i: int) -> int:
        """Size origin of range number ``i``: the previous key, or 0 for the first range."""
        return self._keys[i - 1] if i > 0 else 0

    def _start(self, i: int) -> int:
        """First slot of range number ``i``."""
        return self._keys[i - 1] + 1 if i > 0 else 0

    def validate(self, consumer: C, sticky_ranges: Sequence[tuple[int, int]]) -> None:
        if consumer in self._key_of:
            raise ValueError(f"consumer {consumer.name!r} is already in the selector")
        if self._sizes and -self._sizes[0][0] <= 1:
            raise ConsumerBusyError(
                f"No more range can assigned to new consumer, assigned consumers {len(self._keys)}"
            )

    def add(
        self, consumer: C, sticky_ranges: Sequence[tuple[int, int]] = ()
    ) -> dict[C, list[tuple[int, int]]]:
        self.validate(consumer, sticky_ranges)
        keys, sizes = self._keys, self._sizes
        if not keys:
            keys.append(_RANGE_TOP)
            sizes.add((-_RANGE_TOP, _RANGE_TOP))
            self._owner[_RANGE_TOP] = consumer
            self._key_of[consumer] = _RANGE_TOP
            return {}
        neg_size, key = sizes.pop(0)
        split = key - (-neg_size >> 1)
        i = bisect.bisect_left(keys, key)
        start, lower = self._start(i), self._lower(i)
        keys.insert(i, split)
        sizes.add((lower - split, split))
        sizes.add((split - key, key))
        self._owner[split] = consumer
        self._key_of[consumer] = split
        return {self._owner[key]: [(start, split)]}

    def remove(self, consumer: C) -> dict[C, list[tuple[int, int]]]:
        key = self._key_of.pop(consumer, None)
        if key is None:
            return {}
        keys, sizes = self._keys, self._sizes
        i = bisect.bisect_left(keys, key)
        lost = {consumer: [(self._start(i), min(key, MAX_SLOT))]}
        lower = self._lower(i)
        sizes.remove((lower - key, key))
        if len(keys) == 1:
            del keys[i], self._owner[key]
        elif key == _RANGE_TOP:
            # The lower neighbour takes over the top range.
            lower_key = keys[i - 1]
            origin = self._lower(i - 1)
            neighbour = self._owner.pop(lower_key)
            sizes.remove((origin - lower_key, lower_key))
            sizes.add((origin - key, key))
            del keys[i - 1]
            self._owner[key] = neighbour
            self._key_of[neighbour] = key
        else:
            # The next range, whose owner does not change, grows down over it.
            upper = keys[i + 1]
            sizes.remove((key - upper, upper))
            sizes.add((lower - upper, upper))
            del keys[i], self._owner[key]
        return lost

    def select(self, slot: int) -> C | None:
        keys = self._keys
        i = bisect.bisect_left(keys, slot)
        return self._owner[keys[i]] if i < len(keys) else None

    def ranges(self) -> list[tuple[int, int, C]]:
        out: list[tuple[int, int, C]] = []
        lower = -1
        for key in self._keys:
            out.append((lower + 1, min(key, MAX_SLOT), self._owner[key]))
            lower = key
        return out


class StickyRangeSelector(Selector[C]):
    """Pulsar ``HashRangeExclusiveStickyKeyConsumerSelector``: fixed, non-overlapping ranges."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ranges: list[tuple[int, int, C]] = []
        self._ranges_of: dict[C, Sequence[tuple[int, int]]] = {}

    @property
    def uses_consistent_slots(self) -> bool:
        return False

    def _first_overlap(self, start: int, end: int) -> tuple[int, int, C] | None:
        """The lowest held range that overlaps ``[start, end]``, if any.

        Held ranges never overlap (``KeySharedPolicy`` rejects a consumer's own overlapping
        ranges, :meth:`validate` everybody else's), so only two of them can be the first.
        """
        starts, ranges = self._starts, self._ranges
        i = bisect.bisect_right(starts, start) - 1
        if i >= 0 and ranges[i][1] >= start:
            return ranges[i]
        if i + 1 < len(ranges) and starts[i + 1] <= end:
            return ranges[i + 1]
        return None

    def validate(self, consumer: C, sticky_ranges: Sequence[tuple[int, int]]) -> None:
        if not sticky_ranges:
            raise StickyRangeConflictError("Ranges for KeyShared policy must not be empty.")
        for start, end in sticky_ranges:
            if not 0 <= start <= end <= MAX_SLOT:
                raise StickyRangeConflictError(f"Fixed hash range {start}-{end} is invalid")
            overlap = self._first_overlap(start, end)
            if overlap is not None:
                s, e, other = overlap
                raise StickyRangeConflictError(
                    f"Range conflict with consumer {other.name!r}: "
                    f"[{start}, {end}] overlaps its range [{s}, {e}]"
                )

    def add(
        self, consumer: C, sticky_ranges: Sequence[tuple[int, int]] = ()
    ) -> dict[C, list[tuple[int, int]]]:
        self.validate(consumer, sticky_ranges)
        for start, end in sticky_ranges:
            i = bisect.bisect_right(self._starts, start)
            self._starts.insert(i, start)
            self._ranges.insert(i, (start, end, consumer))
        self._ranges_of[consumer] = tuple(sticky_ranges)
        return {}

    def remove(self, consumer: C) -> dict[C, list[tuple[int, int]]]:
        starts, ranges = self._starts, self._ranges
        for start, _ in self._ranges_of.pop(consumer, ()):
            i = bisect.bisect_left(starts, start)
            while ranges[i][2] is not consumer:
                i += 1
            del starts[i], ranges[i]
        return {}

    def select(self, slot: int) -> C | None:
        i = bisect.bisect_right(self._starts, slot) - 1
        if i >= 0:
            _, end, owner = self._ranges[i]
            if slot <= end:
                return owner
        return None

    def ranges(self) -> list[tuple[int, int, C]]:
        return list(self._ranges)
