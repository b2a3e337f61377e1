"""Pure parts of the Pulsar backend: validation, unit conversion, routing, error mapping.

No broker needed; ``to_message`` uses a client message built locally.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keylane.brokers.base import (
    BatchingType,
    DeadLetterPolicy,
    KeySharedPolicy,
    MessageId,
)
from keylane.brokers.pulsar._admin import topic_path
from keylane.brokers.pulsar._convert import (
    PartitionRouter,
    client_subscribe_args,
    error_for_result,
    message_id_from_native,
    optional_text,
    to_millis,
    validate_send,
)
from keylane.brokers.validation import check_producer_args, check_subscribe_args
from keylane.errors import (
    AlreadyClosedError,
    BrokerAuthenticationError,
    BrokerConnectionError,
    BrokerError,
    ConsumerBusyError,
    CumulativeAckNotAllowedError,
    InvalidArgumentError,
    OperationTimeoutError,
    StickyRangeConflictError,
    TopicNotFoundError,
)
from keylane.hashing import partition_for_key
from tests.unit.test_validation import SUBSCRIBE_DEFAULTS

NOW = 1_700_000_000.0


def send(data: object = b"x", **options: Any):
    args: dict[str, Any] = {
        "key": None,
        "ordering_key": None,
        "properties": None,
        "deliver_after": None,
        "deliver_at": None,
        "event_time": None,
    }
    args.update(options)
    return validate_send(data, now=lambda: NOW, **args)


def subscribe_args(**options: Any) -> tuple[int | None, int]:
    """What ``PulsarBroker.subscribe`` checks and converts, without a broker."""
    args = {**SUBSCRIBE_DEFAULTS, **options}
    ack_timeout, nack_delay = check_subscribe_args(**args)
    return client_subscribe_args(args["priority_level"], ack_timeout, nack_delay)


# --------------------------------------------------------------------------- units


def test_to_millis_rounds_to_nearest_millisecond() -> None:
    assert to_millis(0.2) == 200
    assert to_millis(10.0) == 10_000
    assert to_millis(0.0004) == 0
    assert to_millis(1.2345) == 1234


def test_optional_text_treats_empty_as_unset() -> None:
    assert optional_text("") is None
    assert optional_text(b"") is None
    assert optional_text(None) is None
    assert optional_text("k") == "k"
    assert optional_text(b"k") == "k"


# --------------------------------------------------------------------------- send


def test_send_converts_times_to_epoch_millis() -> None:
    options = send(deliver_after=2.5, event_time=NOW - 1)
    assert options.deliver_at_ms == round((NOW + 2.5) * 1000)
    assert options.event_time_ms == round((NOW - 1) * 1000)
    at = datetime(2030, 1, 1, tzinfo=UTC)
    assert send(deliver_at=at).deliver_at_ms == round(at.timestamp() * 1000)
    assert send(deliver_at=NOW + 5).deliver_at_ms == round((NOW + 5) * 1000)
    assert send(deliver_after=timedelta(seconds=3)).deliver_at_ms == round((NOW + 3) * 1000)


def test_zero_delay_is_not_a_delayed_message() -> None:
    assert send(deliver_after=0).deliver_at_ms is None
    assert send().deliver_at_ms is None


def test_send_keeps_keys_and_copies_properties() -> None:
    props = {"a": "1"}
    options = send(key="k", ordering_key="o", properties=props)
    assert (options.key, options.ordering_key) == ("k", "o")
    assert options.properties == {"a": "1"}
    props["a"] = "2"
    assert options.properties == {"a": "1"}


@pytest.mark.parametrize(
    ("data", "options", "mentions"),
    [
        ("text", {}, "bytes"),
        (bytearray(b"x"), {}, "bytes"),
        (None, {}, "bytes"),
        (b"x", {"key": 1}, "key"),
        (b"x", {"ordering_key": b"o"}, "ordering_key"),
        (b"x", {"properties": {"a": 1}}, "properties"),
        (b"x", {"properties": [("a", "b")]}, "properties"),
        (b"x", {"deliver_after": -1}, "deliver_after"),
        (b"x", {"deliver_after": float("nan")}, "deliver_after"),
        (b"x", {"deliver_after": "5"}, "deliver_after"),
        (b"x", {"deliver_after": 1, "deliver_at": NOW}, "not both"),
        (b"x", {"deliver_at": -5.0}, "deliver_at"),
        (b"x", {"deliver_at": "tomorrow"}, "deliver_at"),
        (b"x", {"event_time": True}, "event_time"),
        (b"x", {"event_time": -1.0}, "event_time"),
    ],
)
def test_bad_send_arguments(data: object, options: dict[str, Any], mentions: str) -> None:
    with pytest.raises(InvalidArgumentError, match=mentions):
        send(data, **options)


# --------------------------------------------------------------------------- producer


def test_producer_args_return_delay_seconds() -> None:
    assert check_producer_args(BatchingType.KEY_BASED, 10, 0.25, None) == 0.25
    assert check_producer_args(None, 1, timedelta(milliseconds=5), "p") == 0.005


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (("KeyBased", 10, 0.01, None), "batching"),
        ((None, 0, 0.01, None), "batching_max_messages"),
        ((None, True, 0.01, None), "batching_max_messages"),
        ((None, 10, -0.01, None), "batching_max_publish_delay"),
        ((None, 10, 0.01, ""), "producer_name"),
        ((None, 10, 0.01, 7), "producer_name"),
    ],
)
def test_bad_producer_args(args: tuple[Any, ...], mentions: str) -> None:
    with pytest.raises(InvalidArgumentError, match=mentions):
        check_producer_args(*args)


# --------------------------------------------------------------------------- routing


def test_keyed_messages_route_by_murmur3() -> None:
    router = PartitionRouter(batching=True, max_messages=1000, max_delay=0.01)
    for n in (2, 3, 7, 16):
        for i in range(50):
            key = f"user-{i}"
            assert router.route(key, n) == partition_for_key(key, n)
    # Spec 8 case 49: "key-1" on 3 partitions is 414258592 % 3 = 1.
    assert router.route("key-1", 3) == 1


def test_single_partition_and_unpartitioned_go_to_zero() -> None:
    router = PartitionRouter(batching=False, max_messages=1, max_delay=0.0, start=5)
    assert router.route("k", 1) == 0
    assert router.route(None, 0) == 0


def test_keyless_round_robin_per_message_without_batching() -> None:
    router = PartitionRouter(batching=False, max_messages=1000, max_delay=0.01, start=2)
    assert [router.route(None, 4) for _ in range(8)] == [2, 3, 0, 1, 2, 3, 0, 1]


def test_empty_key_counts_as_no_key() -> None:
    router = PartitionRouter(batching=False, max_messages=1000, max_delay=0.01, start=0)
    assert [router.route("", 3) for _ in range(3)] == [0, 1, 2]


def test_keyless_round_robin_per_batch_with_batching() -> None:
    now = [100.0]
    router = PartitionRouter(
        batching=True, max_messages=3, max_delay=1.0, clock=lambda: now[0], start=0
    )
    # Stays on a partition until max_messages (C++ RoundRobinMessageRouter), then moves on.
    first = [router.route(None, 4) for _ in range(2)]
    second = [router.route(None, 4) for _ in range(2)]
    assert first == [1, 1]
    assert second == [2, 2]
    # ...or when the publish delay has passed since the last switch.
    now[0] += 1.0
    assert router.route(None, 4) == 3


# --------------------------------------------------------------------------- subscribe


def test_subscribe_args_convert_to_millis() -> None:
    assert subscribe_args() == (None, 60_000)
    assert subscribe_args(ack_timeout=10, negative_ack_redelivery_delay=0.1) == (10_000, 100)
    assert subscribe_args(ack_timeout=timedelta(seconds=30)) == (30_000, 60_000)
    policy = KeySharedPolicy(allow_out_of_order_delivery=True)
    assert subscribe_args(key_shared_policy=policy, dead_letter_policy=DeadLetterPolicy(3))


@pytest.mark.parametrize(
    ("options", "mentions"),
    [
        ({"subscription": ""}, "subscription"),
        ({"subscription": "  "}, "subscription"),
        ({"subscription_type": "Shared"}, "subscription_type"),
        ({"consumer_name": ""}, "consumer_name"),
        ({"receiver_queue_size": 0}, "receiver_queue_size"),
        ({"receiver_queue_size": 1.5}, "receiver_queue_size"),
        ({"ack_timeout": 9.99}, "ack_timeout"),
        ({"ack_timeout": -1}, "ack_timeout"),
        ({"negative_ack_redelivery_delay": 0.05}, "negative_ack_redelivery_delay"),
        ({"dead_letter_policy": {"max_redeliver_count": 1}}, "dead_letter_policy"),
        ({"key_shared_policy": "sticky"}, "key_shared_policy"),
        ({"priority_level": -1}, "priority_level"),
        ({"initial_position": "Earliest"}, "initial_position"),
    ],
)
def test_bad_subscribe_args(options: dict[str, Any], mentions: str) -> None:
    with pytest.raises(InvalidArgumentError, match=mentions):
        subscribe_args(**options)


def test_priority_level_is_rejected_with_the_reason() -> None:
    with pytest.raises(InvalidArgumentError, match=r"priority_level.*Python client"):
        subscribe_args(priority_level=1)


# --------------------------------------------------------------------------- ids and errors


class FakeId:
    def partition(self) -> int:
        return 2

    def ledger_id(self) -> int:
        return 17

    def entry_id(self) -> int:
        return 4

    def batch_index(self) -> int:
        return -1


def test_message_id_from_native() -> None:
    assert message_id_from_native(FakeId()) == MessageId(2, 17, 4, -1)
    assert str(message_id_from_native(FakeId())) == "(17,4,2,-1)"  # ORIGIN_MESSAGE_ID format


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("Timeout", OperationTimeoutError),
        ("ConnectError", BrokerConnectionError),
        ("NotConnected", BrokerConnectionError),
        ("AlreadyClosed", AlreadyClosedError),
        ("ConsumerBusy", ConsumerBusyError),
        ("ConsumerAssignError", StickyRangeConflictError),
        ("CumulativeAcknowledgementNotAllowedError", CumulativeAckNotAllowedError),
        ("TopicNotFound", TopicNotFoundError),
        ("AuthenticationError", BrokerAuthenticationError),
        ("AuthorizationError", BrokerAuthenticationError),
        ("InvalidTopicName", InvalidArgumentError),
        ("InvalidConfiguration", InvalidArgumentError),
        ("ProducerBusy", BrokerError),
        ("UnknownError", BrokerError),
    ],
)
def test_error_for_result(result: str, expected: type[Exception]) -> None:
    error = error_for_result(result, f"9 {result}", "do things")
    assert type(error) is expected
    assert str(error).startswith("cannot do things:")
    assert result in str(error)


def test_error_reasons_the_client_drops_are_restored() -> None:
    assert "conflict" in str(error_for_result("ConsumerAssignError", "36", "subscribe")).lower()
    cumulative = error_for_result("CumulativeAcknowledgementNotAllowedError", "37", "ack")
    assert "not allowed on Shared and Key_Shared" in str(cumulative)


def test_timeout_error_is_also_a_builtin_timeout() -> None:
    assert isinstance(error_for_result("Timeout", "3 Timeout", "send"), TimeoutError)


def test_admin_topic_path_quotes_each_part() -> None:
    assert topic_path("persistent://public/default/t1") == "persistent/public/default/t1"
    assert topic_path("non-persistent://a/b/c d") == "non-persistent/a/b/c%20d"
