"""Lanes whose consumer closes under them: no new handler; buffered messages dropped, reported."""

from __future__ import annotations

import asyncio

import pytest

from keylane.brokers.base import Message
from keylane.errors import AlreadyClosedError
from keylane.lanes import ExhaustedPolicy, HandlerContext, LaneConfig, Lanes
from tests.unit.lanes.fakes import FakeConsumer, eventually, make_message, seq_of

pytestmark = pytest.mark.looptime

PARK = ExhaustedPolicy.PARK


class Slow:
    """A handler that takes ``seconds``, fails key "f" always, and records every start."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds
        self.starts: list[tuple[str, int, float]] = []

    async def __call__(self, message: Message, context: HandlerContext) -> None:
        self.starts.append((context.key, seq_of(message), asyncio.get_running_loop().time()))
        await asyncio.sleep(self.seconds)
        if context.key == "f":
            raise RuntimeError("always fails")


async def test_close_under_running_lanes_drops_everything_not_running() -> None:
    # Given 2 slots, keys a and b busy, c waiting for a slot, f in retry backoff
    consumer = FakeConsumer(
        [make_message("f", 0, entry=0)]
        + [make_message(k, i, entry=10 * n + i) for n, k in enumerate("abc", 1) for i in range(3)]
    )
    handler = Slow()
    dropped: list[tuple[str, int, int, str]] = []
    config = LaneConfig(
        max_in_flight=2, retry_backoff=30.0, retry_backoff_max=30.0, on_exhausted=PARK
    )
    lanes = Lanes(
        consumer,
        handler,
        config,
        on_dropped=lambda m, c, why: dropped.append((c.key, seq_of(m), c.attempt, why)),
    )
    await lanes.start()
    await eventually(lambda: lanes.stats().retrying_keys == {"f"} and lanes.stats().in_flight == 2)
    running = set(lanes.stats().in_flight_keys)
    buffered = lanes.stats().buffered
    acked = len(consumer.acked)
    # When the consumer closes (lanes not stopped)
    await consumer.close()
    closed_at = asyncio.get_running_loop().time()
    await lanes.wait_idle(timeout=60)
    stats = lanes.stats()
    # Then no handler started after the close
    assert [s for s in handler.starts if s[2] > closed_at] == []
    # the running heads finished (their acks fail); everything else was dropped and reported
    assert stats.consumer_closed
    assert stats.buffered == 0
    assert stats.dropped == len(dropped) == buffered - len(running)
    assert ("f", 0, 2, "consumer closed") in dropped  # the retry that did not start
    assert all(why == "consumer closed" for *_, why in dropped)
    assert stats.retrying_keys == frozenset()
    assert len(consumer.acked) == acked  # the running heads' acks failed: consumer closed
    assert stats.ack_failures == len(running)
    await lanes.stop()
    with pytest.raises(RuntimeError):
        lanes.resume("f")


async def test_an_ack_failing_with_already_closed_stops_new_handlers() -> None:
    # Given a consumer whose acks report it closed (the broker closed it), with a backlog
    consumer = FakeConsumer([make_message("a", i, entry=i) for i in range(5)])

    def closed_ack(message: Message) -> bool:
        raise AlreadyClosedError("closed by the broker")

    consumer.fail_ack = closed_ack
    handler = Slow(0.1)
    lanes = Lanes(consumer, handler, LaneConfig(max_in_flight=1, on_exhausted=PARK))
    await lanes.start()
    await eventually(lambda: lanes.stats().consumer_closed)
    await lanes.wait_idle(timeout=60)
    # Then only the first message ran; the rest were dropped, none acked
    assert [s[1] for s in handler.starts] == [0]
    assert lanes.stats().dropped == 4
    assert lanes.stats().ack_failures == 1
    await lanes.stop()


async def test_stop_with_close_consumer_stops_lanes_before_closing() -> None:
    # Given lanes with a running handler
    consumer = FakeConsumer([make_message("a", i, entry=i) for i in range(3)])
    seen_closed: list[bool] = []

    async def handler(message: Message, context: HandlerContext) -> None:
        await asyncio.sleep(0.5)
        seen_closed.append(consumer.closed)

    lanes = Lanes(consumer, handler, LaneConfig(max_in_flight=1, on_exhausted=PARK))
    await lanes.start()
    await eventually(lambda: lanes.stats().in_flight == 1)
    # When stopping with close_consumer=True
    await lanes.stop(grace=5.0, close_consumer=True)
    # Then the running handler finished (and was acked) while the consumer was still open
    assert seen_closed == [False]
    assert [seq_of(m) for m in consumer.acked] == [0]
    assert consumer.closed
    assert lanes.stats().dropped == 0
