"""Lanes on the fake consumer: backpressure caps, hot/stuck keys, graceful shutdown."""

from __future__ import annotations

import asyncio

import pytest

from keylane.brokers.base import Message
from keylane.lanes import ExhaustedPolicy, HandlerContext, LaneConfig, Lanes
from tests.unit.lanes.fakes import FakeConsumer, Probe, eventually, make_message, run_until, seq_of

PARK = ExhaustedPolicy.PARK


def hot_and_cold(hot: int, cold_keys: int, *, every: int = 2) -> list[Message]:
    """``hot`` messages of key "hot" with one message of a fresh cold key after every ``every``."""
    out: list[Message] = []
    cold = 0
    for i in range(hot):
        out.append(make_message("hot", i, entry=len(out)))
        if i % every == every - 1 and cold < cold_keys:
            out.append(make_message(f"cold{cold}", 0, entry=len(out)))
            cold += 1
    while cold < cold_keys:
        out.append(make_message(f"cold{cold}", 0, entry=len(out)))
        cold += 1
    return out


@pytest.mark.looptime
async def test_total_cap_bounds_what_is_buffered_and_stops_receiving() -> None:
    # Given 200 messages over 5 keys, slow handlers and a total cap of 12
    consumer = FakeConsumer([make_message(f"k{i % 5}", i, entry=i) for i in range(200)])
    probe = Probe(duration=lambda m, a: 1.0)
    config = LaneConfig(max_buffered_total=12, max_buffered_per_key=3, on_exhausted=PARK)
    async with Lanes(consumer, probe, config) as lanes:
        await asyncio.sleep(0.5)
        mid = lanes.stats()
        held_back = consumer.queued
        await run_until(lanes, lambda: len(consumer.acked) == 200)
    # Then never more than 12 messages were out of the consumer and unacked at once
    assert consumer.max_outstanding == 12
    assert mid.buffered == 12
    assert held_back == 200 - 12
    assert probe.violations == []
    for key in range(5):
        assert probe.completed_seqs(f"k{key}") == list(range(key, 200, 5))


@pytest.mark.looptime
async def test_a_stuck_hot_key_does_not_stop_the_other_keys() -> None:
    # Given key "hot" stuck (its handler waits on a gate) and 30 cold keys arriving in between
    gate = asyncio.Event()
    consumer = FakeConsumer(hot_and_cold(hot=40, cold_keys=30))
    probe = Probe(gate=gate, gated=frozenset({"hot"}))
    config = LaneConfig(
        max_buffered_per_key=5,
        max_buffered_total=100,
        stall_threshold=10.0,
        handler_timeout=None,
        on_exhausted=PARK,
    )
    async with Lanes(consumer, probe, config) as lanes:
        await eventually(lambda: len(consumer.acked) == 30, timeout=5)
        await asyncio.sleep(20)
        stuck = lanes.stats()
        # When the hot key gets unstuck
        gate.set()
        await run_until(lanes, lambda: len(consumer.acked) == 70)
    # Then every cold key completed while "hot" was stuck, with its 40 messages held, in order
    assert sorted(k for k, _ in probe.completions[:30]) == sorted(f"cold{i}" for i in range(30))
    assert stuck.queue_depths == {"hot": 40}
    assert stuck.full_keys == {"hot"}
    assert stuck.overflow == 35
    assert stuck.in_flight_keys == {"hot"}
    assert stuck.stalled_keys == {"hot"}
    assert stuck.in_flight_age["hot"] == pytest.approx(20.0, abs=0.1)
    assert probe.completed_seqs("hot") == list(range(40))
    assert consumer.max_outstanding <= 100


@pytest.mark.looptime
async def test_when_a_stuck_key_fills_the_total_cap_receiving_pauses_until_it_drains() -> None:
    # Given a stuck hot key and a total cap of 10: the hot key fills the cap
    gate = asyncio.Event()
    consumer = FakeConsumer(hot_and_cold(hot=30, cold_keys=10, every=3))
    probe = Probe(gate=gate, gated=frozenset({"hot"}))
    config = LaneConfig(
        max_buffered_per_key=2, max_buffered_total=10, handler_timeout=None, on_exhausted=PARK
    )
    async with Lanes(consumer, probe, config) as lanes:
        await asyncio.sleep(5)
        blocked = lanes.stats()
        queued_while_blocked = consumer.queued
        gate.set()
        await run_until(lanes, lambda: len(consumer.acked) == 40)
    # Then receiving stopped at the cap: nothing beyond 10 was taken from the consumer
    assert blocked.buffered == 10
    assert consumer.max_outstanding == 10
    assert queued_while_blocked == 40 - blocked.received
    assert blocked.received == 10 + blocked.completed
    assert blocked.queue_depths == {"hot": 10}
    # and once the key moved, everything was processed, each key in order
    assert probe.completed_seqs("hot") == list(range(30))
    assert probe.violations == []


