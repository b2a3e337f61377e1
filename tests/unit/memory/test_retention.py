"""Issue 7 item 4: what the embedded broker keeps behind one unacknowledged message.

One message left unacknowledged (as a key parked by lanes leaves it) holds the subscription's
mark-delete position. Entries acknowledged after it must still be freed, and the cursor's ack
holes must cost ranges, not one object per message: memory is O(unacked), not O(throughput).
The retained entries and ack-hole ranges are counted directly (not RSS; the soak
``keylane bench soak`` prints RSS).
"""

from __future__ import annotations

import asyncio

import pytest

from keylane.brokers.base import BatchingType, Consumer, InitialPosition, Message, SubscriptionType
from keylane.brokers.memory import MemoryBroker
from keylane.brokers.memory.storage import TopicLog
from tests.unit.memory.conftest import drain, subscribe, texts

pytestmark = pytest.mark.looptime

#: Messages acknowledged behind the parked one: several trim chunks (4096 entries each).
MESSAGES = 20_000
#: The log's tail is trimmed in chunks of 4096 entries, checked every 4096 appends.
TAIL_BOUND = 2 * 4096


def topic_log(broker: MemoryBroker, topic: str) -> TopicLog:
    return broker._logs[f"persistent://public/default/{topic}"]


async def stream(
    broker: MemoryBroker,
    consumer: Consumer,
    topic: str,
    batching: BatchingType | None = None,
    unacked: frozenset[str] = frozenset({"parked"}),
) -> list[Message]:
    """A live stream: ``parked`` then ``m0..`` sent in slices, each slice received before the
    next is sent; everything is acknowledged except the payloads in ``unacked`` (returned).
    """
    producer = await broker.create_producer(topic, batching=batching)
    payloads = [("parked", "parked-key")] + [(f"m{i}", f"k{i % 500}") for i in range(MESSAGES)]
    held = []
    for start in range(0, len(payloads), 500):
        chunk = payloads[start : start + 500]
        await asyncio.gather(*(producer.send(p.encode(), key=k) for p, k in chunk))
        for _ in chunk:
            message = await consumer.receive(5)
            if message.data.decode() in unacked:
                held.append(message)
            else:
                await consumer.acknowledge(message)
    await producer.close()
    return held


@pytest.mark.parametrize("sub_type", [SubscriptionType.KEY_SHARED, SubscriptionType.SHARED])
@pytest.mark.parametrize("batching", [None, BatchingType.KEY_BASED])
async def test_entries_and_ack_holes_stay_bounded_behind_a_parked_message(
    broker: MemoryBroker, sub_type: SubscriptionType, batching: BatchingType | None
) -> None:
    # Given a consumer that acknowledges everything except the first message
    consumer = await subscribe(broker, "t", sub_type, "c1", receiver_queue_size=100)
    held = await stream(broker, consumer, "t", batching)
    assert texts(held) == ["parked"]
    # Then the mark-delete position is held by the parked entry...
    log = topic_log(broker, "t")
    cursor = log.subscriptions["sub"].cursor
    parked_entry = held[0].message_id.entry_id
    assert cursor.mark_delete == parked_entry - 1
    # ...yet the entries acknowledged after it were freed: the tail plus the parked one
    assert log.retained <= TAIL_BOUND + 1, log.retained
    assert log.get(parked_entry) is not None
    # And the acks after it are one range, not one object per message
    assert cursor.deleted.range_count == 1
    assert len(cursor.deleted) == log.end - 1 - parked_entry


