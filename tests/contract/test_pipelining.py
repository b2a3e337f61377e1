"""Pipelined sends and batched receives: ``Producer.enqueue``, ``Consumer.receive_many``.

Also the rules that keep the old call style from being a trap: an awaited ``send`` on a batching
producer never waits for the publish delay, and a long run of sends awaited one at a time logs
one warning that names ``enqueue``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import pytest

from keylane.brokers.base import (
    MAX_RECEIVE_MANY,
    BatchingType,
    Consumer,
    Message,
    MessageId,
    SubscriptionType,
)
from keylane.brokers.serial_sends import SERIAL_SEND_WARN_AFTER
from keylane.errors import AlreadyClosedError, InvalidArgumentError
from tests.contract.support import Backend, text, texts

EXCLUSIVE = SubscriptionType.EXCLUSIVE
SHARED = SubscriptionType.SHARED
KEY_SHARED = SubscriptionType.KEY_SHARED
#: A publish delay no test could wait out: a message stored before it passed was flushed.
FOREVER = 3600.0


async def receive_all(
    backend: Backend, consumer: Consumer, count: int, most: int
) -> list[list[Message]]:
    """Call ``receive_many(most)`` until ``count`` messages arrived; the list of each call's."""
    calls: list[list[Message]] = []
    while sum(len(c) for c in calls) < count:
        calls.append(await consumer.receive_many(most, backend.wait))
    return calls


# --------------------------------------------------------------------------- enqueue


async def test_enqueue_returns_before_the_receipt_and_flush_completes_it(backend: Backend) -> None:
    # Given a KEY_BASED producer whose batches would wait an hour
    topic = backend.topic()
    consumer = await backend.subscribe(topic)
    producer = await backend.producer(
        topic, batching=BatchingType.KEY_BASED, batching_max_publish_delay=FOREVER
    )
    # When three messages of one key are enqueued
    futures = [await producer.enqueue(f"m{i}".encode(), key="user-1") for i in range(3)]
    await asyncio.sleep(0.05)
    # Then enqueue returned while they wait in the batch, and flush() stores them as one entry
    assert not any(f.done() for f in futures)
    await producer.flush()
    ids = [await f for f in futures]
    assert len({(i.ledger_id, i.entry_id) for i in ids}) == 1
    assert [i.batch_index for i in ids] == [0, 1, 2]
    got = await backend.receive_n(consumer, 3, ack=True)
    assert texts(got) == ["m0", "m1", "m2"]
    assert [m.message_id for m in got] == ids


async def test_enqueue_keeps_each_keys_order(backend: Backend) -> None:
    # Given a producer with keylane's default batching and an Exclusive consumer
    topic = backend.topic()
    consumer = await backend.subscribe(topic)
    producer = await backend.producer(topic, batching=BatchingType.KEY_BASED)
    keys = [f"user-{k}" for k in range(7)]
    sent = [(keys[i % len(keys)], f"m{i}") for i in range(300)]
    # When 300 messages over 7 keys are enqueued without waiting for any receipt
    futures = [await producer.enqueue(p.encode(), key=k) for k, p in sent]
    ids = await asyncio.gather(*futures)
    # Then every key's ids rise in send order, and the consumer sees each key in send order
    by_key: dict[str, list[MessageId]] = defaultdict(list)
    for (key, _), message_id in zip(sent, ids, strict=True):
        by_key[key].append(message_id)
    assert all(v == sorted(v) and len(set(v)) == len(v) for v in by_key.values())
    got = await backend.receive_n(consumer, len(sent), ack=True)
    received: dict[str | None, list[str]] = defaultdict(list)
    for m in got:
        received[m.key].append(text(m))
    assert received == {k: [p for kk, p in sent if kk == k] for k in keys}


async def test_enqueue_without_batching_and_with_options(backend: Backend) -> None:
    topic = backend.topic()
    consumer = await backend.subscribe(topic)
    producer = await backend.producer(topic)  # unbatched
    future = await producer.enqueue(
        b"m1", key="k", ordering_key="o", properties={"a": "b"}, event_time=1_700_000_000.5
    )
    message_id = await future
    got = await backend.receive(consumer)
    assert (text(got), got.key, got.ordering_key, dict(got.properties)) == (
        "m1",
        "k",
        "o",
        {"a": "b"},
    )
    assert got.event_time == pytest.approx(1_700_000_000.5, abs=0.001)
    assert got.message_id == message_id


