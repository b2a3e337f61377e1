"""Key_Shared selectors: which consumer owns a hash slot (Pulsar ``StickyKeyConsumerSelector``).

Three selectors, as in Pulsar 4.0.x (spec section 1.4.3):

* :class:`ConsistentHashingSelector` (AUTO_SPLIT, the default): each consumer puts
  ``replica_points`` points on a ring over slots 1..65535; a slot belongs to the first point at or
  after it. On a point collision the earlier consumer keeps the point.
* :class:`HashRangeAutoSplitSelector` (AUTO_SPLIT with consistent hashing off): each new consumer
  takes the lower half of the biggest range.
* :class:`StickyRangeSelector` (STICKY): consumers declare fixed ranges; slots nobody covers have
  no owner.

A selector knows consumers only as hashable objects with a ``name`` attribute. :meth:`add` and
:meth:`remove` return the slot ranges each *other* consumer lost, which the Key_Shared dispatcher
turns into draining hashes. Slots come from :mod:`keylane.hashing`; this module imports nothing
from the dispatchers and no backend.
"""

from __future__ import annotations

import abc
import bisect
from collections.abc import Hashable, Sequence
from typing import Generic, Protocol, TypeVar

from keylane.errors import ConsumerBusyError, StickyRangeConflictError
from keylane.hashing import KEY_SHARED_RANGE_SIZE, slot_consistent

__all__ = [
    "ConsistentHashingSelector",
    "HashRangeAutoSplitSelector",
    "Selector",
    "StickyRangeSelector",
    "removed_ranges",
]

#: Upper bound key of the hash-range selectors (ranges are ``(previous key, key]``).
_RANGE_TOP = KEY_SHARED_RANGE_SIZE
#: Highest slot of every selector.
_MAX_SLOT = KEY_SHARED_RANGE_SIZE - 1


class _Named(Hashable, Protocol):
    @property
    def name(self) -> str: ...


C = TypeVar("C", bound=_Named)


def removed_ranges(
    before: Sequence[tuple[int, int, C]], after: Sequence[tuple[int, int, C]]
) -> dict[C, list[tuple[int, int]]]:
    """Slot ranges whose owner changed, per previous owner (Pulsar ``ImpactedConsumersResult``).

    Args:
        before: sorted, non-overlapping ``(start, end, owner)`` ranges before the change.
        after: the same after the change (slots in no range have no owner).
    """
    lost: dict[C, list[tuple[int, int]]] = {}
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


class Selector(abc.ABC, Generic[C]):
    """Maps a sticky-key slot to its owning consumer."""

    @property
    @abc.abstractmethod
    def uses_consistent_slots(self) -> bool:
        """True if slots are ``slot_consistent`` (1..65535), False for ``slot_range``."""

    @abc.abstractmethod
    def validate(self, consumer: C, sticky_ranges: Sequence[tuple[int, int]]) -> None:
        """Raise if ``consumer`` could not be added; never changes the selector."""

    @abc.abstractmethod
    def add(
        self, consumer: C, sticky_ranges: Sequence[tuple[int, int]] = ()
    ) -> dict[C, list[tuple[int, int]]]:
        """Add a consumer; returns the ranges other consumers lost to it."""

    @abc.abstractmethod
    def remove(self, consumer: C) -> dict[C, list[tuple[int, int]]]:
        """Remove a consumer; returns the ranges remaining consumers lost (normally none)."""

    @abc.abstractmethod
    def select(self, slot: int) -> C | None:
        """Owner of ``slot``, or None if nobody owns it."""

    @abc.abstractmethod
    def ranges(self) -> list[tuple[int, int, C]]:
        """Current assignment as sorted inclusive ``(start, end, owner)`` ranges."""

    def ranges_of(self, consumer: C) -> list[tuple[int, int]]:
        """Inclusive slot ranges owned by ``consumer``."""
        return [(s, e) for s, e, c in self.ranges() if c is consumer]


class ConsistentHashingSelector(Selector[C]):
    """Pulsar 4.x ``ConsistentHashingStickyKeyConsumerSelector``.

    Point ``i`` of a consumer is ``slot_consistent(name + "\\0" + name_index + "\\0" + i)``,
    where ``name_index`` is the lowest index unused by connected consumers of the same name.
    """

    def __init__(self, replica_points: int = 100) -> None:
        self._replica_points = replica_points
        #: point -> consumers in arrival order; the first one owns the point.
        self._ring: dict[int, list[C]] = {}
        self._name_index: dict[C, int] = {}
        self._points: list[int] = []
        self._owners: list[C] = []

    @property
    def uses_consistent_slots(self) -> bool:
        return True

    def validate(self, consumer: C, sticky_ranges: Sequence[tuple[int, int]]) -> None:
        if consumer in self._name_index:
            raise ValueError(f"consumer {consumer.name!r} is already in the selector")

    def _points_of(self, name: str, index: int) -> list[int]:
        return [slot_consistent(f"{name}\0{index}\0{i}") for i in range(self._replica_points)]

    def add(
        self, consumer: C, sticky_ranges: Sequence[tuple[int, int]] = ()
    ) -> dict[C, list[tuple[int, int]]]:
        self.validate(consumer, sticky_ranges)
        before = self.ranges()
        used = {i for c, i in self._name_index.items() if c.name == consumer.name}
        index = next(i for i in range(len(used) + 1) if i not in used)
        self._name_index[consumer] = index
        for point in self._points_of(consumer.name, index):
            self._ring.setdefault(point, []).append(consumer)
        self._rebuild()
        return removed_ranges(before, self.ranges())

    def remove(self, consumer: C) -> dict[C, list[tuple[int, int]]]:
        index = self._name_index.pop(consumer, None)
        if index is None:
            return {}
        before = self.ranges()
        for point in self._points_of(consumer.name, index):
            owners = self._ring.get(point)
            if owners is None:
                continue
            for k, c in enumerate(owners):
                if c is consumer:
                    del owners[k]
                    break
            if not owners:
                del self._ring[point]
        self._rebuild()
        return removed_ranges(before, self.ranges())

    def _rebuild(self) -> None:
        self._points = sorted(self._ring)
        self._owners = [self._ring[p][0] for p in self._points]

    def select(self, slot: int) -> C | None:
        points = self._points
        if not points:
            return None
        i = bisect.bisect_left(points, slot)
        return self._owners[i if i < len(points) else 0]

    def ranges(self) -> list[tuple[int, int, C]]:
        points, owners = self._points, self._owners
        if not points:
            return []
        out: list[tuple[int, int, C]] = []
        start = 1
        for point, owner in zip(points, owners, strict=True):
            if out and out[-1][2] is owner:
                out[-1] = (out[-1][0], point, owner)
            else:
                out.append((start, point, owner))
            start = point + 1
        if start <= _MAX_SLOT:
            first = owners[0]
            if out[-1][2] is first:
                out[-1] = (out[-1][0], _MAX_SLOT, first)
            else:
                out.append((start, _MAX_SLOT, first))
        return out


