"""ScheduledPublisher: never early, pipelined, per-key order, recorded, stoppable, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keylane.brokers import SubscriptionType, connect
from keylane.brokers.base import Duration, MessageId, Producer
from keylane.check import HistoryRecorder
from keylane.clock import ManualClock, ScaledClock
from keylane.errors import InvalidArgumentError
from keylane.journeys import Event, parse_event
from keylane.runtime.codec import seq_of_position
from keylane.state.values import Position
from keylane.workload import ScheduledPublisher

T0 = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


def _event(n: int, seconds: float, subscriber: str = "u1") -> Event:
    return parse_event(
        {
            "event_id": f"e{n}",
            "brand_id": "acme",
            "subscriber_id": subscriber,
            "type": "product_viewed",
            "occurred_at": (T0 + timedelta(seconds=seconds)).isoformat(),
            "properties": {"n": n},
        }
    )


class FakeProducer(Producer):
    """Records each send with the clock's time; optionally holds sends until released."""

    def __init__(self, clock: Any, *, hold: bool = False, fail_on: int | None = None) -> None:
        self.clock = clock
        self.sent: list[tuple[str | None, bytes, datetime]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.fail_on = fail_on

    @property
    def topic(self) -> str:
        return "persistent://public/default/fake"

    async def send(
        self,
        data: bytes,
        *,
        key: str | None = None,
        ordering_key: str | None = None,
        properties: Mapping[str, str] | None = None,
        deliver_after: Duration | None = None,
        deliver_at: datetime | float | None = None,
        event_time: float | None = None,
    ) -> MessageId:
        self.sent.append((key, data, self.clock.now()))
        number = len(self.sent)
        if number == self.fail_on:
            raise RuntimeError("broker gone")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await self.release.wait()
        self.in_flight -= 1
        return MessageId(-1, 7, number)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def _until(condition: Any, timeout: float = 10.0) -> None:
    """Poll ``condition`` (progress counters have no event to wait on)."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


async def test_each_event_goes_out_when_the_manual_clock_reaches_it() -> None:
    # Given three events 10 s apart and a clock at the first one's time
    clock = ManualClock(T0)
    producer = FakeProducer(clock)
    events = [_event(1, 0), _event(2, 10), _event(3, 20)]
    publisher = ScheduledPublisher(producer, clock, events, tick=0.001)
    task = asyncio.create_task(publisher.run())
    # Then only the first goes out until the clock moves
    await _until(lambda: publisher.stats().published == 1)
    await asyncio.sleep(0.02)
    assert publisher.stats().published == 1
    assert publisher.stats().next_due == T0 + timedelta(seconds=10)
    # When the clock reaches the second event's time
    clock.advance(10)
    await _until(lambda: publisher.stats().published == 2)
    clock.advance(15)  # past the third: it goes out late, and the lateness is measured
    stats = await asyncio.wait_for(task, 10)
    assert stats.published == 3
    assert stats.done
    assert stats.max_behind_seconds == pytest.approx(5.0)
    assert stats.next_due is None
    # And never before its time
    for (_key, _data, at), event in zip(producer.sent, events, strict=True):
        assert at >= event.occurred_at


async def test_a_scaled_clock_plays_the_schedule_and_nothing_goes_early() -> None:
    # Given 50 events over 20 simulated seconds on a clock 1000x faster than real time
    clock = ScaledClock(T0, speed=1000)
    producer = FakeProducer(clock)
    events = [_event(n, n * 0.4, f"u{n % 7}") for n in range(50)]
    stats = await asyncio.wait_for(ScheduledPublisher(producer, clock, events).run(), 30)
    assert stats.published == stats.total == 50
    for (key, _data, at), event in zip(producer.sent, events, strict=True):
        assert key == event.key
        assert at >= event.occurred_at


async def test_sends_are_pipelined_up_to_the_batch() -> None:
    # Given 25 events all due and a producer whose sends do not return until released
    clock = ManualClock(T0 + timedelta(hours=1))
    producer = FakeProducer(clock, hold=True)
    events = [_event(n, 0) for n in range(25)]
    publisher = ScheduledPublisher(producer, clock, events, batch=10)
    task = asyncio.create_task(publisher.run())
    # Then 10 sends are in flight at once, not one
    await _until(lambda: producer.in_flight == 10)
    await asyncio.sleep(0.01)
    assert producer.most_in_flight == 10
    assert publisher.stats().in_flight == 10
    # When the producer answers, the rest go out
    producer.release.set()
    stats = await asyncio.wait_for(task, 10)
    assert stats.published == 25
    assert producer.most_in_flight == 10


async def test_memory_broker_order_per_key_and_recorded_publications() -> None:
    # Given the embedded broker with a batching producer and a recorder
    clock = ScaledClock(T0, speed=10_000)
    events = [_event(n, n * 0.05, f"u{n % 5}") for n in range(200)]
    recorder = HistoryRecorder()
    async with connect("memory://") as broker:
        consumer = await broker.subscribe(
            "events", "check", subscription_type=SubscriptionType.KEY_SHARED
        )
        producer = await broker.create_producer("events")
        # When the publisher plays the events
        stats = await ScheduledPublisher(producer, clock, events, recorder=recorder).run()
        received = [await consumer.receive(5) for _ in events]
    # Then every event arrived once, each key's events in order
    assert stats.published == 200
    by_key: dict[str, list[str]] = {}
    for message in received:
        assert message.key is not None
        by_key.setdefault(message.key, []).append(parse_event(message.data).event_id)
    for key, ids in by_key.items():
        expected = [e.event_id for e in events if e.key == key]
        assert ids == expected, key
    # And each publication is recorded under the seq the handler derives from the position
    published = recorder.history().published
    assert len(published) == 200
    seqs = {(m.key, seq_of_position(Position.of(m.message_id))) for m in received}
    assert {(p.key, p.seq) for p in published} == seqs
    assert {p.message_id for p in published} == {str(m.message_id) for m in received}


async def test_stop_ends_the_run_before_far_events() -> None:
    clock = ManualClock(T0)
    producer = FakeProducer(clock)
    events = [_event(1, 0), _event(2, 3600)]
    publisher = ScheduledPublisher(producer, clock, events, tick=5.0)
    task = asyncio.create_task(publisher.run())
    await _until(lambda: publisher.stats().published == 1)
    publisher.stop()  # wakes the sleeper at once, though the tick is 5 s
    stats = await asyncio.wait_for(task, 2)
    assert stats.published == 1
    assert stats.next_due == T0 + timedelta(hours=1)
    assert stats.done


async def test_events_after_the_deadline_are_not_published() -> None:
    clock = ManualClock(T0 + timedelta(hours=2))
    producer = FakeProducer(clock)
    events = [_event(1, 0), _event(2, 60), _event(3, 3600)]
    stats = await ScheduledPublisher(producer, clock, events).run(
        deadline=T0 + timedelta(minutes=30)
    )
    assert stats.published == 2
    assert [p[0] for p in producer.sent] == ["acme:u1", "acme:u1"]


async def test_a_failed_send_stops_the_run_and_is_raised() -> None:
    clock = ManualClock(T0)
    producer = FakeProducer(clock, fail_on=3)
    events = [_event(n, 0) for n in range(10)]
    publisher = ScheduledPublisher(producer, clock, events, batch=1)
    with pytest.raises(RuntimeError, match="broker gone"):
        await publisher.run()
    assert publisher.stats().published == 2
    assert publisher.stats().done
    assert len(producer.sent) == 3  # nothing started after the failure


async def test_an_iterable_is_read_lazily() -> None:
    clock = ManualClock(T0)
    producer = FakeProducer(clock)
    pulled = []

    def stream() -> Any:
        for n in range(5):
            pulled.append(n)
            yield _event(n, 0)

    stats = await ScheduledPublisher(producer, clock, stream()).run()
    assert stats.total is None
    assert stats.published == 5
    assert pulled == [0, 1, 2, 3, 4]


async def test_runs_once() -> None:
    clock = ManualClock(T0)
    publisher = ScheduledPublisher(FakeProducer(clock), clock, [_event(1, 0)])
    await publisher.run()
    with pytest.raises(RuntimeError, match="runs once"):
        await publisher.run()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch": 0}, r"^batch: "),
        ({"batch": True}, r"^batch: "),
        ({"tick": 0}, r"^tick: "),
        ({"producer": object()}, r"^producer: "),
        ({"clock": object()}, r"^clock: "),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    clock = ManualClock(T0)
    args: dict[str, Any] = {"producer": FakeProducer(clock), "clock": clock, "events": []}
    args.update(kwargs)
    with pytest.raises(InvalidArgumentError, match=message):
        ScheduledPublisher(**args)


async def test_a_naive_deadline_is_refused() -> None:
    clock = ManualClock(T0)
    publisher = ScheduledPublisher(FakeProducer(clock), clock, [])
    with pytest.raises(InvalidArgumentError, match=r"^deadline: "):
        await publisher.run(deadline=datetime(2026, 11, 27))
