"""Lanes on the fake consumer: construction, per-key serial order, concurrency, acks, stats."""

from __future__ import annotations

import asyncio
import logging

import pytest

from keylane.brokers.base import Message
from keylane.errors import InvalidArgumentError
from keylane.lanes import (
    ExhaustedPolicy,
    HandlerContext,
    LaneConfig,
    Lanes,
    LaneStats,
)
from tests.unit.lanes.fakes import FakeConsumer, Probe, make_message, run_until, seq_of

PARK = LaneConfig(on_exhausted=ExhaustedPolicy.PARK)


async def noop(message: Message, context: HandlerContext) -> None:
    return None


def interleaved(keys: list[str], per_key: int) -> list[Message]:
    """``per_key`` messages of every key, round-robin, seq 0.. per key; unique entry ids."""
    out: list[Message] = []
    for seq in range(per_key):
        for key in keys:
            out.append(make_message(key, seq, entry=len(out)))
    return out


# ---------------------------------------------------------------- construction


def test_dead_letter_policy_without_a_sink_is_rejected() -> None:
    # Given the default config (DEAD_LETTER) and no sink, then construction fails clearly.
    with pytest.raises(InvalidArgumentError, match=r"needs a dead_letter sink.*PARK"):
        Lanes(FakeConsumer(), noop)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("not a consumer", noop), {}, "consumer must be a keylane Consumer, not str"),
        ((None, noop), {}, "consumer must be a keylane Consumer, not NoneType"),
        (("C", 42), {}, "handler must be an async callable, not 42"),
        (("C", noop, {"max_in_flight": 3}), {}, "config must be a LaneConfig"),
        (("C", noop, PARK), {"key_of": "key"}, "key_of must be callable"),
        (("C", noop, PARK), {"dead_letter": 3}, "dead_letter must be an async callable"),
    ],
)
def test_bad_arguments_are_rejected(args, kwargs, message) -> None:
    args = tuple(FakeConsumer() if a == "C" else a for a in args)
    with pytest.raises(InvalidArgumentError, match=message):
        Lanes(*args, **kwargs)


async def test_lifecycle_misuse_is_reported() -> None:
    lanes = Lanes(FakeConsumer(), noop, PARK)
    with pytest.raises(RuntimeError, match=r"not running|new"):
        lanes.resume("k")
    await lanes.start()
    with pytest.raises(RuntimeError, match="already running"):
        await lanes.start()
    with pytest.raises(InvalidArgumentError, match="key 'k' is not parked"):
        lanes.resume("k")
    with pytest.raises(InvalidArgumentError, match="grace must be a non-negative number"):
        await lanes.stop(-1)
    await lanes.stop()
    await lanes.stop()  # idempotent
    with pytest.raises(RuntimeError, match="already stopped"):
        await lanes.start()
    with pytest.raises(RuntimeError, match="stopped"):
        lanes.resume("k")


async def test_stop_before_start_is_a_no_op() -> None:
    consumer = FakeConsumer([make_message("a", 0)])
    lanes = Lanes(consumer, noop, PARK)
    await lanes.stop()
    assert lanes.stats().state == "stopped"
    assert consumer.delivered == []
    assert consumer.redeliver_calls == 0


# ---------------------------------------------------------------- ordering and concurrency


@pytest.mark.looptime
async def test_one_key_at_a_time_in_receive_order_many_keys_at_once() -> None:
    # Given 8 keys x 20 messages whose handlers take varying (loop) time
    keys = [f"k{i}" for i in range(8)]
    consumer = FakeConsumer(interleaved(keys, 20))
    probe = Probe(duration=lambda m, a: 0.01 * ((seq_of(m) * 7 + len(m.key or "")) % 5 + 1))
    lanes = Lanes(consumer, probe, LaneConfig(max_in_flight=4, on_exhausted=ExhaustedPolicy.PARK))
    # When lanes consume everything
    async with lanes:
        await run_until(lanes, lambda: len(consumer.acked) == 160)
    # Then no key ever ran twice at once, keys ran concurrently up to the cap, order held
    assert probe.violations == []
    assert probe.max_concurrent == 4
    for key in keys:
        assert probe.completed_seqs(key) == list(range(20))
    # and every message was acked exactly once, individually, never nacked
    assert sorted(m.message_id.entry_id for m in consumer.acked) == list(range(160))
    assert consumer.nacked == []
    stats = lanes.stats()
    assert (stats.received, stats.completed, stats.acked, stats.failed) == (160, 160, 160, 0)


