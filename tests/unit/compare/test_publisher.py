"""The closed-loop publisher over a fake producer whose messages a fake worker completes."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from keylane.brokers.base import Message, MessageId
from keylane.check import HistoryRecorder
from keylane.compare.publisher import ClosedLoopPublisher
from keylane.compare.workload import STUCK_USER, Workload, WorkloadConfig
from keylane.errors import InvalidArgumentError
from tests.unit.compare.strategies.fakes import FakeProducer

pytestmark = pytest.mark.looptime


def as_message(key: str, properties: dict[str, str], n: int) -> Message:
    return Message(
        data=b"",
        key=key,
        ordering_key=None,
        properties=properties,
        message_id=MessageId(-1, 1, n),
        topic="t",
        publish_time=0.0,
    )


async def complete_all(producer: FakeProducer, publisher: ClosedLoopPublisher, peak: list[int]):
    """A fake consumer: completes every sent message 1 ms later, tracking the peak outstanding."""
    done = 0
    while True:
        while done < len(producer.sent):
            peak[0] = max(peak[0], publisher.outstanding)
            _, key, properties = producer.sent[done]
            assert key is not None
            done += 1
            publisher.on_success(as_message(key, properties, done))
        await asyncio.sleep(0.001)


async def test_window_bounds_outstanding_and_drain_completes_everything():
    # Given a window of 64 events and a fake consumer that completes everything
    producer = FakeProducer("t")
    recorder = HistoryRecorder()
    workload = Workload(WorkloadConfig(users=50, seed=5))
    loop = asyncio.get_running_loop()
    publisher = ClosedLoopPublisher(
        producer, workload, recorder, window=64, publishers=4, clock=loop.time
    )
    peak = [0]
    worker = asyncio.create_task(complete_all(producer, publisher, peak))
    # When it publishes for 0.5 s and drains
    await publisher.run(0.5)
    assert await publisher.drain(5.0)
    worker.cancel()
    # Then the window was never exceeded, every publication was recorded, and all completed
    assert 0 < peak[0] <= 64
    assert publisher.outstanding == 0
    assert publisher.published == len(producer.sent) == len(recorder.history().published)
    assert publisher.completed == publisher.published
    assert publisher.measured_completions <= publisher.completed
    assert publisher.measured_seconds == pytest.approx(0.5, abs=0.01)
    assert len(publisher.latencies) == publisher.completed
    # And each user's events were published in seq order
    seqs: dict[str, list[int]] = defaultdict(list)
    for _, key, properties in producer.sent:
        assert key is not None
        seqs[key].append(int(properties["seq"]))
    assert all(s == list(range(1, len(s) + 1)) for s in seqs.values())


async def test_repeat_completions_are_counted_not_timed():
    producer = FakeProducer("t")
    loop = asyncio.get_running_loop()
    publisher = ClosedLoopPublisher(
        producer, Workload(WorkloadConfig(users=3)), HistoryRecorder(), window=32, clock=loop.time
    )
    task = asyncio.create_task(publisher.run(0.05))
    await asyncio.sleep(0.01)
    _, key, properties = producer.sent[0]
    assert key is not None
    publisher.on_success(as_message(key, properties, 1))
    publisher.on_success(as_message(key, properties, 1))
    assert publisher.repeat_completions == 1
    assert publisher.completed == 1
    await task


async def test_drain_times_out_when_nothing_completes():
    producer = FakeProducer("t")
    loop = asyncio.get_running_loop()
    publisher = ClosedLoopPublisher(
        producer, Workload(WorkloadConfig(users=3)), HistoryRecorder(), window=40, clock=loop.time
    )
    await publisher.run(0.1)
    assert publisher.outstanding > 0
    start = loop.time()
    assert await publisher.drain(2.0) is False
    assert loop.time() - start == pytest.approx(2.0)


async def test_stuck_users_session_is_published_once_at_stuck_at():
    producer = FakeProducer("t")
    loop = asyncio.get_running_loop()
    publisher = ClosedLoopPublisher(
        producer,
        Workload(WorkloadConfig(users=10)),
        HistoryRecorder(),
        window=100,
        clock=loop.time,
        stuck_user=STUCK_USER,
        stuck_at=0.2,
    )
    peak = [0]
    worker = asyncio.create_task(complete_all(producer, publisher, peak))
    await publisher.run(0.5)
    assert await publisher.drain(1.0)
    worker.cancel()
    stuck = [p for _, key, p in producer.sent if key == STUCK_USER]
    assert [int(p["seq"]) for p in stuck] == list(range(1, 9))
    assert len(publisher.stuck_latencies) == 8
    assert all(key != STUCK_USER for _, key, _ in producer.sent[:5])


async def test_send_failure_surfaces():
    class Broken(FakeProducer):
        async def send(self, data, **kwargs):
            raise RuntimeError("broker down")

    publisher = ClosedLoopPublisher(
        Broken("t"), Workload(WorkloadConfig(users=3)), HistoryRecorder(), window=40
    )
    with pytest.raises(RuntimeError, match="broker down"):
        await publisher.run(1.0)


async def test_bad_arguments():
    workload = Workload(WorkloadConfig(max_burst=32))
    with pytest.raises(InvalidArgumentError, match="window"):
        ClosedLoopPublisher(FakeProducer("t"), workload, HistoryRecorder(), window=10)
    with pytest.raises(InvalidArgumentError, match="publishers"):
        ClosedLoopPublisher(
            FakeProducer("t"), workload, HistoryRecorder(), window=100, publishers=0
        )
    publisher = ClosedLoopPublisher(FakeProducer("t"), workload, HistoryRecorder(), window=100)
    with pytest.raises(InvalidArgumentError, match="duration"):
        await publisher.run(0)
