"""Which consumer is active on an Exclusive or Failover subscription (spec section 1.2).

Pulsar ``AbstractDispatcherSingleActiveConsumer.pickAndScheduleActiveConsumer``: the eligible
consumers are those of the best (lowest) priority level, in ``(priority, name)`` order (stable, so
equal names stay in arrival order). On a partition the active one is ``partition % eligible``; on a
non-partitioned topic (or with ``activeConsumerFailoverConsistentHashing``) it is picked by a hash
ring: consumer ``i`` puts ``murmur31(name + str(j))`` for ``j`` in 0..99 on the ring, later
consumers overwrite collisions, and the first ring key at or after ``murmur31(topic)`` wins,
wrapping round.

The ring is asked about one point only, so :class:`ActiveConsumerSelector` keeps, per consumer,
its key nearest after the topic point, and per priority level the consumers sorted by it: a join
or leave hashes that consumer's 100 keys and costs O(log n), with no pass over the others.

Imports :mod:`keylane.hashing` and sortedcontainers only; never a dispatcher or a backend.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from sortedcontainers import SortedDict, SortedList

from keylane.hashing import murmur31

__all__ = ["FAILOVER_RING_POINTS", "ActiveConsumerSelector"]

#: Ring points per consumer of the non-partitioned Failover ring (Pulsar constant).
FAILOVER_RING_POINTS = 100
#: Ring keys are 31-bit (``murmur31``).
_RING_SIZE = 1 << 31


class _Candidate(Hashable, Protocol):
    @property
    def name(self) -> str: ...

    @property
    def priority(self) -> int: ...


C = TypeVar("C", bound=_Candidate)

#: ``(distance, name, arrival)``: the order consumers are picked in within a priority level.
_Rank = tuple[int, str, int]


class ActiveConsumerSelector(Generic[C]):
    """Tracks connected consumers and answers which one is active.

    Args:
        topic: the partition's fully qualified topic name (the ring's query point).
        partition: the partition index to pick by (``partition % eligible``), or None to pick
            by the hash ring.
    """

    def __init__(self, topic: str, partition: int | None) -> None:
        self._partition = partition
        self._topic_point = murmur31(topic)
        #: priority level -> ranks of its consumers, sorted.
        self._levels: SortedDict[int, SortedList[_Rank]] = SortedDict()
        #: consumer -> its priority level and rank.
        self._rank_of: dict[C, tuple[int, _Rank]] = {}
        self._by_arrival: dict[int, C] = {}
        self._arrivals = itertools.count()

    def _distance(self, name: str) -> int:
        """How far round the ring, from the topic point, the consumer's nearest key lies."""
        if self._partition is not None:
            return 0  # picked by position in (name, arrival) order alone
        topic = self._topic_point
        return min(
            (murmur31(f"{name}{j}") - topic) % _RING_SIZE for j in range(FAILOVER_RING_POINTS)
        )

    def add(self, consumer: C) -> None:
        """Add a connected consumer.

        Raises:
            ValueError: ``consumer`` is already in the selector.
        """
        if consumer in self._rank_of:
            raise ValueError(f"consumer {consumer.name!r} is already in the selector")
        arrival = next(self._arrivals)
        priority, rank = consumer.priority, (self._distance(consumer.name), consumer.name, arrival)
        self._rank_of[consumer] = (priority, rank)
        self._by_arrival[arrival] = consumer
        level = self._levels.get(priority)
        if level is None:
            level = self._levels[priority] = SortedList()
        level.add(rank)

    def remove(self, consumer: C) -> None:
        """Remove a consumer; unknown consumers are ignored."""
        held = self._rank_of.pop(consumer, None)
        if held is None:
            return
        priority, rank = held
        del self._by_arrival[rank[2]]
        level = self._levels[priority]
        level.remove(rank)
        if not level:
            del self._levels[priority]

    def active(self) -> C | None:
        """The consumer that should be active now, or None without consumers."""
        if not self._levels:
            return None
        _, eligible = self._levels.peekitem(0)
        if self._partition is not None:
            rank = eligible[self._partition % len(eligible)]
        else:
            # Consumers sharing the nearest key collide on it: the last one in order wrote it.
            nearest = eligible[0][0]
            rank = eligible[eligible.bisect_left((nearest + 1, "", -1)) - 1]
        return self._by_arrival[rank[2]]