async def test_enqueue_rejects_bad_arguments_before_queueing(backend: Backend) -> None:
    # Given a batching producer and a consumer
    topic = backend.topic()
    consumer = await backend.subscribe(topic)
    producer = await backend.producer(topic, batching=BatchingType.KEY_BASED)
    # When enqueue gets a str payload, a non-str key or bad properties
    with pytest.raises(InvalidArgumentError, match="data"):
        await producer.enqueue("text", key="k")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="key"):
        await producer.enqueue(b"x", key=7)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="properties"):
        await producer.enqueue(b"x", properties={"a": 1})  # type: ignore[dict-item]
    # Then enqueue itself raised, and nothing was queued: the next good message comes first
    await (await producer.enqueue(b"good", key="k"))
    got = await backend.drain(consumer)
    assert texts(got) == ["good"]


async def test_close_completes_enqueued_messages_and_refuses_more(backend: Backend) -> None:
    topic = backend.topic()
    consumer = await backend.subscribe(topic)
    producer = await backend.producer(
        topic, batching=BatchingType.KEY_BASED, batching_max_publish_delay=FOREVER
    )
    futures = [await producer.enqueue(f"m{i}".encode(), key=f"k{i % 2}") for i in range(4)]
    # When the producer closes with messages still in its batches
    await producer.close()
    # Then they were stored first, and enqueue and send are refused from then on
    assert all(f.done() and f.exception() is None for f in futures)
    with pytest.raises(AlreadyClosedError):
        await producer.enqueue(b"late")
    with pytest.raises(AlreadyClosedError):
        await producer.send(b"late")
    assert sorted(texts(await backend.drain(consumer))) == ["m0", "m1", "m2", "m3"]


# --------------------------------------------------------------------------- awaited send


async def test_awaited_send_never_waits_for_the_publish_delay(backend: Backend) -> None:
    # Given batching producers (both kinds) whose batches would wait an hour
    topic = backend.topic()
    consumer = await backend.subscribe(topic)
    for batching in (BatchingType.KEY_BASED, BatchingType.DEFAULT):
        producer = await backend.producer(
            topic, batching=batching, batching_max_publish_delay=FOREVER
        )
        # When sends are awaited one at a time
        for i in range(3):
            # Then each is stored long before the delay (wait_for fails the test otherwise)
            await asyncio.wait_for(producer.send(f"{batching.value}-{i}".encode()), backend.wait)
    assert len(await backend.receive_n(consumer, 6, ack=True)) == 6


async def test_sends_gathered_in_one_iteration_still_share_a_batch(backend: Backend) -> None:
    topic = backend.topic()
    await backend.subscribe(topic)
    producer = await backend.producer(
        topic, batching=BatchingType.KEY_BASED, batching_max_publish_delay=FOREVER
    )
    ids = await asyncio.wait_for(
        asyncio.gather(*(producer.send(f"m{i}".encode(), key="user-1") for i in range(4))),
        backend.wait,
    )
    assert len({(i.ledger_id, i.entry_id) for i in ids}) == 1
    assert [i.batch_index for i in ids] == [0, 1, 2, 3]


