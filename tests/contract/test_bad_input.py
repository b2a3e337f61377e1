"""Bad input: the specific keylane error, a useful message, and nothing else changes.

Each test sets up a working subscription, makes a bad call, and then checks that the broker's
state is intact (existing consumers keep receiving, the subscription is not occupied by the
rejected consumer) and that no message was lost or duplicated.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keylane.brokers import connect
from keylane.brokers.base import (
    BatchingType,
    Consumer,
    DeadLetterPolicy,
    KeySharedMode,
    KeySharedPolicy,
    Producer,
    SubscriptionType,
)
from keylane.brokers.validation import (
    MAX_ACK_TIMEOUT,
    MAX_EVENT_TIME,
    MAX_PARTITIONS,
    MAX_RECEIVER_QUEUE_SIZE,
    MAX_SECONDS,
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
        cls,
        backend: Backend,
        subscription_type: SubscriptionType = SHARED,
        *,
        partitions: int = 0,
        batching: BatchingType | None = None,
        **options: Any,
    ) -> Probe:
        topic = backend.topic()
        if partitions:
            await backend.broker.create_topic(topic, partitions)
        consumer = await backend.subscribe(
            topic, "sub", subscription_type, consumer_name="probe", **options
        )
        return cls(backend, topic, await backend.producer(topic, batching=batching), consumer)

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


# --------------------------------------------------------------------------- one rule set
# Issue 7, items 2 and 8: every argument that reaches the wire is checked by the shared rules
# (keylane.brokers.validation, keylane._validate) on both backends, with finite bounds, before
# anything is created or published. Each test makes many bad calls on one probe (a probe costs
# seconds on real Pulsar), names the call that was not rejected, then checks nothing changed.

#: A lone surrogate, as ``json.loads('"\\ud800"')`` makes it: a str that has no UTF-8 bytes.
SURROGATE = json.loads('"\\ud800"')
INF = float("inf")
NAN = float("nan")
HUGE_INT = 10**400  # float() of it overflows


async def expect_rejections(calls: list[tuple[str, Callable[[], object]]]) -> None:
    """Run (and await) every call; each must raise InvalidArgumentError naming the argument."""
    problems = []
    for mentions, call in calls:
        try:
            result = call()
            if inspect.isawaitable(result):
                await result
        except InvalidArgumentError as exc:
            if mentions not in str(exc):
                problems.append(f"{mentions}: message does not name it: {exc}")
        except Exception as exc:
            problems.append(f"{mentions}: raised {type(exc).__name__}: {exc}")
        else:
            problems.append(f"{mentions}: accepted")
    assert not problems, "\n".join(problems)


def sending(producer: Producer, **options: Any) -> Callable[[], Awaitable[object]]:
    return lambda: producer.send(b"bad", **options)


@pytest.mark.parametrize(
    ("partitions", "batching"),
    [(0, None), (3, BatchingType.KEY_BASED)],
    ids=["unbatched", "partitioned-batched"],
)
async def test_send_text_that_is_not_utf8_is_rejected_and_delivery_goes_on(
    backend: Backend, partitions: int, batching: BatchingType | None
) -> None:
    # Item 2: the memory broker took such a key, then stopped delivering every key.
    probe = await Probe.start(backend, KEY_SHARED, partitions=partitions, batching=batching)
    await probe.send()
    producer = probe.producer
    await expect_rejections(
        [
            ("key", sending(producer, key=SURROGATE)),
            ("key", sending(producer, key="user-" + SURROGATE + "-1")),
            ("ordering_key", sending(producer, ordering_key=SURROGATE)),
            ("ordering_key", sending(producer, key="k", ordering_key="o" + SURROGATE)),
            ("properties", sending(producer, key="k", properties={SURROGATE: "v"})),
            ("properties", sending(producer, key="k", properties={"p": "v" + SURROGATE})),
        ]
    )
    await probe.assert_intact()  # every key still flows; no bad message was published


async def test_names_that_are_not_utf8_are_rejected(backend: Backend) -> None:
    probe = await Probe.start(backend, SHARED)
    broker = backend.broker
    bad_topic = backend.topic("bad" + SURROGATE)

    def dead_letter(**options: Any) -> Callable[[], Awaitable[object]]:
        return lambda: broker.subscribe(
            probe.topic,
            "sub",
            subscription_type=SHARED,
            consumer_name="dl",
            dead_letter_policy=DeadLetterPolicy(max_redeliver_count=1, **options),
        )

    await expect_rejections(
        [
            ("topic", lambda: broker.create_topic(bad_topic)),
            ("topic", lambda: broker.create_topic(bad_topic, 2)),
            ("topic", lambda: broker.topic_partitions(bad_topic)),
            ("topic", lambda: broker.create_producer(bad_topic)),
            ("topic", lambda: broker.subscribe(bad_topic, "sub")),
            ("producer_name", lambda: broker.create_producer(probe.topic, producer_name=SURROGATE)),
            ("subscription", lambda: broker.subscribe(probe.topic, "s" + SURROGATE)),
            (
                "consumer_name",
                lambda: broker.subscribe(
                    probe.topic, "sub", subscription_type=SHARED, consumer_name="c" + SURROGATE
                ),
            ),
            ("dead_letter_topic", dead_letter(dead_letter_topic=backend.topic(SURROGATE))),
            ("dead_letter_topic", dead_letter(dead_letter_topic="a/b")),
            ("dead_letter_topic", dead_letter(dead_letter_topic=42)),
            ("initial_subscription_name", dead_letter(initial_subscription_name=SURROGATE)),
            ("initial_subscription_name", dead_letter(initial_subscription_name=7)),
        ]
    )
    await probe.assert_intact()  # no rejected consumer took a share of the subscription


async def test_non_finite_and_huge_send_times_are_rejected(backend: Backend) -> None:
    # Item 8: Pulsar raised raw client errors for these, the memory broker accepted some.
    probe = await Probe.start(backend, SHARED)
    await probe.send()
    producer = probe.producer
    far = datetime.now(UTC) + timedelta(seconds=MAX_SECONDS + 86_400)
    await expect_rejections(
        [
            *(
                ("deliver_after", sending(producer, deliver_after=value))
                for value in (INF, -INF, 1e300, HUGE_INT, MAX_SECONDS * 2, timedelta.max)
            ),
            *(
                ("deliver_at", sending(producer, deliver_at=value))
                for value in (INF, NAN, 1e300, HUGE_INT, far, far.timestamp())
            ),
            *(
                ("event_time", sending(producer, event_time=value))
                for value in (NAN, INF, -INF, 0, 0.0, -1.0, 1e300, HUGE_INT, MAX_EVENT_TIME + 1)
            ),
        ]
    )
    await probe.assert_intact()


async def test_largest_send_times_are_accepted(backend: Backend) -> None:
    probe = await Probe.start(backend, SHARED)
    # Delayed by the longest allowed delay: stored, never due within the test.
    await probe.producer.send(b"late", deliver_after=MAX_SECONDS)
    await probe.producer.send(b"stamped", event_time=MAX_EVENT_TIME)
    message = await backend.receive(probe.consumer)
    await probe.consumer.acknowledge(message)
    assert (message.data, message.event_time) == (b"stamped", MAX_EVENT_TIME)
    await probe.assert_intact()  # ...and "late" does not arrive


async def test_non_finite_huge_and_mistyped_subscribe_options_are_rejected(
    backend: Backend,
) -> None:
    probe = await Probe.start(backend, SHARED)
    broker = backend.broker
    topic = backend.topic("exclusive")

    def subscribing(**options: Any) -> Callable[[], Awaitable[object]]:
        return lambda: broker.subscribe(topic, "sub", subscription_type=EXCLUSIVE, **options)

    def key_shared(**policy: Any) -> Callable[[], Awaitable[object]]:
        return lambda: broker.subscribe(
            topic, "sub", subscription_type=KEY_SHARED, key_shared_policy=KeySharedPolicy(**policy)
        )

    await expect_rejections(
        [
            *(
                ("ack_timeout", subscribing(ack_timeout=value))
                for value in (INF, NAN, 1e300, HUGE_INT, MAX_ACK_TIMEOUT + 1, timedelta.max)
            ),
            *(
                ("negative_ack_redelivery_delay", subscribing(negative_ack_redelivery_delay=value))
                for value in (INF, NAN, 1e300, HUGE_INT, MAX_SECONDS * 2, timedelta.max)
            ),
            *(
                ("receiver_queue_size", subscribing(receiver_queue_size=value))
                for value in (MAX_RECEIVER_QUEUE_SIZE + 1, 2**31, HUGE_INT, 10.0, "10")
            ),
            ("priority_level", subscribing(priority_level=HUGE_INT)),
            ("max_redeliver_count", lambda: DeadLetterPolicy(max_redeliver_count=2**31)),
            ("max_redeliver_count", lambda: DeadLetterPolicy(max_redeliver_count=HUGE_INT)),
            ("allow_out_of_order_delivery", key_shared(allow_out_of_order_delivery="no")),
            ("sticky_ranges", key_shared(mode=KeySharedMode.STICKY, sticky_ranges=[(0, INF)])),
            ("sticky_ranges", key_shared(mode=KeySharedMode.STICKY, sticky_ranges=[(0.5, 9)])),
            ("sticky_ranges", key_shared(mode=KeySharedMode.STICKY, sticky_ranges=[("0", "9")])),
            ("sticky_ranges", key_shared(mode=KeySharedMode.STICKY, sticky_ranges=[(0,)])),
            ("sticky_ranges", key_shared(mode=KeySharedMode.STICKY, sticky_ranges=7)),
            ("timeout", lambda: probe.consumer.receive(timeout=INF)),
            ("timeout", lambda: probe.consumer.receive(timeout=NAN)),
            ("timeout", lambda: probe.consumer.receive(timeout=HUGE_INT)),
        ]
    )
    # The rejected consumers do not occupy the Exclusive subscription
    await backend.subscribe(topic, "sub", EXCLUSIVE, consumer_name="valid")
    await probe.assert_intact()


async def test_largest_subscribe_options_are_accepted(backend: Backend) -> None:
    probe = await Probe.start(
        backend,
        SHARED,
        ack_timeout=MAX_ACK_TIMEOUT,
        negative_ack_redelivery_delay=MAX_SECONDS,
        receiver_queue_size=MAX_RECEIVER_QUEUE_SIZE,
    )
    await probe.assert_intact()


async def test_non_finite_and_huge_producer_and_topic_options_are_rejected(
    backend: Backend,
) -> None:
    probe = await Probe.start(backend, SHARED)
    broker = backend.broker

    def producing(**options: Any) -> Callable[[], Awaitable[object]]:
        return lambda: broker.create_producer(probe.topic, producer_name="bad", **options)

    await expect_rejections(
        [
            *(
                ("batching_max_publish_delay", producing(batching_max_publish_delay=value))
                for value in (INF, NAN, 1e300, HUGE_INT, MAX_SECONDS * 2, timedelta.max)
            ),
            *(
                ("batching_max_messages", producing(batching_max_messages=value))
                for value in (2**31, HUGE_INT, 10.0)
            ),
            ("partitions", lambda: broker.create_topic(backend.topic("p"), MAX_PARTITIONS + 1)),
            ("partitions", lambda: broker.create_topic(backend.topic("p"), HUGE_INT)),
        ]
    )
    # Nothing was created: the name "bad" is free, and the topic "p" can be created unpartitioned
    await backend.producer(probe.topic, producer_name="bad")
    await broker.create_topic(backend.topic("p"))
    assert await broker.topic_partitions(backend.topic("p")) == [backend.topic("p")]
    await probe.assert_intact()


@pytest.mark.parametrize("url", ["memory://", "pulsar://127.0.0.1:6650"], ids=["memory", "pulsar"])
def test_connect_rejects_bad_arguments_before_any_io(url: str) -> None:
    # Item 8: connect(None) and connect(42) raised a raw TypeError. The constructors do no I/O,
    # so this needs no server.
    for bad in (None, 42, b"memory://", "memory://" + SURROGATE):
        with pytest.raises(InvalidArgumentError, match="url"):
            connect(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="no_such_option"):
        connect(url, no_such_option=1)
    if url.startswith("pulsar"):
        cases: list[tuple[dict[str, Any], str]] = [
            ({"operation_timeout": INF}, "operation_timeout"),
            ({"operation_timeout": 1e300}, "operation_timeout"),
            ({"connection_timeout": NAN}, "connection_timeout"),
            ({"connection_timeout": 1e300}, "connection_timeout"),
            ({"io_threads": 2**31}, "io_threads"),
            ({"log_level": []}, "log_level"),
            ({"log_file": "x" + SURROGATE}, "log_file"),
            ({"log_file": b"x.log"}, "log_file"),
            ({"admin_url": "http://" + SURROGATE}, "admin_url"),
        ]
        for options, mentions in cases:
            with pytest.raises(InvalidArgumentError, match=mentions):
                connect(url, **options)
        with pytest.raises(InvalidArgumentError, match="url"):
            connect("pulsar://" + SURROGATE)


async def test_receive_timeout_is_checked_even_with_messages_waiting(backend: Backend) -> None:
    # The memory consumer returned a prefetched message without looking at the timeout.
    probe = await Probe.start(backend, SHARED)
    await probe.send(3)
    first = await backend.receive(probe.consumer)
    await probe.consumer.acknowledge(first)
    probe.received.append(first.data.decode())
    await backend.settle(backend.ack_flush)  # the other two are prefetched by now
    await expect_rejections(
        [
            ("timeout", lambda: probe.consumer.receive(timeout=-1)),
            ("timeout", lambda: probe.consumer.receive(timeout=INF)),
            ("timeout", lambda: probe.consumer.receive(timeout="1")),  # type: ignore[arg-type]
        ]
    )
    await probe.assert_intact()
