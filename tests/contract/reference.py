"""Pure reference models of Pulsar 4.0.x's assignment algorithms, written from the spec.

The contract tests use these to compute the *expected* owner of a key, a partition or an active
consumer, so that a real broker can confirm or refute them independently of keylane's embedded
broker. They follow ``/work/shared/research/pulsar-semantics.md`` sections 1.2 and 1.4.3 and
are checked against the spec's published vectors in ``test_reference.py``.

This module imports only :mod:`keylane.hashing`; never a broker backend or its selectors.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence

from keylane.hashing import murmur31, slot_consistent, slot_range

__all__ = [
    "ConsistentHashRing",
    "HashRangeAutoSplit",
    "failover_active_for_partition",
    "failover_ring_pick",
    "find_key",
    "key_owned_by",
    "key_with_range_slot",
    "sticky_owner",
]

#: Ring points per consumer (``subscriptionKeySharedConsistentHashingReplicaPoints``).
REPLICA_POINTS = 100
#: Ring points per consumer of the non-partitioned Failover ring (section 1.2).
FAILOVER_RING_POINTS = 100
#: Upper bound of the hash-range auto-split selector (ranges are ``(prev, key]``).
AUTO_SPLIT_TOP = 65536


# --------------------------------------------------------------------------- Failover (1.2)


def _eligible(consumers: Sequence[tuple[str, int]]) -> list[str]:
    """Names at the highest priority level present, sorted by ``(priority, name)``."""
    if not consumers:
        raise ValueError("no consumers")
    best = min(priority for _, priority in consumers)
    return sorted(name for name, priority in consumers if priority == best)


def failover_ring_pick(consumers: Sequence[str | tuple[str, int]], topic: str) -> str:
    """Active Failover consumer of a non-partitioned topic (consistent-hash ring, Pulsar >= 3.0).

    Args:
        consumers: names, or ``(name, priority_level)`` pairs.
        topic: the fully qualified topic name.
    """
    pairs = [(c, 0) if isinstance(c, str) else c for c in consumers]
    ring: dict[int, str] = {}
    for name in _eligible(pairs):
        for j in range(FAILOVER_RING_POINTS):
            ring[murmur31(f"{name}{j}")] = name  # later writes overwrite collisions
    points = sorted(ring)
    at = bisect.bisect_left(points, murmur31(topic))
    return ring[points[at % len(points)]]


def failover_active_for_partition(
    consumers: Sequence[str | tuple[str, int]], partition: int
) -> str:
    """Active Failover consumer of partition ``partition`` (``partitionIndex % consumersSize``)."""
    pairs = [(c, 0) if isinstance(c, str) else c for c in consumers]
    eligible = _eligible(pairs)
    return eligible[partition % len(eligible)]


# --------------------------------------------------------------------------- Key_Shared (1.4.3)


class ConsistentHashRing:
    """AUTO_SPLIT consistent-hashing selector (1.4.3 A), keyed by consumer *id*.

    Each consumer id has a name; the name index is the lowest index unused by connected
    consumers of the same name. On a point collision the earlier owner keeps the point and the
    newcomer waits in line for it.
    """

    def __init__(self, replica_points: int = REPLICA_POINTS) -> None:
        self._replicas = replica_points
        self._names: dict[str, str] = {}
        self._index: dict[str, int] = {}
        # point -> owners in arrival order (the first one owns it)
        self._points: dict[int, list[str]] = {}

    def add(self, consumer: str, name: str | None = None) -> None:
        """Add consumer ``consumer`` (its name defaults to the id)."""
        if consumer in self._names:
            raise ValueError(f"{consumer!r} already added")
        name = consumer if name is None else name
        used = {self._index[c] for c, n in self._names.items() if n == name}
        index = next(i for i in range(len(used) + 1) if i not in used)
        self._names[consumer] = name
        self._index[consumer] = index
        for i in range(self._replicas):
            point = slot_consistent(f"{name}\0{index}\0{i}")
            self._points.setdefault(point, []).append(consumer)

    def remove(self, consumer: str) -> None:
        """Remove a consumer; its points pass to colliding consumers, if any."""
        del self._names[consumer]
        del self._index[consumer]
        for point in list(self._points):
            owners = [c for c in self._points[point] if c != consumer]
            if owners:
                self._points[point] = owners
            else:
                del self._points[point]

    def select_slot(self, slot: int) -> str:
        """Owner of ``slot``: the point >= slot, wrapping to the lowest point."""
        if not self._points:
            raise ValueError("empty ring")
        points = sorted(self._points)
        at = bisect.bisect_left(points, slot)
        return self._points[points[at % len(points)]][0]

    def select(self, key: str) -> str:
        """Owner of a sticky key."""
        return self.select_slot(slot_consistent(key))

    @classmethod
    def of(cls, consumers: Iterable[str]) -> ConsistentHashRing:
        """A ring with ``consumers`` added in order."""
        ring = cls()
        for consumer in consumers:
            ring.add(consumer)
        return ring


class HashRangeAutoSplit:
    """AUTO_SPLIT hash-range selector (1.4.3 B): ``upper bound -> consumer``."""

    def __init__(self) -> None:
        self._bounds: dict[int, str] = {}

    def add(self, consumer: str) -> None:
        """Split the biggest range (ties: the lowest); the newcomer takes its lower half."""
        if not self._bounds:
            self._bounds[AUTO_SPLIT_TOP] = consumer
            return
        best_key, best_size, lower = 0, -1, 0
        for key in sorted(self._bounds):
            size = key - lower
            if size > best_size:
                best_key, best_size = key, size
            lower = key
        if best_size <= 1:
            raise ValueError("No more range can assigned to new consumer")
        self._bounds[best_key - best_size // 2] = consumer

    def remove(self, consumer: str) -> None:
        """Remove a consumer; the top range passes to its lower neighbour's consumer."""
        keys = sorted(k for k, c in self._bounds.items() if c == consumer)
        for key in keys:
            if key == AUTO_SPLIT_TOP and len(self._bounds) > 1:
                lower_key = max(k for k in self._bounds if k < key)
                self._bounds[key] = self._bounds.pop(lower_key)
            else:
                del self._bounds[key]

    def select_slot(self, slot: int) -> str:
        """Owner of ``slot``: the ceiling entry, ranges being ``(prev, key]``."""
        keys = sorted(self._bounds)
        at = bisect.bisect_left(keys, slot)
        return self._bounds[keys[at]]

    def select(self, key: str) -> str:
        """Owner of a sticky key."""
        return self.select_slot(slot_range(key))

    def ranges(self) -> dict[str, list[tuple[int, int]]]:
        """Inclusive ``(low, high)`` ranges per consumer (the first range starts at 0)."""
        out: dict[str, list[tuple[int, int]]] = {}
        lower = -1
        for key in sorted(self._bounds):
            out.setdefault(self._bounds[key], []).append((lower + 1, key))
            lower = key
        return out


