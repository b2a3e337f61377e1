"""Lanes on the fake consumer: timeouts, retries, dead letters, parking, misbehaving handlers."""

from __future__ import annotations

import asyncio
import logging

import pytest

from keylane.brokers.base import Message
from keylane.lanes import (
    ExhaustedPolicy,
    HandlerContext,
    HandlerResultError,
    HandlerTimeoutError,
    LaneConfig,
    Lanes,
)
from tests.unit.lanes.fakes import FakeConsumer, Probe, eventually, make_message, run_until, seq_of

PARK = ExhaustedPolicy.PARK


class SinkRecorder:
    """A dead-letter sink that records its calls; ``fail`` makes it raise."""

    def __init__(self) -> None:
        self.calls: list[tuple[Message, BaseException, int]] = []
        self.fail: BaseException | None = None
        self.hang = False

    async def __call__(self, message: Message, error: BaseException, attempts: int) -> None:
        if self.hang:
            await asyncio.sleep(3600)
        if self.fail is not None:
            raise self.fail
        self.calls.append((message, error, attempts))


@pytest.mark.looptime
async def test_a_failing_message_is_retried_with_backoff_before_later_messages_run() -> None:
    # Given key "a" whose first message fails twice, then succeeds; and a busy second key "b"
    consumer = FakeConsumer(
        [make_message("a", i, entry=i) for i in range(3)]
        + [make_message("b", i, entry=10 + i) for i in range(10)]
    )
    probe = Probe(
        duration=lambda m, a: 1.0 if m.key == "b" else 0.0,
        fail=lambda m, a: m.key == "a" and seq_of(m) == 0 and a <= 2,
    )
    config = LaneConfig(
        max_attempts=3, retry_backoff=2.0, retry_backoff_max=10.0, on_exhausted=PARK
    )
    async with Lanes(consumer, probe, config) as lanes:
        await run_until(lanes, lambda: len(consumer.acked) == 13)
    # Then a:0 ran at t=0, t=2 (backoff 2) and t=6 (backoff 4), and a:1 only after it succeeded
    a_starts = [(s.seq, s.attempt, s.time) for s in probe.starts if s.key == "a"]
    assert a_starts == [(0, 1, 0.0), (0, 2, 2.0), (0, 3, 6.0), (1, 1, 6.0), (2, 1, 6.0)]
    assert probe.completed_seqs("a") == [0, 1, 2]
    # and "b" kept flowing during "a"'s backoff (no slot was held while waiting)
    assert [s.time for s in probe.starts if s.key == "b"][:6] == [0, 1, 2, 3, 4, 5]
    stats = lanes.stats()
    assert (stats.failed, stats.retried, stats.completed, stats.acked) == (2, 2, 13, 13)
    assert probe.violations == []


@pytest.mark.looptime
async def test_a_hanging_handler_times_out_is_retried_then_dead_lettered() -> None:
    # Given a handler that hangs on a:0 forever and a 5 s timeout
    consumer = FakeConsumer([make_message("a", 0), make_message("a", 1), make_message("b", 2)])
    probe = Probe(duration=lambda m, a: 3600.0 if seq_of(m) == 0 else 0.0)
    sink = SinkRecorder()
    config = LaneConfig(handler_timeout=5.0, max_attempts=2, retry_backoff=1.0)
    async with Lanes(consumer, probe, config, dead_letter=sink) as lanes:
        await run_until(lanes, lambda: len(consumer.acked) == 3)
    # Then a:0 was tried twice (t=0, t=6), dead-lettered with a timeout error, acked; a:1 followed
    assert [(s.seq, s.attempt, s.time) for s in probe.starts if s.key == "a"] == [
        (0, 1, 0.0),
        (0, 2, 6.0),
        (1, 1, 11.0),
    ]
    assert len(sink.calls) == 1
    message, error, attempts = sink.calls[0]
    assert seq_of(message) == 0
    assert attempts == 2
    assert isinstance(error, HandlerTimeoutError)
    assert isinstance(error, TimeoutError)
    assert "within 5 s" in str(error)
    assert probe.completed_seqs("a") == [1]
    assert [seq_of(m) for m in consumer.acked] == [2, 0, 1]
    stats = lanes.stats()
    assert (stats.failed, stats.timed_out, stats.retried, stats.dead_lettered) == (2, 2, 1, 1)
    assert stats.acked == 3
    assert consumer.nacked == []


