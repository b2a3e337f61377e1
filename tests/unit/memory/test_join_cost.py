"""Consumer setup cost: a join or leave must not do more work the more consumers there are.

Issue 7 item 9: every join used to recompute the whole consistent-hash ring (Key_Shared) and
rehash every consumer's Failover ring keys, so setting up N consumers took O(N^2) time. Time is
not asserted here; the work is counted instead: the Python lines the embedded broker (and the
hashing module) executes during one ``subscribe`` or ``close``, measured with ``sys.settrace``.
With incremental rings that count is the same for the 10th and the 80th consumer, up to the
logarithmic cost of the sorted structures, which runs in a library and is not counted.
"""

from __future__ import annotations

import os
import statistics
import sys
from types import FrameType, TracebackType
from typing import Any

import pytest

import keylane.brokers.memory
import keylane.hashing
from keylane.brokers.base import Consumer, SubscriptionType
from keylane.brokers.memory import MemoryBroker, MemoryBrokerConfig

#: Source files whose executed lines are counted.
ROOTS = (os.path.dirname(keylane.brokers.memory.__file__), keylane.hashing.__file__)
FEW, MANY = 10, 80
#: Allowed growth of the per-consumer work from FEW to MANY consumers (8 times as many).
GROWTH = 1.5


class LineCounter:
    """Counts the lines executed in ``roots`` while it is entered."""

    def __init__(self, roots: tuple[str, ...]) -> None:
        self.roots = roots
        self.lines = 0
        self._previous: Any = None

    def _call(self, frame: FrameType, event: str, arg: object) -> Any:
        return self._line if frame.f_code.co_filename.startswith(self.roots) else None

    def _line(self, frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            self.lines += 1
        return self._line

    def __enter__(self) -> LineCounter:
        self._previous = sys.gettrace()
        sys.settrace(self._call)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        sys.settrace(self._previous)


async def setup_and_teardown_work(sub_type: SubscriptionType) -> tuple[list[int], list[int]]:
    """Lines run by each of MANY joins, and by each leave (the first leave has MANY consumers)."""
    joins: list[int] = []
    leaves: list[int] = []
    async with MemoryBroker(MemoryBrokerConfig(failover_delay=0)) as broker:
        consumers: list[Consumer] = []
        for i in range(MANY):
            with LineCounter(ROOTS) as counter:
                consumer = await broker.subscribe(
                    "persistent://public/default/join-cost",
                    "sub",
                    subscription_type=sub_type,
                    consumer_name=f"consumer-{i}",
                )
            consumers.append(consumer)
            joins.append(counter.lines)
        for consumer in consumers:
            with LineCounter(ROOTS) as counter:
                await consumer.close()
            leaves.append(counter.lines)
    return joins, leaves


def per_consumer(work: list[int], consumers: int) -> float:
    """Mean work of the five operations done with about ``consumers`` consumers connected."""
    return statistics.mean(work[consumers - 5 : consumers])


@pytest.mark.parametrize(
    "sub_type",
    [SubscriptionType.KEY_SHARED, SubscriptionType.FAILOVER, SubscriptionType.SHARED],
    ids=lambda t: t.value,
)
async def test_join_and_leave_work_does_not_grow_with_the_consumer_count(
    sub_type: SubscriptionType,
) -> None:
    joins, leaves = await setup_and_teardown_work(sub_type)
    # Joins: the FEW-th and the MANY-th consumer cost the same.
    few, many = per_consumer(joins, FEW), per_consumer(joins, MANY)
    assert few > 0
    assert many <= GROWTH * few, f"join work grew from {few:.0f} to {many:.0f} lines"
    # Leaves: leaves[k] runs with MANY - k consumers connected.
    with_many, with_few = statistics.mean(leaves[:5]), statistics.mean(leaves[-FEW : -FEW + 5])
    assert with_few > 0
    assert with_many <= GROWTH * with_few, (
        f"leave work grew from {with_few:.0f} to {with_many:.0f} lines"
    )