@pytest.mark.looptime
async def test_stop_finishes_running_handlers_and_leaves_the_rest_unacked() -> None:
    # Given key "a" at a 2 s handler, key "b" at a 100 s handler, and more messages queued
    consumer = FakeConsumer(
        [make_message("a", i, entry=i) for i in range(3)]
        + [make_message("b", i, entry=10 + i) for i in range(3)]
        + [make_message("c", 0, entry=20)]
    )
    probe = Probe(duration=lambda m, a: 2.0 if m.key == "a" else 100.0 if m.key == "b" else 0.0)
    config = LaneConfig(max_in_flight=2, shutdown_grace=5.0, on_exhausted=PARK)
    lanes = Lanes(consumer, probe, config)
    await lanes.start()
    await asyncio.sleep(1)
    # When stopping with a 5 s grace
    loop = asyncio.get_running_loop()
    began = loop.time()
    await lanes.stop()
    ended = loop.time()
    # Then a:0 finished and was acked; b:0 was cancelled at the grace; nothing else ran
    assert [(m.key, seq_of(m)) for m in consumer.acked] == [("a", 0)]
    assert probe.completions == [("a", 0)]
    assert ended - began == pytest.approx(5.0, abs=0.01)
    assert [(s.key, s.seq) for s in probe.starts] == [("a", 0), ("b", 0)]
    # and nothing was nacked; the unfinished ones were handed back for redelivery, in order
    assert consumer.nacked == []
    stats = lanes.stats()
    assert stats.state == "stopped"
    assert not stats.receiving
    assert stats.abandoned == 6
    assert consumer.redeliver_calls == 1
    assert consumer.queued == 6
    back = [await consumer.receive() for _ in range(6)]
    assert [(m.key, seq_of(m)) for m in back if m.key == "a"] == [("a", 1), ("a", 2)]
    assert [(m.key, seq_of(m)) for m in back if m.key == "b"] == [("b", 0), ("b", 1), ("b", 2)]


@pytest.mark.looptime
async def test_stop_during_a_retry_backoff_leaves_the_message_and_tries_no_more() -> None:
    consumer = FakeConsumer([make_message("a", 0), make_message("a", 1)])
    probe = Probe(fail=lambda m, a: True)
    config = LaneConfig(
        max_attempts=5, retry_backoff=10.0, retry_backoff_max=10.0, on_exhausted=PARK
    )
    lanes = Lanes(consumer, probe, config)
    await lanes.start()
    await asyncio.sleep(1)
    assert lanes.stats().retrying_keys == {"a"}
    await lanes.stop()
    await asyncio.sleep(60)
    assert len(probe.starts) == 1
    assert consumer.acked == []
    assert lanes.stats().abandoned == 2
    assert consumer.redeliver_calls == 1


async def test_without_redeliver_on_stop_lanes_leave_the_consumer_alone() -> None:
    gate = asyncio.Event()
    consumer = FakeConsumer([make_message("a", 0), make_message("a", 1)])
    config = LaneConfig(redeliver_on_stop=False, on_exhausted=PARK)
    lanes = Lanes(consumer, Probe(gate=gate, gated=frozenset({"a"})), config)
    await lanes.start()
    await asyncio.sleep(0.01)
    await lanes.stop(grace=0)
    assert consumer.redeliver_calls == 0
    assert consumer.acked == []
    assert len(consumer.outstanding) == 2
    assert lanes.stats().abandoned == 2


async def test_a_handler_ignoring_cancellation_cannot_hang_stop() -> None:
    release = asyncio.Event()

    async def stubborn(message: Message, context: HandlerContext) -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue

    consumer = FakeConsumer([make_message("a", 0)])
    lanes = Lanes(consumer, stubborn, LaneConfig(handler_timeout=None, on_exhausted=PARK))
    await lanes.start()
    await asyncio.sleep(0.01)
    async with asyncio.timeout(5):
        await lanes.stop(grace=0.05)
    assert lanes.stats().state == "stopped"
    assert consumer.acked == []
    release.set()
    await asyncio.sleep(0.05)


async def test_a_handler_may_stop_its_own_lanes_without_deadlock() -> None:
    consumer = FakeConsumer([make_message("a", 0), make_message("b", 1)])
    holder: list[Lanes] = []

    async def stopper(message: Message, context: HandlerContext) -> None:
        if context.key == "a":
            await holder[0].stop(grace=1.0)

    lanes = Lanes(consumer, stopper, LaneConfig(on_exhausted=PARK))
    holder.append(lanes)
    await lanes.start()
    async with asyncio.timeout(5):
        await eventually(lambda: lanes.stats().state == "stopped", timeout=5)
    assert lanes.stats().state == "stopped"