class HashRangeAutoSplitSelector(Selector[C]):
    """Pulsar ``HashRangeAutoSplitStickyKeyConsumerSelector`` (range size 65536)."""

    def __init__(self) -> None:
        #: Sorted upper bounds; range k is ``(keys[k-1], keys[k]]`` (the first starts at 0).
        self._keys: list[int] = []
        self._owner: dict[int, C] = {}
        self._key_of: dict[C, int] = {}

    @property
    def uses_consistent_slots(self) -> bool:
        return False

    def _biggest(self) -> tuple[int, int]:
        """``(upper key, lower key)`` of the biggest range; ties go to the lowest range."""
        best, best_lower, size, lower = _RANGE_TOP, 0, 0, 0
        for key in self._keys:
            if key - lower > size:
                size, best, best_lower = key - lower, key, lower
            lower = key
        return best, best_lower

    def validate(self, consumer: C, sticky_ranges: Sequence[tuple[int, int]]) -> None:
        if consumer in self._key_of:
            raise ValueError(f"consumer {consumer.name!r} is already in the selector")
        if self._keys:
            key, lower = self._biggest()
            if key - lower <= 1:
                raise ConsumerBusyError(
                    "No more range can assigned to new consumer, assigned consumers "
                    f"{len(self._keys)}"
                )

    def add(
        self, consumer: C, sticky_ranges: Sequence[tuple[int, int]] = ()
    ) -> dict[C, list[tuple[int, int]]]:
        self.validate(consumer, sticky_ranges)
        before = self.ranges()
        if not self._keys:
            split = _RANGE_TOP
        else:
            key, lower = self._biggest()
            split = key - ((key - lower) >> 1)
        bisect.insort(self._keys, split)
        self._owner[split] = consumer
        self._key_of[consumer] = split
        return removed_ranges(before, self.ranges())

    def remove(self, consumer: C) -> dict[C, list[tuple[int, int]]]:
        key = self._key_of.pop(consumer, None)
        if key is None:
            return {}
        before = self.ranges()
        i = bisect.bisect_left(self._keys, key)
        if key == _RANGE_TOP and len(self._keys) > 1:
            # The lower neighbour takes over the top range.
            lower_key = self._keys[i - 1]
            neighbour = self._owner.pop(lower_key)
            del self._keys[i - 1]
            self._owner[key] = neighbour
            self._key_of[neighbour] = key
        else:
            del self._keys[i]
            del self._owner[key]
        return removed_ranges(before, self.ranges())

    def select(self, slot: int) -> C | None:
        keys = self._keys
        i = bisect.bisect_left(keys, slot)
        return self._owner[keys[i]] if i < len(keys) else None

    def ranges(self) -> list[tuple[int, int, C]]:
        out: list[tuple[int, int, C]] = []
        lower = -1
        for key in self._keys:
            out.append((lower + 1, min(key, _MAX_SLOT), self._owner[key]))
            lower = key
        return out


class StickyRangeSelector(Selector[C]):
    """Pulsar ``HashRangeExclusiveStickyKeyConsumerSelector``: fixed, non-overlapping ranges."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ranges: list[tuple[int, int, C]] = []

    @property
    def uses_consistent_slots(self) -> bool:
        return False

    def validate(self, consumer: C, sticky_ranges: Sequence[tuple[int, int]]) -> None:
        if not sticky_ranges:
            raise StickyRangeConflictError("Ranges for KeyShared policy must not be empty.")
        for start, end in sticky_ranges:
            if not 0 <= start <= end <= _MAX_SLOT:
                raise StickyRangeConflictError(f"Fixed hash range {start}-{end} is invalid")
            for s, e, other in self._ranges:
                if start <= e and s <= end:
                    raise StickyRangeConflictError(
                        f"Range conflict with consumer {other.name!r}: "
                        f"[{start}, {end}] overlaps its range [{s}, {e}]"
                    )

    def add(
        self, consumer: C, sticky_ranges: Sequence[tuple[int, int]] = ()
    ) -> dict[C, list[tuple[int, int]]]:
        self.validate(consumer, sticky_ranges)
        for start, end in sticky_ranges:
            self._ranges.append((start, end, consumer))
        self._ranges.sort(key=lambda r: r[0])
        self._starts = [r[0] for r in self._ranges]
        return {}

    def remove(self, consumer: C) -> dict[C, list[tuple[int, int]]]:
        self._ranges = [r for r in self._ranges if r[2] is not consumer]
        self._starts = [r[0] for r in self._ranges]
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