@pytest.mark.looptime
async def test_max_in_flight_one_rotates_between_keys() -> None:
    # Given one slot and two keys with 5 messages each, all buffered before the first finishes
    consumer = FakeConsumer(
        [make_message("a", i, entry=i) for i in range(5)]
        + [make_message("b", i, entry=5 + i) for i in range(5)]
    )
    probe = Probe(duration=lambda m, a: 1.0)
    lanes = Lanes(consumer, probe, LaneConfig(max_in_flight=1, on_exhausted=ExhaustedPolicy.PARK))
    async with lanes:
        await run_until(lanes, lambda: len(consumer.acked) == 10)
    # Then the slot alternates between the keys instead of draining "a" first
    assert [k for k, _ in probe.completions] == ["a", "b"] * 5
    assert probe.max_concurrent == 1


@pytest.mark.looptime
async def test_each_message_is_acked_as_soon_as_its_handler_succeeds() -> None:
    # Given a slow key "slow" (10 s) and a fast key "fast" (1 s per message)
    consumer = FakeConsumer(
        [make_message("slow", 0, entry=0)]
        + [make_message("fast", i, entry=1 + i) for i in range(3)]
    )
    probe = Probe(duration=lambda m, a: 10.0 if m.key == "slow" else 1.0)
    lanes = Lanes(consumer, probe, PARK)
    async with lanes:
        await run_until(lanes, lambda: len(consumer.acked) == 4)
    # Then each fast message was acked right when it finished, long before the slow one
    acks = {(m.key, seq_of(m)): t for m, t in zip(consumer.acked, consumer.ack_times, strict=True)}
    assert acks[("fast", 0)] == pytest.approx(1.0, abs=0.01)
    assert acks[("fast", 1)] == pytest.approx(2.0, abs=0.01)
    assert acks[("fast", 2)] == pytest.approx(3.0, abs=0.01)
    assert acks[("slow", 0)] == pytest.approx(10.0, abs=0.01)


async def test_handler_context_carries_key_attempt_and_consumer_name() -> None:
    consumer = FakeConsumer([make_message("user-1", 0)], name="c-7")
    probe = Probe()
    async with Lanes(consumer, probe, PARK) as lanes:
        await run_until(lanes, lambda: len(consumer.acked) == 1)
    assert probe.contexts == [HandlerContext(key="user-1", attempt=1, consumer_name="c-7")]


async def test_default_key_is_the_sticky_key() -> None:
    # ordering key wins over partition key; no key at all is "NONE_KEY"
    consumer = FakeConsumer(
        [
            make_message("p", 0, ordering_key="o"),
            make_message("p", 1),
            make_message(None, 2),
        ]
    )
    probe = Probe()
    async with Lanes(consumer, probe, PARK) as lanes:
        await run_until(lanes, lambda: len(consumer.acked) == 3)
    assert sorted(c.key for c in probe.contexts) == ["NONE_KEY", "o", "p"]


