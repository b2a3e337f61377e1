"""Subscription binding: one type (and Key_Shared policy) per subscription (spec 0.1, cases 1-3)."""

from __future__ import annotations

import pytest

from keylane.brokers.base import KeySharedMode, KeySharedPolicy, SubscriptionType
from keylane.errors import ConsumerBusyError, SubscriptionTypeMismatchError
from tests.contract.support import Backend, text, texts

EXCLUSIVE = SubscriptionType.EXCLUSIVE
SHARED = SubscriptionType.SHARED
KEY_SHARED = SubscriptionType.KEY_SHARED


async def test_c01_second_exclusive_consumer_is_busy(backend: Backend) -> None:
    # Given an Exclusive subscription with consumer A connected
    topic = backend.topic()
    a = await backend.subscribe(topic, "sub", EXCLUSIVE, consumer_name="A")
    producer = await backend.producer(topic)
    # When consumer B subscribes to the same subscription as Exclusive
    # Then B fails with ConsumerBusy
    with pytest.raises(ConsumerBusyError):
        await backend.subscribe(topic, "sub", EXCLUSIVE, consumer_name="B")
    # And A keeps receiving
    await backend.send_all(producer, ["m1", "m2"])
    assert texts(await backend.receive_n(a, 2, ack=True)) == ["m1", "m2"]


async def test_c02_other_type_rejected_while_connected_then_rebinds(backend: Backend) -> None:
    # Given an Exclusive subscription with A connected
    topic = backend.topic()
    a = await backend.subscribe(topic, "sub", EXCLUSIVE, consumer_name="A")
    producer = await backend.producer(topic)
    # When B subscribes with Shared
    # Then B fails: the subscription is of a different type
    with pytest.raises(SubscriptionTypeMismatchError, match=r"(?i)different type"):
        await backend.subscribe(topic, "sub", SHARED, consumer_name="B")
    await backend.send_all(producer, ["m1"])
    assert text(await backend.receive(a)) == "m1"  # A is unaffected
    # When A closes (m1 unacked) and B retries with Shared
    await a.close()
    b = await backend.subscribe(topic, "sub", SHARED, consumer_name="B")
    # Then B succeeds, gets the unacked m1, and the subscription is now Shared:
    assert text(await backend.receive(b)) == "m1"
    c = await backend.subscribe(topic, "sub", SHARED, consumer_name="C")  # a 2nd Shared is fine
    with pytest.raises(SubscriptionTypeMismatchError):
        await backend.subscribe(topic, "sub", EXCLUSIVE, consumer_name="D")
    await backend.send_all(producer, [f"n{i}" for i in range(10)])
    got = await backend.collect({"b": b, "c": c})
    assert sorted(texts(got["b"] + got["c"])) == sorted(f"n{i}" for i in range(10))


async def test_c03_key_shared_policy_mismatch_rejected(backend: Backend) -> None:
    # Given a Key_Shared AUTO_SPLIT subscription with one consumer
    topic = backend.topic()
    first = await backend.subscribe(topic, "sub", KEY_SHARED, consumer_name="c1")
    producer = await backend.producer(topic)
    # When a consumer subscribes with STICKY
    # Then it is rejected with a "different type" (key_shared mode) error
    sticky = KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=[(0, 65535)])
    with pytest.raises(SubscriptionTypeMismatchError):
        await backend.subscribe(
            topic, "sub", KEY_SHARED, consumer_name="c2", key_shared_policy=sticky
        )
    # When a consumer subscribes allowing out-of-order delivery
    # Then it is rejected too
    ooo = KeySharedPolicy(allow_out_of_order_delivery=True)
    with pytest.raises(SubscriptionTypeMismatchError):
        await backend.subscribe(topic, "sub", KEY_SHARED, consumer_name="c3", key_shared_policy=ooo)
    # And the first consumer still owns every key
    keys = [f"k{i}" for i in range(10)]
    await backend.send_all(producer, keys, keys=keys)
    assert texts(await backend.drain(first)) == keys
