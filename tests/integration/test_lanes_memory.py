"""Lanes on a real MemoryBroker Key_Shared subscription with several consumers (virtual time).

Each consumer runs its own :class:`~keylane.lanes.Lanes`. A shared :class:`Tracker` sees every
handler call of every consumer, so these tests check the *cross-process* guarantee that lanes
only give together with Key_Shared: one handler at a time per key across all consumers, in publish
order, with no loss, also when a consumer joins or leaves mid-stream.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

import pytest

from keylane.brokers.base import (
    Broker,
    Consumer,
    InitialPosition,
    Message,
    SubscriptionType,
)
from keylane.brokers.memory import MemoryBroker
from keylane.lanes import (
    DEAD_LETTER_ATTEMPTS,
    ORIGIN_MESSAGE_ID,
    REAL_TOPIC,
    ExhaustedPolicy,
    HandlerContext,
    LaneConfig,
    Lanes,
    producer_dead_letter_sink,
)

pytestmark = pytest.mark.looptime

TOPIC = "persistent://public/default/lanes-it"
SUB = "lanes"


class Tracker:
    """Global view of handler calls across all consumers."""

    def __init__(self, *, seed: int = 1, fail_seqs: frozenset[tuple[str, int]] = frozenset()):
        self.random = random.Random(seed)
        self.fail_seqs = fail_seqs
        self.running: dict[str, str] = {}  # key -> consumer running it
        self.violations: list[str] = []
        self.done: dict[str, list[int]] = defaultdict(list)
        self.by_consumer: dict[str, set[str]] = defaultdict(set)

    async def handler(self, message: Message, context: HandlerContext) -> None:
        key, seq = context.key, int(message.properties["seq"])
        if key in self.running:
            self.violations.append(
                f"{key}:{seq} on {context.consumer_name} while {self.running[key]} runs it"
            )
        self.running[key] = context.consumer_name
        try:
            await asyncio.sleep(self.random.choice([0.0, 0.001, 0.01, 0.05]))
            if (key, seq) in self.fail_seqs:
                raise RuntimeError(f"poison {key}:{seq}")
            self.done[key].append(seq)
            self.by_consumer[context.consumer_name].add(key)
        finally:
            del self.running[key]


async def subscribe(broker: Broker, name: str, queue: int = 50) -> Consumer:
    return await broker.subscribe(
        TOPIC,
        SUB,
        subscription_type=SubscriptionType.KEY_SHARED,
        consumer_name=name,
        receiver_queue_size=queue,
        initial_position=InitialPosition.EARLIEST,
    )


async def publish(broker: Broker, keys: int, per_key: int, start: int = 0) -> None:
    async with await broker.create_producer(TOPIC, batching=None) as producer:
        for seq in range(start, start + per_key):
            for k in range(keys):
                await producer.send(
                    f"{k}:{seq}".encode(), key=f"user-{k}", properties={"seq": str(seq)}
                )


async def until(condition, timeout: float = 600.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)


def config(**overrides: object) -> LaneConfig:
    base: dict[str, object] = {
        "max_in_flight": 8,
        "handler_timeout": 5.0,
        "on_exhausted": ExhaustedPolicy.PARK,
        "max_buffered_total": 100,
    }
    base.update(overrides)
    return LaneConfig(**base)  # type: ignore[arg-type]


async def test_three_consumers_keep_each_key_serial_and_ordered_across_processes() -> None:
    # Given 3 Key_Shared consumers, each with its own Lanes, and 40 keys x 25 messages
    tracker = Tracker()
    async with MemoryBroker() as broker:
        consumers = [await subscribe(broker, f"c{i}") for i in range(3)]
        lanes = [Lanes(c, tracker.handler, config()) for c in consumers]
        for lane in lanes:
            await lane.start()
        await publish(broker, keys=40, per_key=25)
        await until(lambda: sum(len(v) for v in tracker.done.values()) == 1000)
        for lane in lanes:
            await lane.wait_idle()
        stats = [lane.stats() for lane in lanes]
        for lane in lanes:
            await lane.stop()
    # Then no key ever ran on two consumers (or twice) at once, and each ran in publish order
    assert tracker.violations == []
    for k in range(40):
        assert tracker.done[f"user-{k}"] == list(range(25))
    # and the work was really spread: every consumer handled some keys, none shared a key
    owners = [tracker.by_consumer[f"c{i}"] for i in range(3)]
    assert all(owners)
    assert not owners[0] & owners[1]
    assert not owners[0] & owners[2]
    assert not owners[1] & owners[2]
    assert sum(s.acked for s in stats) == 1000
    assert sum(s.abandoned for s in stats) == 0


async def test_a_consumer_joining_and_one_leaving_mid_stream_loses_nothing() -> None:
    # Given 2 consumers with lanes and a steady stream
    tracker = Tracker(seed=7)
    async with MemoryBroker() as broker:
        c0, c1 = await subscribe(broker, "c0"), await subscribe(broker, "c1")
        l0 = Lanes(c0, tracker.handler, config())
        l1 = Lanes(c1, tracker.handler, config())
        await l0.start()
        await l1.start()
        await publish(broker, keys=20, per_key=10)
        # When a third consumer joins mid-stream
        c2 = await subscribe(broker, "c2")
        l2 = Lanes(c2, tracker.handler, config())
        await l2.start()
        await publish(broker, keys=20, per_key=10, start=10)
        await publish(broker, keys=20, per_key=10, start=20)
        # and the first one leaves (gracefully: 0.02 s grace) while its keys still have backlog
        await asyncio.sleep(0.1)
        assert l0.stats().buffered > 0
        await l0.stop(grace=0.02)
        left_by_c0 = l0.stats()
        await c0.close()
        await publish(broker, keys=20, per_key=10, start=30)
        await until(lambda: all(len(tracker.done[f"user-{k}"]) >= 40 for k in range(20)))
        await l1.wait_idle()
        await l2.wait_idle()
        await l1.stop()
        await l2.stop()
    # Then every message was handled, per key in publish order, never two at once
    assert tracker.violations == []
    for k in range(20):
        assert tracker.done[f"user-{k}"] == list(range(40)), k
    # and the scenario really moved work: c2 took keys, c0 left messages behind for others
    assert tracker.by_consumer["c2"]
    assert tracker.by_consumer["c0"]
    assert left_by_c0.abandoned > 0


async def test_poison_messages_go_to_the_dead_letter_topic_and_the_key_goes_on() -> None:
    # Given a message that always fails, DEAD_LETTER with a producer sink
    tracker = Tracker(fail_seqs=frozenset({("user-3", 2)}))
    async with MemoryBroker() as broker:
        dlq = await broker.subscribe(
            TOPIC + "-DLQ", "dlq-reader", initial_position=InitialPosition.EARLIEST
        )
        dead_producer = await broker.create_producer(TOPIC + "-DLQ", batching=None)
        consumers = [await subscribe(broker, f"c{i}") for i in range(2)]
        lanes = [
            Lanes(
                c,
                tracker.handler,
                config(on_exhausted=ExhaustedPolicy.DEAD_LETTER, max_attempts=3, retry_backoff=0.1),
                dead_letter=producer_dead_letter_sink(dead_producer),
            )
            for c in consumers
        ]
        for lane in lanes:
            await lane.start()
        await publish(broker, keys=5, per_key=6)
        await until(lambda: sum(len(v) for v in tracker.done.values()) == 29)
        dead = await dlq.receive(timeout=10)
        for lane in lanes:
            await lane.wait_idle()
        stats = [lane.stats() for lane in lanes]
        for lane in lanes:
            await lane.stop()
    # Then the poison message went to the DLQ with its origin and error, once
    assert dead.key == "user-3"
    assert dead.properties["seq"] == "2"
    assert dead.properties[REAL_TOPIC] == TOPIC
    assert dead.properties[ORIGIN_MESSAGE_ID]
    assert dead.properties[DEAD_LETTER_ATTEMPTS] == "3"
    # and user-3 went on after it, in order
    assert tracker.done["user-3"] == [0, 1, 3, 4, 5]
    assert sum(s.dead_lettered for s in stats) == 1
    assert sum(s.acked for s in stats) == 30
    assert sum(s.failed for s in stats) == 3
    assert tracker.violations == []
