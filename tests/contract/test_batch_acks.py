"""Acknowledging some messages of a batch (issue 7 item 10; spec sections 2.1, 2.3, 2.6).

One consumer, one KEY_BASED batch of three messages ``m0, m1, m2`` with one key. Each case runs
in both modes of the client switch ``batch_index_ack_enabled``; the broker switch
``acknowledgmentAtBatchIndexLevelEnabled`` is on in the test standalone (scripts/services.py)
and in the memory broker the suite builds (``support.STANDALONE_KNOBS``):

* entry-level (``batch_index_ack_enabled=False``, Pulsar's default): an entry is acknowledged
  only once every message of it is, and any redelivery brings back the whole batch, acked
  messages included, each with the entry's redelivery count;
* batch-index level (``True``): acknowledged messages of the batch are not delivered again.
"""

from __future__ import annotations

import asyncio

import pytest

from keylane.brokers.base import (
    BatchingType,
    Consumer,
    DeadLetterPolicy,
    Message,
    SubscriptionType,
)
from keylane.check import HistoryRecorder, check, recorded
from keylane.lanes import HandlerContext
from tests.contract.support import Backend, text, texts

SHARED = SubscriptionType.SHARED
KEY_SHARED = SubscriptionType.KEY_SHARED
EXCLUSIVE = SubscriptionType.EXCLUSIVE
NACK_DELAY = 0.2
BATCH = ["m0", "m1", "m2"]

pytestmark = pytest.mark.parametrize(
    "batch_index_ack", [False, True], ids=["entry-level", "batch-index"]
)


def leftover(batch_index_ack: bool, acked: list[str]) -> list[str]:
    """What a redelivery of the batch brings after ``acked`` were acknowledged."""
    return [m for m in BATCH if m not in acked] if batch_index_ack else list(BATCH)


async def send_batch(backend: Backend, topic: str) -> None:
    """Send ``m0, m1, m2`` with one key, as one KEY_BASED batch."""
    producer = await backend.producer(
        topic, batching=BatchingType.KEY_BASED, batching_max_publish_delay=0.2
    )
    await asyncio.gather(*(producer.send(p.encode(), key="user-1") for p in BATCH))


async def receive_batch(backend: Backend, consumer: Consumer) -> list[Message]:
    got = await backend.receive_n(consumer, len(BATCH))
    assert texts(got) == BATCH
    ids = [m.message_id for m in got]
    assert len({i.entry_id for i in ids}) == 1, f"not one batch: {ids}"
    assert [i.batch_index for i in ids] == [0, 1, 2]
    return got


async def test_close_with_one_message_held(backend: Backend, batch_index_ack: bool) -> None:
    # Given one Key_Shared consumer that acks m0 and m1 of the batch and holds m2
    topic = backend.topic()
    consumer = await backend.subscribe(
        topic, "sub", KEY_SHARED, consumer_name="c1", batch_index_ack_enabled=batch_index_ack
    )
    await send_batch(backend, topic)
    got = await receive_batch(backend, consumer)
    await consumer.acknowledge(got[0])
    await consumer.acknowledge(got[1])
    await backend.flush_acks()
    # When it closes and a new consumer reads
    await consumer.close()
    fresh = await backend.subscribe(
        topic, "sub", KEY_SHARED, consumer_name="c2", batch_index_ack_enabled=batch_index_ack
    )
    again = await backend.drain(fresh)
    # Then it gets the whole batch at entry level, only m2 at batch-index level
    assert texts(again) == leftover(batch_index_ack, ["m0", "m1"])
    # (a consumer leaving does not bump the count; the last one leaving resets it)
    assert [m.redelivery_count for m in again] == [0] * len(again)


async def test_shared_nack_of_one_message(backend: Backend, batch_index_ack: bool) -> None:
    # Given one Shared consumer that acks m0 and m1 of the batch
    topic = backend.topic()
    consumer = await backend.subscribe(
        topic,
        "sub",
        SHARED,
        consumer_name="c1",
        negative_ack_redelivery_delay=NACK_DELAY,
        batch_index_ack_enabled=batch_index_ack,
    )
    await send_batch(backend, topic)
    got = await receive_batch(backend, consumer)
    await consumer.acknowledge(got[0])
    await consumer.acknowledge(got[1])
    # When it nacks m2 once
    await consumer.negative_acknowledge(got[2])
    # Then the redelivery is the whole batch (entry level) or m2 (batch-index), count 1 each
    again = await backend.drain(consumer)
    assert texts(again) == leftover(batch_index_ack, ["m0", "m1"])
    assert [m.redelivery_count for m in again] == [1] * len(again)
    # And once everything is acked, nothing comes back
    await backend.flush_acks()
    await consumer.redeliver_unacknowledged_messages()
    await backend.assert_silent(consumer)


