"""Key_Shared selectors: which consumer owns a hash slot (Pulsar ``StickyKeyConsumerSelector``).

Three selectors, as in Pulsar 4.0.x (spec section 1.4.3):

* :class:`ConsistentHashingSelector` (AUTO_SPLIT, the default), here: each consumer puts
  ``replica_points`` points on a ring over slots 1..65535; a slot belongs to the first point at or
  after it. On a point collision the earlier consumer keeps the point.
* :class:`~keylane.brokers.memory.range_selectors.HashRangeAutoSplitSelector` (AUTO_SPLIT with
  consistent hashing off) and
  :class:`~keylane.brokers.memory.range_selectors.StickyRangeSelector` (STICKY), in
  :mod:`keylane.brokers.memory.range_selectors`.

A selector knows consumers only as hashable objects with a ``name`` attribute. :meth:`add` and
:meth:`remove` return the slot ranges each *other* consumer lost, which the Key_Shared dispatcher
turns into draining hashes. They work on the points or ranges that change only: a join or leave
costs O(changed points x log n), never a pass over the whole ring, and :meth:`select` stays
O(log n). Slots come from :mod:`keylane.hashing`; this module imports nothing from the
dispatchers and no backend.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable, Sequence
from typing import Generic, Protocol, TypeVar

from sortedcontainers import SortedList

from keylane.hashing import KEY_SHARED_RANGE_SIZE, slot_consistent

__all__ = ["ConsistentHashingSelector", "Selector"]

#: Highest slot of every selector.
MAX_SLOT = KEY_SHARED_RANGE_SIZE - 1


class _Named(Hashable, Protocol):
    @property
    def name(self) -> str: ...


C = TypeVar("C", bound=_Named)


class _Lost(Generic[C]):
    """Slot ranges that changed owner during one add or remove, per previous owner.

    Every slot is recorded at most once per change, so merging the recorded spans gives the
    difference between the assignment before and after (Pulsar ``ImpactedConsumersResult``).
    """

    __slots__ = ("_spans",)

    def __init__(self) -> None:
        self._spans: dict[C, list[tuple[int, int]]] = {}

    def add(self, owner: C, spans: Sequence[tuple[int, int]]) -> None:
        self._spans.setdefault(owner, []).extend(spans)

    def result(self) -> dict[C, list[tuple[int, int]]]:
        """Sorted, merged ranges per previous owner, owners ordered by their lowest lost slot."""
        merged: list[tuple[C, list[tuple[int, int]]]] = []
        for owner, spans in self._spans.items():
            spans.sort()
            out: list[tuple[int, int]] = []
            for start, end in spans:
                if out and out[-1][1] + 1 == start:
                    out[-1] = (out[-1][0], end)
                else:
                    out.append((start, end))
            merged.append((owner, out))
        merged.sort(key=lambda item: item[1][0][0])
        return dict(merged)


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

    The ring is a sorted list of points, each linked to its neighbours, with its consumers in
    arrival order. A join or leave inserts or removes its own points only; each of them changes
    the owner of one span at most, the slots after the previous point up to it. :meth:`select`
    answers from a per-slot cache, from which a join or leave drops exactly the slots whose
    owner it changed.
    """

    def __init__(self, replica_points: int = 100) -> None:
        self._replica_points = replica_points
        #: point -> consumers in arrival order; the first one owns the point.
        self._ring: dict[int, list[C]] = {}
        #: The ring's points, sorted, and each point's neighbours (wrapping round).
        self._points: SortedList[int] = SortedList()
        self._next: dict[int, int] = {}
        self._prev: dict[int, int] = {}
        self._name_index: dict[C, int] = {}
        #: name -> name indexes in use by connected consumers of that name.
        self._indexes: dict[str, set[int]] = {}
        #: slot -> owner, for the slots :meth:`select` was asked about since they last moved.
        self._cache: dict[int, C] = {}

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
        used = self._indexes.setdefault(consumer.name, set())
        index = 0
        while index in used:
            index += 1
        used.add(index)
        self._name_index[consumer] = index
        ring, points, nxt, prv = self._ring, self._points, self._next, self._prev
        lost: _Lost[C] = _Lost()
        for point in self._points_of(consumer.name, index):
            owners = ring.get(point)
            if owners is not None:
                owners.append(consumer)  # collision: the earlier consumer keeps the point
                continue
            ring[point] = [consumer]
            if not points:
                points.add(point)  # the first point: its slots had no owner before
                nxt[point] = prv[point] = point
                continue
            after = next(points.irange(minimum=point), points[0])
            before = prv[after]
            points.add(point)
            nxt[before], prv[point], nxt[point], prv[after] = point, before, after, point
            previous = ring[after][0]  # the new point's span was the next point's
            if previous is not consumer:
                lost.add(previous, _span(before, point))
        return self._forget(lost.result())

    def remove(self, consumer: C) -> dict[C, list[tuple[int, int]]]:
        index = self._name_index.pop(consumer, None)
        if index is None:
            return {}
        used = self._indexes[consumer.name]
        used.discard(index)
        if not used:
            del self._indexes[consumer.name]
        ring, points, nxt, prv = self._ring, self._points, self._next, self._prev
        lost: _Lost[C] = _Lost()
        for point in self._points_of(consumer.name, index):
            owners = ring.get(point)
            if owners is None:
                continue
            k = next((k for k, c in enumerate(owners) if c is consumer), -1)
            if k < 0:
                continue
            del owners[k]
            if k > 0:
                continue  # it was waiting in line for the point: nothing moves
            before = prv[point]
            heir: C | None
            if owners:
                heir = owners[0]  # the next consumer in line takes the point over
            else:
                # The span joins the next point's; an empty ring has no owner.
                after = nxt.pop(point)
                del prv[point], ring[point]
                points.remove(point)
                if after == point:
                    heir = None
                else:
                    nxt[before], prv[after] = after, before
                    heir = ring[after][0]
            if heir is not consumer:
                lost.add(consumer, _span(before, point))
        return self._forget(lost.result())

    def _forget(self, lost: dict[C, list[tuple[int, int]]]) -> dict[C, list[tuple[int, int]]]:
        """Drop the slots that changed owner from the select cache; returns ``lost``."""
        cache = self._cache
        for spans in lost.values():
            for start, end in spans:
                if not cache:
                    return lost
                if end - start >= len(cache):
                    for slot in [s for s in cache if start <= s <= end]:
                        del cache[slot]
                else:
                    for slot in range(start, end + 1):
                        cache.pop(slot, None)
        return lost

    def select(self, slot: int) -> C | None:
        owner = self._cache.get(slot)
        if owner is None:
            points = self._points
            if not points:
                return None
            owner = self._ring[next(points.irange(minimum=slot), points[0])][0]
            if 0 < slot <= MAX_SLOT:  # only real slots are ever dropped from the cache
                self._cache[slot] = owner
        return owner

    def ranges(self) -> list[tuple[int, int, C]]:
        ring = self._ring
        if not ring:
            return []
        out: list[tuple[int, int, C]] = []
        start = 1
        for point in self._points:
            owner = ring[point][0]
            if out and out[-1][2] is owner:
                out[-1] = (out[-1][0], point, owner)
            else:
                out.append((start, point, owner))
            start = point + 1
        if start <= MAX_SLOT:
            first = ring[self._points[0]][0]
            if out[-1][2] is first:
                out[-1] = (out[-1][0], MAX_SLOT, first)
            else:
                out.append((start, MAX_SLOT, first))
        return out


def _span(before: int, point: int) -> list[tuple[int, int]]:
    """Slots a ring point owns: after the previous point ``before`` up to ``point``.

    The lowest point (``before`` is the highest, or itself) also owns the slots after the highest.
    """
    if before < point:
        return [(before + 1, point)]
    return [(1, point), (before + 1, MAX_SLOT)] if before < MAX_SLOT else [(1, point)]
