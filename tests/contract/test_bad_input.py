"""Bad input: the specific keylane error, a useful message, and nothing else changes.

Each test sets up a working subscription, makes a bad call, and then checks that the broker's
state is intact (existing consumers keep receiving, the subscription is not occupied by the
rejected consumer) and that no message was lost or duplicated.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keylane.brokers.base import (
    Consumer,
    DeadLetterPolicy,
    KeySharedMode,
    KeySharedPolicy,
    Producer,
    SubscriptionType,
)
from keylane.errors import (
    AlreadyClosedError,
    ConsumerBusyError,
    CumulativeAckNotAllowedError,
    InvalidArgumentError,
    StickyRangeConflictError,
    SubscriptionTypeMismatchError,
)
from tests.contract.support import Backend, texts

SHARED = SubscriptionType.SHARED
EXCLUSIVE = SubscriptionType.EXCLUSIVE
KEY_SHARED = SubscriptionType.KEY_SHARED


class Probe:
    """A topic with a producer and one consumer whose every message is accounted for."""

    def __init__(self, backend: Backend, topic: str, producer: Producer, consumer: Consumer):
        self.backend, self.topic, self.producer, self.consumer = backend, topic, producer, consumer
        self.sent: list[str] = []
        self.received: list[str] = []

    @classmethod
    async def start(
        cls, backend: Backend, subscription_type: SubscriptionType = SHARED, **options: Any
    ) -> Probe:
        topic = backend.topic()
        consumer = await backend.subscribe(
            topic, "sub", subscription_type, consumer_name="probe", **options
        )
        return cls(backend, topic, await backend.producer(topic), consumer)

    async def send(self, n: int = 3, key: str | None = "k") -> None:
        for _ in range(n):
            payload = f"m{len(self.sent)}"
            await self.producer.send(payload.encode(), key=key)
            self.sent.append(payload)

    async def assert_intact(self) -> None:
        """More messages flow, and everything sent so far arrives exactly once, in order."""
        await self.send()
        self.received += texts(await self.backend.drain(self.consumer))
        assert self.received == self.sent


async def test_wrong_subscription_type_leaves_subscription_alone(backend: Backend) -> None:
    probe = await Probe.start(backend, SHARED)
    await probe.send()
    for other in (EXCLUSIVE, SubscriptionType.FAILOVER, KEY_SHARED):
        with pytest.raises(SubscriptionTypeMismatchError, match=r"(?i)different type") as info:
            await backend.subscribe(probe.topic, "sub", other, consumer_name=f"x-{other.name}")
        assert isinstance(info.value, ConsumerBusyError)  # Pulsar's ConsumerBusy family
    await probe.assert_intact()
    # The subscription is still Shared: another Shared consumer may join
    await backend.subscribe(probe.topic, "sub", SHARED, consumer_name="second")


async def test_cumulative_ack_on_shared_acks_nothing(backend: Backend) -> None:
    probe = await Probe.start(backend, SHARED)
    await probe.send(2)
    _, second = await backend.receive_n(probe.consumer, 2)
    with pytest.raises(CumulativeAckNotAllowedError, match=r"(?i)cumulative"):
        await probe.consumer.acknowledge_cumulative(second)
    # Nothing was acked: a redelivery request brings both back
    await probe.consumer.redeliver_unacknowledged_messages()
    again = await backend.drain(probe.consumer)
    assert sorted(texts(again)) == ["m0", "m1"]
    probe.received = ["m0", "m1"]
    await probe.assert_intact()


async def test_conflicting_sticky_ranges_leave_no_trace(backend: Backend) -> None:
    policy = KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=[(0, 65535)])
    probe = await Probe.start(backend, KEY_SHARED, key_shared_policy=policy)
    await probe.send()
    half = KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=[(100, 200)])
    with pytest.raises(StickyRangeConflictError, match=r"(?i)conflict|overlap"):
        await backend.subscribe(
            probe.topic, "sub", KEY_SHARED, consumer_name="S2", key_shared_policy=half
        )
    await probe.assert_intact()
    # The rejected consumer's ranges were not kept: closing the probe frees everything
    await probe.consumer.close()
    s3 = await backend.subscribe(
        probe.topic, "sub", KEY_SHARED, consumer_name="S3", key_shared_policy=half
    )
    await backend.assert_silent(s3)


@pytest.mark.parametrize(
    "options",
    [
        {"deliver_after": -1.0},
        {"deliver_after": timedelta(seconds=-5)},
        {"deliver_after": float("nan")},
        {"deliver_after": "10"},
        {"deliver_after": 1.0, "deliver_at": datetime.now(UTC) + timedelta(seconds=5)},
        {"properties": {"a": 1}},
        {"properties": {2: "b"}},
    ],
    ids=["negative", "negative-td", "nan", "str", "both-forms", "prop-value", "prop-key"],
)
async def test_bad_send_options_rejected(backend: Backend, options: dict[str, Any]) -> None:
    probe = await Probe.start(backend, SHARED)
    await probe.send()
    with pytest.raises(InvalidArgumentError) as info:
        await probe.producer.send(b"bad", **options)
    assert str(info.value)
    await probe.assert_intact()  # "bad" was never published


@pytest.mark.parametrize("data", ["text", None, 42, ["b"]], ids=["str", "none", "int", "list"])
async def test_non_bytes_payload_rejected(backend: Backend, data: Any) -> None:
    probe = await Probe.start(backend, SHARED)
    await probe.send()
    with pytest.raises(InvalidArgumentError, match="bytes"):
        await probe.producer.send(data)
    await probe.assert_intact()


@pytest.mark.parametrize("topic", ["", "   ", "a/b", "persistent://a/b", "bogus://a/b/c"])
async def test_bad_topic_names_rejected(backend: Backend, topic: str) -> None:
    probe = await Probe.start(backend, SHARED)
    with pytest.raises(InvalidArgumentError, match=r"(?i)topic"):
        await backend.broker.create_producer(topic)
    with pytest.raises(InvalidArgumentError, match=r"(?i)topic"):
        await backend.broker.subscribe(topic, "sub")
    with pytest.raises(InvalidArgumentError, match=r"(?i)topic"):
        await backend.broker.create_topic(topic)
    await probe.assert_intact()


@pytest.mark.parametrize(
    ("options", "mentions"),
    [
        ({"receiver_queue_size": 0}, "receiver_queue_size"),
        ({"receiver_queue_size": -1}, "receiver_queue_size"),
        ({"ack_timeout": 5.0}, "ack_timeout"),
        ({"ack_timeout": 9.99}, "ack_timeout"),
        ({"ack_timeout": -1.0}, "ack_timeout"),
        ({"negative_ack_redelivery_delay": 0.05}, "negative_ack_redelivery_delay"),
        ({"negative_ack_redelivery_delay": -1.0}, "negative_ack_redelivery_delay"),
        ({"priority_level": -1}, "priority"),
    ],
)
async def test_bad_subscribe_options_rejected(
    backend: Backend, options: dict[str, Any], mentions: str
) -> None:
    probe = await Probe.start(backend, SHARED)
    topic = backend.topic("exclusive")
    with pytest.raises(InvalidArgumentError, match=mentions):
        await backend.broker.subscribe(topic, "sub", subscription_type=EXCLUSIVE, **options)
    # The rejected consumer does not occupy the Exclusive subscription
    await backend.subscribe(topic, "sub", EXCLUSIVE, consumer_name="valid")
    await probe.assert_intact()


async def test_minimum_ack_timeout_is_accepted(backend: Backend) -> None:
    probe = await Probe.start(backend, SHARED, ack_timeout=10.0)
    await probe.assert_intact()


async def test_empty_subscription_name_rejected(backend: Backend) -> None:
    probe = await Probe.start(backend, SHARED)
    with pytest.raises(InvalidArgumentError, match=r"(?i)subscription"):
        await backend.broker.subscribe(probe.topic, "", subscription_type=SHARED)
    await probe.assert_intact()


async def test_negative_partition_count_rejected(backend: Backend) -> None:
    probe = await Probe.start(backend, SHARED)
    with pytest.raises(InvalidArgumentError, match=r"(?i)partition"):
        await backend.broker.create_topic(backend.topic("neg"), partitions=-1)
    await probe.assert_intact()


async def test_negative_receive_timeout_rejected(backend: Backend) -> None:
    probe = await Probe.start(backend, SHARED)
    await probe.send()
    with pytest.raises(InvalidArgumentError, match=r"(?i)timeout"):
        await probe.consumer.receive(timeout=-1.0)
    await probe.assert_intact()


async def test_closed_clients_raise_already_closed(backend: Backend) -> None:
    probe = await Probe.start(backend, SHARED)
    other = await backend.subscribe(probe.topic, "sub", SHARED, consumer_name="other")
    side_producer = await backend.producer(probe.topic)
    await side_producer.close()
    await side_producer.close()  # idempotent
    with pytest.raises(AlreadyClosedError):
        await side_producer.send(b"late")
    await other.close()
    await other.close()  # idempotent
    with pytest.raises(AlreadyClosedError):
        await other.receive(timeout=1.0)
    await probe.assert_intact()


async def test_unsubscribe_with_other_consumers_is_busy(backend: Backend) -> None:
    probe = await Probe.start(backend, SHARED)
    other = await backend.subscribe(probe.topic, "sub", SHARED, consumer_name="other")
    await probe.send()
    with pytest.raises(ConsumerBusyError):
        await other.unsubscribe()
    # Both consumers are still subscribed: together they get every message exactly once
    await probe.send(20, key=None)
    got = await backend.collect({"probe": probe.consumer, "other": other})
    assert sorted(texts(got["probe"] + got["other"])) == sorted(probe.sent)


def test_bad_policies_rejected() -> None:
    with pytest.raises(InvalidArgumentError, match="max_redeliver_count"):
        DeadLetterPolicy(max_redeliver_count=0)
    with pytest.raises(InvalidArgumentError, match="overlap"):
        KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=[(0, 10), (5, 20)])
    with pytest.raises(InvalidArgumentError, match="invalid sticky range"):
        KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=[(10, 5)])
    with pytest.raises(InvalidArgumentError, match="invalid sticky range"):
        KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=[(0, 65536)])
    with pytest.raises(InvalidArgumentError, match="STICKY"):
        KeySharedPolicy(sticky_ranges=[(0, 10)])