async def test_shared_redeliver_unacknowledged(backend: Backend, batch_index_ack: bool) -> None:
    # Given one Shared consumer that acks m1 of the batch
    topic = backend.topic()
    consumer = await backend.subscribe(
        topic, "sub", SHARED, consumer_name="c1", batch_index_ack_enabled=batch_index_ack
    )
    await send_batch(backend, topic)
    got = await receive_batch(backend, consumer)
    await consumer.acknowledge(got[1])
    await backend.flush_acks()
    # When it asks for a redelivery of everything unacknowledged
    await consumer.redeliver_unacknowledged_messages()
    # Then the whole batch (entry level) or m0, m2 (batch-index) come back, count 1 each
    again = await backend.drain(consumer)
    assert texts(again) == leftover(batch_index_ack, ["m1"])
    assert [m.redelivery_count for m in again] == [1] * len(again)


async def test_shared_ack_timeout_of_a_partly_acked_batch(
    backend: Backend, batch_index_ack: bool
) -> None:
    # Given one Shared consumer with a 10 s ack timeout that acks only m0 of the batch
    topic = backend.topic()
    consumer = await backend.subscribe(
        topic,
        "sub",
        SHARED,
        consumer_name="c1",
        ack_timeout=10,
        batch_index_ack_enabled=batch_index_ack,
    )
    await send_batch(backend, topic)
    got = await receive_batch(backend, consumer)
    await consumer.acknowledge(got[0])
    # When the timeout passes (the client tracks the entry until it is acked as a whole)
    expected = leftover(batch_index_ack, ["m0"])
    again = await backend.receive_n(consumer, len(expected), ack=True, timeout=20)
    # Then the entry is redelivered: the whole batch, or what is left of it, count 1 each
    assert texts(again) == expected
    assert [m.redelivery_count for m in again] == [1] * len(again)


async def test_shared_dead_letter_after_acking_batch_mates(
    backend: Backend, batch_index_ack: bool
) -> None:
    # Given a Shared consumer with max_redeliver_count=2
    topic = backend.topic()
    dlq = await backend.subscribe(backend.dlq(topic, "sub"), "watch", EXCLUSIVE)
    consumer = await backend.subscribe(
        topic,
        "sub",
        SHARED,
        consumer_name="c1",
        negative_ack_redelivery_delay=NACK_DELAY,
        dead_letter_policy=DeadLetterPolicy(max_redeliver_count=2),
        batch_index_ack_enabled=batch_index_ack,
    )
    await send_batch(backend, topic)
    # When it acks m0 and m1 every time and nacks m2 until it is dead-lettered
    seen: list[tuple[str, int]] = []
    for _ in range(20):
        try:
            message = await consumer.receive(timeout=backend.quiet)
        except TimeoutError:
            break
        seen.append((text(message), message.redelivery_count))
        if text(message) == "m2":
            await consumer.negative_acknowledge(message)
        else:
            await consumer.acknowledge(message)
    # Then the application saw every delivery the mode gives, counts 0..2
    expected = [(m, count) for count in range(3) for m in leftover(batch_index_ack, ["m0", "m1"])]
    if batch_index_ack:
        expected = [(m, 0) for m in BATCH[:2]] + [("m2", c) for c in range(3)]
    assert seen == expected
    # And the dead letter topic holds the whole batch: the last delivery's messages, acked
    # batch-mates included (the client keeps every message of that delivery as a candidate)
    dead = await backend.drain(dlq)
    assert texts(dead) == BATCH
    # And the original batch is acknowledged: a new consumer gets nothing
    await backend.flush_acks()
    await consumer.close()
    fresh = await backend.subscribe(topic, "sub", SHARED, consumer_name="c2")
    await backend.assert_silent(fresh)


async def test_checker_tells_replayed_batch_mates_from_duplicates(
    backend: Backend, batch_index_ack: bool
) -> None:
    # Given a recorded handler on a Shared consumer, and one batch of three events of one key
    topic = backend.topic()
    recorder = HistoryRecorder(clock=asyncio.get_running_loop().time)
    failing = {"m2"}

    async def decide(message: Message, context: HandlerContext) -> None:
        if text(message) in failing:
            failing.discard(text(message))
            raise RuntimeError("transient")

    handler = recorded(decide, recorder, seq_of=lambda m: BATCH.index(text(m)))
    consumer = await backend.subscribe(
        topic,
        "sub",
        SHARED,
        consumer_name="c1",
        negative_ack_redelivery_delay=NACK_DELAY,
        batch_index_ack_enabled=batch_index_ack,
    )
    await send_batch(backend, topic)
    # When m2 fails once and is nacked, everything else acked
    while True:
        try:
            message = await consumer.receive(timeout=backend.quiet)
        except TimeoutError:
            break
        context = HandlerContext(key="user-1", attempt=1, consumer_name="c1")
        try:
            await handler(message, context)
        except RuntimeError:
            await consumer.negative_acknowledge(message)
        else:
            await consumer.acknowledge(message)
    # Then the replayed batch-mates (entry level only) are redelivered duplicates, not anomalies
    report = check(recorder.history())
    assert report.redelivered_duplicate_count == (0 if batch_index_ack else 2)
    assert report.duplicate_count == 0
    assert report.clean, report.counts()
