"""Issue 7 item 10: acknowledging messages of a batch, with and without batch-index acks.

Pulsar acknowledges at batch-index level only when both switches are on: the broker's
``acknowledgmentAtBatchIndexLevelEnabled`` (``MemoryBrokerConfig.
acknowledgment_at_batch_index_level_enabled``) and the client's ``batch_index_ack_enabled``.
Otherwise (the default) an entry is acknowledged once all its messages are, and every redelivery
brings the whole batch back with the entry's redelivery count. ``tests/contract/test_batch_acks.py``
holds the same rows against a real Pulsar; these cover every switch combination and the
redelivery paths the contract suite cannot time on Pulsar (ack timeout, cumulative acks).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from keylane.brokers.base import (
    BatchingType,
    Consumer,
    DeadLetterPolicy,
    InitialPosition,
    Message,
    SubscriptionType,
)
from keylane.brokers.memory import MemoryBroker, MemoryBrokerConfig
from keylane.errors import InvalidArgumentError
from tests.unit.memory.conftest import drain, texts

pytestmark = pytest.mark.looptime

SHARED = SubscriptionType.SHARED
#: (broker switch, client switch) -> whether acked batch-mates are left out of redeliveries.
MODES = {
    (False, False): False,
    (True, False): False,
    (False, True): False,
    (True, True): True,
}
BATCH = ["m0", "m1", "m2"]


@pytest.fixture(params=list(MODES), ids=lambda m: f"broker={m[0]}-client={m[1]}")
def mode(request: pytest.FixtureRequest) -> tuple[bool, bool]:
    return tuple(request.param)


@pytest.fixture
async def broker(mode: tuple[bool, bool]) -> AsyncIterator[MemoryBroker]:
    config = MemoryBrokerConfig(
        failover_delay=0, acknowledgment_at_batch_index_level_enabled=mode[0]
    )
    async with MemoryBroker(config) as b:
        yield b


def leftover(mode: tuple[bool, bool], acked: list[str]) -> list[str]:
    """What a redelivery of the batch brings, after ``acked`` were acknowledged."""
    if MODES[mode]:
        return [m for m in BATCH if m not in acked]
    return list(BATCH)


async def consumer_of(
    broker: MemoryBroker, mode: tuple[bool, bool], sub_type: SubscriptionType, **options: object
) -> Consumer:
    return await broker.subscribe(
        "t",
        "sub",
        subscription_type=sub_type,
        initial_position=InitialPosition.EARLIEST,
        batch_index_ack_enabled=mode[1],
        **options,  # type: ignore[arg-type]
    )


async def send_batch(broker: MemoryBroker) -> None:
    producer = await broker.create_producer(
        "t", batching=BatchingType.KEY_BASED, batching_max_publish_delay=0.05
    )
    await asyncio.gather(*(producer.send(p.encode(), key="k") for p in BATCH))
    await producer.close()


async def receive_batch(consumer: Consumer) -> list[Message]:
    got = [await consumer.receive(5) for _ in BATCH]
    assert texts(got) == BATCH
    assert len({m.message_id.entry_id for m in got}) == 1, "expected one batch entry"
    return got


async def test_nack_of_one_message_redelivers_per_mode(
    broker: MemoryBroker, mode: tuple[bool, bool]
) -> None:
    consumer = await consumer_of(broker, mode, SHARED, negative_ack_redelivery_delay=0.1)
    await send_batch(broker)
    got = await receive_batch(consumer)
    await consumer.acknowledge(got[0])
    await consumer.acknowledge(got[1])
    await consumer.negative_acknowledge(got[2])
    again = await drain(consumer, quiet=1)
    assert texts(again) == leftover(mode, ["m0", "m1"])
    assert [m.redelivery_count for m in again] == [1] * len(again)


async def test_close_after_acking_two_redelivers_per_mode(
    broker: MemoryBroker, mode: tuple[bool, bool]
) -> None:
    consumer = await consumer_of(broker, mode, SubscriptionType.KEY_SHARED)
    await send_batch(broker)
    got = await receive_batch(consumer)
    await consumer.acknowledge(got[0])
    await consumer.acknowledge(got[1])
    await consumer.close()
    fresh = await consumer_of(broker, mode, SubscriptionType.KEY_SHARED)
    assert texts(await drain(fresh)) == leftover(mode, ["m0", "m1"])


async def test_ack_timeout_redelivers_a_partly_acked_batch_per_mode(
    broker: MemoryBroker, mode: tuple[bool, bool]
) -> None:
    consumer = await consumer_of(broker, mode, SHARED, ack_timeout=10)
    await send_batch(broker)
    got = await receive_batch(consumer)
    await consumer.acknowledge(got[0])
    # The entry stays tracked until it is acked as a whole (the C++ client tracks entries).
    again = [await consumer.receive(30) for _ in leftover(mode, ["m0"])]
    assert texts(again) == leftover(mode, ["m0"])
    assert [m.redelivery_count for m in again] == [1] * len(again)


async def test_redeliver_unacknowledged_brings_back_the_batch_per_mode(
    broker: MemoryBroker, mode: tuple[bool, bool]
) -> None:
    consumer = await consumer_of(broker, mode, SHARED)
    await send_batch(broker)
    got = await receive_batch(consumer)
    await consumer.acknowledge(got[1])
    await consumer.redeliver_unacknowledged_messages()
    again = await drain(consumer)
    assert texts(again) == leftover(mode, ["m1"])
    assert [m.redelivery_count for m in again] == [1] * len(again)


async def test_dead_letter_takes_acked_batch_mates_at_entry_level(
    broker: MemoryBroker, mode: tuple[bool, bool]
) -> None:
    dlq = await broker.subscribe("t-sub-DLQ", "watch", initial_position=InitialPosition.EARLIEST)
    consumer = await consumer_of(
        broker,
        mode,
        SHARED,
        negative_ack_redelivery_delay=0.1,
        dead_letter_policy=DeadLetterPolicy(max_redeliver_count=2),
    )
    await send_batch(broker)
    counts: list[int] = []
    for _ in range(10):
        try:
            message = await consumer.receive(1)
        except TimeoutError:
            break
        counts.append(message.redelivery_count)
        if message.data == b"m2":
            await consumer.negative_acknowledge(message)
        else:
            await consumer.acknowledge(message)
    dead = texts(await drain(dlq))
    if MODES[mode]:
        assert counts == [0, 0, 0, 1, 2]
    else:
        assert counts == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert dead == ["m0", "m1", "m2"]
    # And the original entry is acknowledged: a new consumer gets nothing
    await consumer.close()
    fresh = await consumer_of(broker, mode, SHARED)
    assert await drain(fresh) == []


async def test_cumulative_ack_inside_a_batch_per_mode(
    broker: MemoryBroker, mode: tuple[bool, bool]
) -> None:
    consumer = await consumer_of(broker, mode, SubscriptionType.EXCLUSIVE)
    await send_batch(broker)
    got = await receive_batch(consumer)
    await consumer.acknowledge_cumulative(got[1])
    await consumer.close()
    fresh = await consumer_of(broker, mode, SubscriptionType.EXCLUSIVE)
    assert texts(await drain(fresh)) == leftover(mode, ["m0", "m1"])


async def test_acking_every_message_of_the_batch_acks_the_entry(
    broker: MemoryBroker, mode: tuple[bool, bool]
) -> None:
    consumer = await consumer_of(broker, mode, SHARED)
    await send_batch(broker)
    got = await receive_batch(consumer)
    for message in reversed(got):
        await consumer.acknowledge(message)
    log = broker._logs["persistent://public/default/t"]
    cursor = log.subscriptions["sub"].cursor
    assert cursor.mark_delete == got[0].message_id.entry_id
    assert cursor.batch_acks == {}
    dispatcher = log.subscriptions["sub"].dispatcher
    assert dispatcher is not None
    assert dispatcher.total_unacked == 0  # type: ignore[attr-defined]
    await consumer.close()
    fresh = await consumer_of(broker, mode, SHARED)
    assert await drain(fresh) == []


async def test_batch_index_ack_enabled_must_be_a_bool(broker: MemoryBroker) -> None:
    with pytest.raises(InvalidArgumentError, match="batch_index_ack_enabled must be True or Fals"):
        await broker.subscribe("t", "sub", batch_index_ack_enabled=1)  # type: ignore[arg-type]
