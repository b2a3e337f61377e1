"""LaneGroup on the embedded broker: N Key_Shared consumers x lanes, DLQ, scaling, stop order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from keylane.brokers.base import InitialPosition, Message, SubscriptionType
from keylane.brokers.memory import MemoryBroker
from keylane.check import HistoryRecorder, check, recorded, recorded_drops
from keylane.errors import InvalidArgumentError
from keylane.lanes import (
    ORIGIN_MESSAGE_ID,
    ExhaustedPolicy,
    HandlerContext,
    LaneConfig,
    LaneGroup,
    merge_stats,
)

pytestmark = pytest.mark.looptime

TOPIC = "persistent://public/default/group"


async def publish(broker: MemoryBroker, keys: int, per_key: int, recorder: HistoryRecorder) -> None:
    async with await broker.create_producer(TOPIC, batching=None) as producer:
        for seq in range(per_key):
            for k in range(keys):
                mid = await producer.send(b"x", key=f"u{k}", properties={"seq": str(seq)})
                recorder.published(f"u{k}", seq, str(mid))


async def until(condition: Callable[[], bool], timeout: float = 600.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - polling a snapshot, on virtual time
            await asyncio.sleep(0.05)


async def test_group_consumes_with_n_consumers_and_merges_stats() -> None:
    # Given a group of 3 consumers
    recorder = HistoryRecorder(clock=asyncio.get_running_loop().time)

    async def handler(message: Message, context: HandlerContext) -> None:
        await asyncio.sleep(0.01)

    async with MemoryBroker() as broker:
        group = LaneGroup(
            broker,
            TOPIC,
            "decisions",
            recorded(handler, recorder),
            consumers=3,
            config=LaneConfig(max_in_flight=4, on_exhausted=ExhaustedPolicy.PARK),
            name="pod-a",
        )
        async with group:
            assert group.consumer_names == ("pod-a-0", "pod-a-1", "pod-a-2")
            await publish(broker, keys=30, per_key=5, recorder=recorder)
            await until(lambda: group.stats().total.completed == 150)
            stats = group.stats()
    # Then the work was spread, merged counters add up, and the checker is clean
    assert set(stats.by_consumer) == {"pod-a-0", "pod-a-1", "pod-a-2"}
    assert all(s.completed > 0 for s in stats.by_consumer.values())
    assert sum(s.acked for s in stats.by_consumer.values()) == stats.total.acked == 150
    report = check(recorder.history(), strict_order=True)
    assert report.clean, report.counts()
    assert group.stats().total.state == "stopped"


async def test_scale_out_and_in_under_load_keeps_keys_exclusive() -> None:
    # Given a group of 2 under a steady backlog
    recorder = HistoryRecorder(clock=asyncio.get_running_loop().time)

    async def handler(message: Message, context: HandlerContext) -> None:
        await asyncio.sleep(0.02)

    async with MemoryBroker() as broker:
        group = LaneGroup(
            broker,
            TOPIC,
            "decisions",
            recorded(handler, recorder),
            consumers=2,
            config=LaneConfig(max_in_flight=4, on_exhausted=ExhaustedPolicy.PARK),
            on_dropped=recorded_drops(recorder),
        )
        async with group:
            await publish(broker, keys=40, per_key=10, recorder=recorder)
            await asyncio.sleep(0.2)
            # When a consumer joins, then the first one leaves, mid-stream
            added = await group.add_consumer()
            await asyncio.sleep(0.2)
            removed = await group.remove_consumer("lanes-0", grace=0.05)
            await until(
                lambda: (
                    {(a.key, a.seq) for a in recorder.history().attempts if a.outcome == "ok"}
                    >= {(p.key, p.seq) for p in recorder.history().published}
                )
            )
            assert group.consumer_names == ("lanes-1", added)
            total = group.stats().total
    # Then nothing was lost, no key ran twice at once, the order held
    assert removed == "lanes-0"
    report = check(recorder.history())
    assert report.exclusivity_count == 0
    assert report.order_count == 0
    assert report.lost_count == 0
    assert total.completed >= 400  # the retired consumer's counters are kept


async def test_exhausted_messages_go_to_the_dead_letter_topic() -> None:
    async def handler(message: Message, context: HandlerContext) -> None:
        if message.properties["seq"] == "1":
            raise RuntimeError("poison")

    async with MemoryBroker() as broker:
        dlq = await broker.subscribe(
            f"{TOPIC}-decisions-DLQ",
            "inspect",
            subscription_type=SubscriptionType.SHARED,
            initial_position=InitialPosition.EARLIEST,
        )
        group = LaneGroup(
            broker,
            TOPIC,
            "decisions",
            handler,
            config=LaneConfig(max_attempts=2, retry_backoff=0.01),
        )
        async with group:
            async with await broker.create_producer(TOPIC, batching=None) as producer:
                ids = [
                    await producer.send(b"x", key="k", properties={"seq": str(i)}) for i in range(3)
                ]
            await until(lambda: group.stats().total.acked == 3)
        dead = await dlq.receive(timeout=5)
    assert dead.properties[ORIGIN_MESSAGE_ID] == str(ids[1])
    assert group.stats().total.dead_lettered == 1


async def test_stop_stops_lanes_before_closing_consumers() -> None:
    closed_during_handler: list[bool] = []
    group_ref: list[LaneGroup] = []

    async def handler(message: Message, context: HandlerContext) -> None:
        await asyncio.sleep(1.0)
        consumer_closed = any(s.consumer_closed for s in group_ref[0].stats().by_consumer.values())
        closed_during_handler.append(consumer_closed)

    async with MemoryBroker() as broker:
        group = LaneGroup(broker, TOPIC, "decisions", handler, consumers=2)
        group_ref.append(group)
        async with group:
            async with await broker.create_producer(TOPIC, batching=None) as producer:
                for k in range(6):
                    await producer.send(b"x", key=f"k{k}", properties={"seq": "0"})
            await until(lambda: group.stats().total.in_flight > 0)
        # (leaving the block stops the group with the default 10 s grace)
    assert closed_during_handler
    assert not any(closed_during_handler)
    assert group.stats().total.dropped == 0


async def test_bad_arguments_and_lifecycle() -> None:
    async def handler(message: Message, context: HandlerContext) -> None:
        return None

    async with MemoryBroker() as broker:
        with pytest.raises(InvalidArgumentError, match="consumers"):
            LaneGroup(broker, TOPIC, "s", handler, consumers=0)
        with pytest.raises(InvalidArgumentError, match="broker"):
            LaneGroup("memory://", TOPIC, "s", handler)  # type: ignore[arg-type]
        group = LaneGroup(broker, TOPIC, "s", handler)
        with pytest.raises(RuntimeError):
            await group.add_consumer()
        async with group:
            with pytest.raises(InvalidArgumentError, match="last consumer"):
                await group.remove_consumer()
            with pytest.raises(InvalidArgumentError, match="no consumer"):
                await group.remove_consumer("nope")
        with pytest.raises(RuntimeError):
            await group.start()
        await group.stop()  # idempotent


def test_merge_of_nothing_is_empty() -> None:
    merged = merge_stats([])
    assert merged.completed == 0
    assert merged.in_flight_keys == frozenset()