@pytest.mark.looptime
async def test_dead_letter_sink_failure_parks_the_key_and_keeps_the_message() -> None:
    # Given a message that always fails and a sink that fails too
    consumer = FakeConsumer([make_message("a", 0), make_message("a", 1)])
    probe = Probe(fail=lambda m, a: seq_of(m) == 0)
    sink = SinkRecorder()
    sink.fail = OSError("DLQ down")
    config = LaneConfig(max_attempts=2, retry_backoff=0.5)
    async with Lanes(consumer, probe, config, dead_letter=sink) as lanes:
        await run_until(lanes, lambda: lanes.stats().parked == 1)
        parked = lanes.stats()
        # When the sink recovers and the key is resumed
        sink.fail = None
        lanes.resume("a")
        await run_until(lanes, lambda: len(consumer.acked) == 2)
    # Then nothing was acked while the sink failed; the key stayed parked with the error shown
    assert parked.parked_keys == {"a": "dead-letter sink: OSError: DLQ down"}
    assert parked.dead_letter_failures == 1
    assert parked.acked == 0
    assert parked.queue_depths == {"a": 2}
    # and after resume the message got fresh attempts, was dead-lettered, and a:1 followed
    assert [(s.seq, s.attempt) for s in probe.starts] == [(0, 1), (0, 2), (0, 1), (0, 2), (1, 1)]
    assert [seq_of(m) for m in consumer.acked] == [0, 1]
    assert len(sink.calls) == 1


@pytest.mark.looptime
async def test_a_hanging_dead_letter_sink_is_bounded_by_the_handler_timeout() -> None:
    consumer = FakeConsumer([make_message("a", 0)])
    sink = SinkRecorder()
    sink.hang = True
    config = LaneConfig(max_attempts=1, handler_timeout=2.0)
    lanes = Lanes(consumer, Probe(fail=lambda m, a: True), config, dead_letter=sink)
    async with lanes:
        await run_until(lanes, lambda: lanes.stats().parked == 1)
        assert asyncio.get_running_loop().time() == pytest.approx(2.0, abs=0.01)
    assert "a" in lanes.stats().parked_keys
    assert consumer.acked == []


@pytest.mark.looptime
async def test_park_stops_the_key_keeps_order_and_resume_retries_the_head() -> None:
    # Given key "a" whose first message fails until we allow it, and another key "b"
    allow = {"ok": False}
    consumer = FakeConsumer(
        [make_message("a", i, entry=i) for i in range(3)]
        + [make_message("b", i, entry=10 + i) for i in range(3)]
    )
    probe = Probe(fail=lambda m, a: m.key == "a" and seq_of(m) == 0 and not allow["ok"])
    config = LaneConfig(max_attempts=2, retry_backoff=1.0, on_exhausted=PARK)
    async with Lanes(consumer, probe, config) as lanes:
        await run_until(lanes, lambda: lanes.stats().parked == 1 and len(consumer.acked) == 3)
        parked = lanes.stats()
        await asyncio.sleep(100)  # nothing happens to a parked key on its own
        assert len(probe.starts) == 5
        allow["ok"] = True
        lanes.resume("a")
        await run_until(lanes, lambda: len(consumer.acked) == 6)
    # Then while parked, "a" held all 3 messages unprocessed and unacked, "b" completed
    assert parked.parked_keys.keys() == {"a"}
    assert "RuntimeError: injected failure of a:0 attempt 2" in parked.parked_keys["a"]
    assert parked.queue_depths == {"a": 3}
    assert parked.in_flight_keys == frozenset()
    assert probe.completed_seqs("b") == [0, 1, 2]
    # and after resume the head got attempt 1 again, then the rest in order
    assert [(s.seq, s.attempt) for s in probe.starts if s.key == "a"] == [
        (0, 1),
        (0, 2),
        (0, 1),
        (1, 1),
        (2, 1),
    ]
    assert probe.completed_seqs("a") == [0, 1, 2]
    assert lanes.stats().parked_keys == {}