async def test_the_parked_message_is_redelivered_after_its_entries_were_freed(
    broker: MemoryBroker,
) -> None:
    # Given a Key_Shared consumer that held one message while 20,000 others were acked
    consumer = await subscribe(broker, "t", SubscriptionType.KEY_SHARED, "c1")
    held = await stream(broker, consumer, "t")
    # When the consumer goes away without acking it
    await consumer.close()
    # Then the next consumer gets exactly the parked message, nothing freed comes back
    fresh = await subscribe(broker, "t", SubscriptionType.KEY_SHARED, "c2")
    again = await drain(fresh)
    assert texts(again) == ["parked"]
    assert again[0].message_id == held[0].message_id
    # And once acked, nothing behind it is retained but the tail
    log = topic_log(broker, "t")
    assert log.subscriptions["sub"].cursor.mark_delete == log.end - 1
    assert log.subscriptions["sub"].cursor.deleted.range_count == 0


async def test_exclusive_rewind_reads_retained_entries_below_the_tail(
    broker: MemoryBroker,
) -> None:
    # Given an Exclusive consumer that left two messages unacked among 20,000
    consumer = await subscribe(broker, "ex", SubscriptionType.EXCLUSIVE, "c1")
    await stream(broker, consumer, "ex", unacked=frozenset({"m7", "m15000"}))
    log = topic_log(broker, "ex")
    assert log.retained <= TAIL_BOUND + 2
    # When it reconnects (the cursor rewinds to the first unacked entry)
    await consumer.close()
    again = await subscribe(broker, "ex", SubscriptionType.EXCLUSIVE, "c2")
    # Then exactly the two unacked messages come back, in order
    assert texts(await drain(again)) == ["m7", "m15000"]


async def test_a_new_earliest_subscription_starts_at_the_first_retained_entry(
    broker: MemoryBroker,
) -> None:
    # Given a subscription holding one parked message among 20,000 acked ones
    consumer = await subscribe(broker, "t", SubscriptionType.SHARED, "c1")
    await stream(broker, consumer, "t")
    log = topic_log(broker, "t")
    tail = len(log.entries)
    # When a second subscription starts from the earliest position
    other = await broker.subscribe(
        "t",
        "other",
        subscription_type=SubscriptionType.SHARED,
        initial_position=InitialPosition.EARLIEST,
    )
    got = texts(await drain(other))
    # Then it gets the retained entries (the parked one, then the tail), nothing freed
    assert got[0] == "parked"
    assert len(got) == 1 + tail
    assert got[1:] == [f"m{i}" for i in range(MESSAGES - tail, MESSAGES)]


async def test_a_subscription_without_consumers_keeps_its_backlog(broker: MemoryBroker) -> None:
    # Given two subscriptions, one of them with no consumer any more
    fast = await subscribe(broker, "t", SubscriptionType.SHARED, "c1")
    idle = await subscribe(broker, "t", SubscriptionType.SHARED, "c2", subscription="idle")
    await idle.close()
    await stream(broker, fast, "t", unacked=frozenset())
    # Then nothing the idle subscription has not acknowledged is freed
    log = topic_log(broker, "t")
    assert log.retained == MESSAGES + 1
    back = await subscribe(broker, "t", SubscriptionType.SHARED, "c3", subscription="idle")
    assert texts(await drain(back)) == ["parked"] + [f"m{i}" for i in range(MESSAGES)]


async def test_a_delayed_message_survives_the_trims_and_arrives_on_time(
    broker: MemoryBroker,
) -> None:
    # Given a Shared consumer and a message delayed by 10 minutes, sent before a live stream
    consumer = await subscribe(broker, "t", SubscriptionType.SHARED, "c1")
    delayed = await broker.create_producer("t", batching=None)
    loop = asyncio.get_running_loop()
    sent_at = loop.time()
    await delayed.send(b"later", deliver_after=600)
    await stream(broker, consumer, "t", unacked=frozenset())
    log = topic_log(broker, "t")
    assert log.retained <= TAIL_BOUND + 1  # the tail and the delayed entry
    assert log.base > 0
    assert list(log.islands) == [0]  # the delayed entry, kept below the trimmed tail
    # Then the delayed message still arrives, after its delay
    message = await consumer.receive(900)
    assert message.data == b"later"
    assert loop.time() - sent_at >= 600 - broker.config.delayed_delivery_tick