async def test_key_of_chooses_the_lane(caplog: pytest.LogCaptureFixture) -> None:
    # Given a key_of that reads a property and fails on messages without it
    def key_of(message: Message) -> str:
        return message.properties["user"]

    consumer = FakeConsumer(
        [
            make_message("x", 0, properties={"user": "u1"}),
            make_message("y", 1, properties={"user": "u1"}),
            make_message("z", 2),
        ]
    )
    probe = Probe()
    with caplog.at_level(logging.ERROR, logger="keylane.lanes"):
        async with Lanes(consumer, probe, PARK, key_of=key_of) as lanes:
            await run_until(lanes, lambda: len(consumer.acked) == 3)
    # Then both "user=u1" messages share lane u1; the bad one falls back to its sticky key
    assert sorted((c.key, s.seq) for c, s in zip(probe.contexts, probe.starts, strict=True)) == [
        ("u1", 0),
        ("u1", 1),
        ("z", 2),
    ]
    assert "key_of failed" in caplog.text


async def test_async_handler_return_values_are_ignored() -> None:
    async def returns_stuff(message: Message, context: HandlerContext) -> object:
        return {"anything": 1}

    consumer = FakeConsumer([make_message("a", 0)])
    async with Lanes(consumer, returns_stuff, PARK) as lanes:
        await run_until(lanes, lambda: len(consumer.acked) == 1)
    assert lanes.stats().failed == 0


# ---------------------------------------------------------------- stats and wait_idle


@pytest.mark.looptime
async def test_stats_snapshot_shows_in_flight_ages_and_stalls_on_the_loop_clock() -> None:
    # Given key "a" whose handler takes 50 s (stall threshold 20 s) and 3 queued behind it
    consumer = FakeConsumer([make_message("a", i) for i in range(4)])
    probe = Probe(duration=lambda m, a: 50.0)
    config = LaneConfig(
        stall_threshold=20.0, on_exhausted=ExhaustedPolicy.PARK, handler_timeout=None
    )
    async with Lanes(consumer, probe, config) as lanes:
        await asyncio.sleep(10)
        early = lanes.stats()
        await asyncio.sleep(15)
        late = lanes.stats()
    # Then the snapshot reports the key in flight with its age on the loop clock
    assert isinstance(early, LaneStats)
    assert early.state == "running"
    assert early.receiving
    assert early.in_flight_keys == {"a"}
    assert early.in_flight == 1
    assert early.in_flight_age["a"] == pytest.approx(10.0, abs=0.01)
    assert early.queue_depths == {"a": 4}
    assert early.buffered == 4
    assert early.stalled_keys == frozenset()
    assert late.stalled_keys == {"a"}
    assert late.in_flight_age["a"] == pytest.approx(25.0, abs=0.01)
    # and snapshots are frozen and detached from the live state
    with pytest.raises(AttributeError):
        early.buffered = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        early.queue_depths["a"] = 0  # type: ignore[index]
    assert early.queue_depths == {"a": 4}


async def test_wait_idle_times_out_while_a_handler_runs() -> None:
    gate = asyncio.Event()
    consumer = FakeConsumer([make_message("a", 0)])
    lanes = Lanes(consumer, Probe(gate=gate, gated=frozenset({"a"})), PARK)
    await lanes.wait_idle(timeout=0.01)  # nothing to do yet: returns at once
    await lanes.start()
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        await lanes.wait_idle(timeout=0.05)
    gate.set()
    await lanes.wait_idle(timeout=1.0)
    assert len(consumer.acked) == 1
    await lanes.stop()


@pytest.mark.looptime
async def test_throughput_is_not_limited_by_a_single_key() -> None:
    # Given 100 keys x 10 messages of 1 s each and 100 slots, then everything takes ~10 s, not 1000
    consumer = FakeConsumer(interleaved([f"k{i}" for i in range(100)], 10))
    probe = Probe(duration=lambda m, a: 1.0)
    loop = asyncio.get_running_loop()
    async with Lanes(
        consumer, probe, LaneConfig(max_in_flight=100, on_exhausted=ExhaustedPolicy.PARK)
    ) as lanes:
        await run_until(lanes, lambda: len(consumer.acked) == 1000)
        elapsed = loop.time()
    assert elapsed == pytest.approx(10.0, abs=0.1)
    assert probe.violations == []