def sync_returns_none(message: Message, context: HandlerContext) -> None:
    return None


def sync_returns_int(message: Message, context: HandlerContext) -> int:
    return 42


def sync_raises(message: Message, context: HandlerContext) -> None:
    raise KeyError("boom")


async def raises_cancelled(message: Message, context: HandlerContext) -> None:
    raise asyncio.CancelledError


@pytest.mark.parametrize(
    ("handler", "error_type", "text"),
    [
        (sync_returns_none, HandlerResultError, "handler returned NoneType, not an awaitable"),
        (sync_returns_int, HandlerResultError, "handler returned int, not an awaitable"),
        (sync_raises, KeyError, "boom"),
        (raises_cancelled, asyncio.CancelledError, ""),
    ],
)
async def test_misbehaving_handlers_count_as_failures_and_never_kill_the_loop(
    handler, error_type, text
) -> None:
    # Given a bad handler, DEAD_LETTER, 2 attempts and 3 keys of 2 messages
    consumer = FakeConsumer([make_message(k, i) for i in range(2) for k in "abc"])
    sink = SinkRecorder()
    config = LaneConfig(max_attempts=2, retry_backoff=0)
    async with Lanes(consumer, handler, config, dead_letter=sink) as lanes:
        await run_until(lanes, lambda: len(consumer.acked) == 6)
        stats = lanes.stats()
    # Then every message failed twice, was dead-lettered with the clear error, then acked
    assert len(sink.calls) == 6
    for _, error, attempts in sink.calls:
        assert isinstance(error, error_type)
        assert text in str(error)
        assert attempts == 2
    assert (stats.failed, stats.retried, stats.dead_lettered, stats.acked) == (12, 6, 6, 6)
    # and the receive loop was still alive at the end
    assert stats.receiving
    assert stats.state == "running"


def test_handler_result_error_is_a_type_error() -> None:
    assert issubclass(HandlerResultError, TypeError)


async def test_a_failed_ack_is_logged_left_for_redelivery_and_the_key_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given acks of a:0 fail
    consumer = FakeConsumer([make_message("a", 0), make_message("a", 1), make_message("b", 2)])
    consumer.fail_ack = lambda m: seq_of(m) == 0
    probe = Probe()
    with caplog.at_level(logging.WARNING, logger="keylane.lanes"):
        lanes = Lanes(consumer, probe, LaneConfig(on_exhausted=PARK))
        async with lanes:
            await run_until(lanes, lambda: len(consumer.acked) == 2)
            stats = lanes.stats()
    # Then the handler ran once per message, a:1 went on, and a:0 is left for redelivery
    assert probe.completed_seqs("a") == [0, 1]
    assert sorted(seq_of(m) for m in consumer.acked) == [1, 2]
    assert (stats.ack_failures, stats.acked, stats.completed) == (1, 2, 3)
    assert "acknowledge" in caplog.text
    assert "left for redelivery" in caplog.text
    # and stopping asked the broker to redeliver it (it is back in the consumer's queue)
    assert consumer.redeliver_calls == 1
    assert consumer.queued == 1
    assert consumer.nacked == []


async def test_receive_errors_are_retried_and_a_closed_consumer_ends_receiving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = FakeConsumer([make_message("a", 0)])
    consumer.receive_error = ConnectionError("broker blip")
    probe = Probe()
    with caplog.at_level(logging.WARNING, logger="keylane.lanes"):
        async with Lanes(consumer, probe, LaneConfig(on_exhausted=PARK)) as lanes:
            await run_until(lanes, lambda: len(consumer.acked) == 1)
            assert lanes.stats().receive_errors == 1
            await consumer.close()
            await eventually(lambda: not lanes.stats().receiving, timeout=5)
    assert "receive() failed" in caplog.text
    assert "is closed" in caplog.text