def sticky_owner(assignments: Mapping[str, Sequence[tuple[int, int]]], key: str) -> str | None:
    """Owner of ``key`` among STICKY consumers (inclusive ranges), or None if uncovered."""
    slot = slot_range(key)
    for consumer, ranges in assignments.items():
        if any(start <= slot <= end for start, end in ranges):
            return consumer
    return None


# --------------------------------------------------------------------------- key search


def find_key(predicate: Callable[[str], bool], prefix: str = "key-", limit: int = 2_000_000) -> str:
    """The first ``f"{prefix}{i}"`` that satisfies ``predicate`` (deterministic)."""
    for i in range(limit):
        key = f"{prefix}{i}"
        if predicate(key):
            return key
    raise LookupError(f"no key with prefix {prefix!r} satisfies the predicate in {limit} tries")


def key_owned_by(select: Callable[[str], str], owner: str, prefix: str = "key-") -> str:
    """The first ``f"{prefix}{i}"`` whose owner under ``select`` is ``owner``."""
    return find_key(lambda key: select(key) == owner, prefix=prefix)


@functools.cache
def key_with_range_slot(slot: int) -> str:
    """A key whose hash-range slot (``murmur31 % 65536``) is exactly ``slot``."""
    return find_key(lambda k: slot_range(k) == slot, prefix="s")