async def test_sends_awaited_in_turn_warn_once(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a batching producer
    topic = backend.topic()
    producer = await backend.producer(topic, batching=BatchingType.KEY_BASED)
    caplog.set_level(logging.WARNING, logger="keylane.brokers")
    # When many sends are each awaited before the next (twice the warning's threshold)
    for i in range(2 * SERIAL_SEND_WARN_AFTER):
        await producer.send(b"x", key=f"user-{i % 10}")
    # Then exactly one warning says so and names the fix
    warnings = [r for r in caplog.records if r.name == "keylane.brokers"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "enqueue" in warnings[0].getMessage()
    assert producer.topic in warnings[0].getMessage()


async def test_enqueue_futures_awaited_in_turn_warn_too(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a batching producer with a short publish delay
    topic = backend.topic()
    producer = await backend.producer(
        topic, batching=BatchingType.KEY_BASED, batching_max_publish_delay=0.001
    )
    caplog.set_level(logging.WARNING, logger="keylane.brokers")
    # When each enqueued message's future is awaited before the next is enqueued
    for i in range(SERIAL_SEND_WARN_AFTER + 5):
        await (await producer.enqueue(b"x", key=f"user-{i % 10}"))
    # Then that is the same slow loop, and it is named once too
    warnings = [r for r in caplog.records if r.name == "keylane.brokers"]
    assert len(warnings) == 1
    assert "enqueue" in warnings[0].getMessage()


async def test_pipelined_sends_do_not_warn(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    topic = backend.topic()
    producer = await backend.producer(topic, batching=BatchingType.KEY_BASED)
    caplog.set_level(logging.WARNING, logger="keylane.brokers")
    for _ in range(3):
        futures = [
            await producer.enqueue(b"x", key=f"user-{i % 10}")
            for i in range(SERIAL_SEND_WARN_AFTER)
        ]
        await producer.flush()
        await asyncio.gather(*futures)
        await asyncio.gather(
            *(producer.send(b"y", key=f"user-{i % 10}") for i in range(SERIAL_SEND_WARN_AFTER))
        )
    assert [r for r in caplog.records if r.name == "keylane.brokers"] == []


# --------------------------------------------------------------------------- receive_many


async def test_receive_many_hands_out_what_is_there_in_order(backend: Backend) -> None:
    # Given 50 messages on an Exclusive subscription
    topic = backend.topic()
    consumer = await backend.subscribe(topic)
    producer = await backend.producer(topic, batching=BatchingType.KEY_BASED)
    futures = [await producer.enqueue(f"m{i}".encode(), key=f"k{i % 3}") for i in range(50)]
    await producer.flush()
    await asyncio.gather(*futures)
    # When they are received with receive_many(8)
    calls = await receive_all(backend, consumer, 50, 8)
    # Then every call returned 1 to 8 messages, together all 50 once, in send order per key
    assert all(1 <= len(c) <= 8 for c in calls)
    got = [m for c in calls for m in c]
    assert sorted(texts(got), key=lambda t: int(t[1:])) == [f"m{i}" for i in range(50)]
    for k in range(3):
        mine = [int(text(m)[1:]) for m in got if m.key == f"k{k}"]
        assert mine == sorted(mine)
    for m in got:
        await consumer.acknowledge(m)
    await backend.assert_silent(consumer)


async def test_receive_many_waits_for_the_first_message_only(backend: Backend) -> None:
    topic = backend.topic()
    consumer = await backend.subscribe(topic)
    producer = await backend.producer(topic)
    # Nothing there: it waits at most the timeout
    with pytest.raises(TimeoutError):
        await consumer.receive_many(10, 0.2)
    # A waiting call returns as soon as something arrives, without waiting for 10
    waiting = asyncio.ensure_future(consumer.receive_many(10, backend.wait))
    await asyncio.sleep(0.05)
    await producer.send(b"m1")
    got = await waiting
    assert 1 <= len(got) <= 10
    assert texts(got) == ["m1"]


async def test_cancelled_receive_many_loses_nothing(backend: Backend) -> None:
    topic = backend.topic()
    consumer = await backend.subscribe(topic, "sub", SHARED)
    producer = await backend.producer(topic)
    waiting = asyncio.ensure_future(consumer.receive_many(10))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await producer.send(b"m1")
    await producer.send(b"m2")
    calls = await receive_all(backend, consumer, 2, 10)
    assert texts([m for c in calls for m in c]) == ["m1", "m2"]


async def test_key_shared_receive_many_keeps_keys_apart_and_in_order(backend: Backend) -> None:
    # Given two Key_Shared consumers and 200 messages over 20 keys
    topic = backend.topic()
    consumers = [
        await backend.subscribe(topic, "sub", KEY_SHARED, consumer_name=f"c{i}") for i in (1, 2)
    ]
    producer = await backend.producer(topic, batching=BatchingType.KEY_BASED)
    futures = [await producer.enqueue(f"{i}".encode(), key=f"user-{i % 20}") for i in range(200)]
    await producer.flush()
    await asyncio.gather(*futures)
    # When both drain with receive_many, acknowledging every batch
    seen: dict[str, list[int]] = defaultdict(list)
    owner: dict[str, int] = {}
    total = 0
    idle = 0
    while total < 200 and idle < 3:
        idle += 1
        for n, consumer in enumerate(consumers):
            try:
                batch = await consumer.receive_many(32, backend.quiet)
            except TimeoutError:
                continue
            idle = 0
            for m in batch:
                key = m.key or ""
                assert owner.setdefault(key, n) == n, f"{key} went to both consumers"
                seen[key].append(int(text(m)))
                await consumer.acknowledge(m)
            total += len(batch)
    # Then every message arrived once, each key at one consumer, in send order
    assert total == 200
    assert all(v == sorted(v) for v in seen.values())
    assert sorted(i for v in seen.values() for i in v) == list(range(200))


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "3", MAX_RECEIVE_MANY + 1])
async def test_receive_many_rejects_a_bad_maximum(backend: Backend, bad: object) -> None:
    topic = backend.topic()
    consumer = await backend.subscribe(topic)
    producer = await backend.producer(topic)
    await producer.send(b"m1")
    with pytest.raises(InvalidArgumentError, match="max_messages"):
        await consumer.receive_many(bad, backend.wait)  # type: ignore[arg-type]
    # Nothing was taken: the message is still there for the next call
    assert texts(await consumer.receive_many(5, backend.wait)) == ["m1"]


async def test_receive_many_on_a_closed_consumer(backend: Backend) -> None:
    topic = backend.topic()
    consumer = await backend.subscribe(topic)
    await consumer.close()
    with pytest.raises(AlreadyClosedError):
        await consumer.receive_many(5, 0.1)
