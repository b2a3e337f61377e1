"""Handler signals: NoRetryError skips the remaining attempts; RetryLater postpones, not fails."""

from __future__ import annotations

import asyncio

import pytest

from keylane.brokers.base import Message
from keylane.lanes import (
    ExhaustedPolicy,
    HandlerContext,
    LaneConfig,
    Lanes,
    NoRetryError,
    RetryLater,
)
from tests.unit.lanes.fakes import FakeConsumer, eventually, make_message, seq_of

pytestmark = pytest.mark.looptime


class Unparseable(NoRetryError):
    pass


async def test_no_retry_error_goes_straight_to_the_dead_letter_sink() -> None:
    consumer = FakeConsumer([make_message("k", i, entry=i) for i in range(3)])
    attempts: list[tuple[int, int]] = []
    dead: list[tuple[int, int]] = []

    async def handler(message: Message, context: HandlerContext) -> None:
        attempts.append((seq_of(message), context.attempt))
        if seq_of(message) == 1:
            raise Unparseable("not JSON")

    async def sink(message: Message, error: BaseException, tries: int) -> None:
        dead.append((seq_of(message), tries))

    async with Lanes(consumer, handler, LaneConfig(max_attempts=5), dead_letter=sink):
        await eventually(lambda: len(consumer.acked) == 3)
    assert attempts == [(0, 1), (1, 1), (2, 1)]
    assert dead == [(1, 1)]


async def test_retry_later_keeps_order_and_consumes_no_attempt() -> None:
    consumer = FakeConsumer(
        [make_message("k", i, entry=i) for i in range(3)] + [make_message("o", 0, entry=9)]
    )
    outage_until = 5.0
    starts: list[tuple[str, int, int, float]] = []

    async def handler(message: Message, context: HandlerContext) -> None:
        now = asyncio.get_running_loop().time()
        starts.append((context.key, seq_of(message), context.attempt, now))
        if context.key == "k" and now < outage_until:
            raise RetryLater(1.0, "store unavailable")

    config = LaneConfig(max_attempts=1, on_exhausted=ExhaustedPolicy.PARK)
    async with Lanes(consumer, handler, config) as lanes:
        await eventually(lambda: len(consumer.acked) == 4)
        stats = lanes.stats()
    k = [(s, a) for key, s, a, _ in starts if key == "k"]
    # seq 0 was postponed ~5 times (never failed, never parked) before 1 and 2 ran, in order
    assert [s for s, _ in k] == [0] * (len(k) - 2) + [1, 2]
    assert {a for _, a in k} == {1}
    assert stats.postponed == len(k) - 3
    assert stats.postponed >= 4
    assert stats.failed == 0
    assert stats.parked == 0
    # the other key was not held up
    assert next(t for key, _, _, t in starts if key == "o") < 1.0
