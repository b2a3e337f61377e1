"""The contract's shared argument rules (``keylane.brokers.validation``).

The backends' error messages are covered through the brokers (``tests/contract/test_bad_input.py``,
``tests/unit/memory/test_producer.py``, ``tests/unit/test_pulsar_convert.py``); these tests pin
what the backends build on: the returned units, clocks and copies.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keylane.brokers.base import InitialPosition, SubscriptionType
from keylane.brokers.validation import (
    MIN_ACK_TIMEOUT,
    MIN_NACK_DELAY,
    NO_PROPERTIES,
    check_partitions,
    check_properties,
    check_send_args,
    check_subscribe_args,
    delivery_time,
)
from keylane.errors import InvalidArgumentError

EPOCH = 1_700_000_000.0


#: Valid ``subscribe`` arguments, to override one at a time.
SUBSCRIBE_DEFAULTS: dict[str, Any] = {
    "subscription": "sub",
    "subscription_type": SubscriptionType.KEY_SHARED,
    "consumer_name": None,
    "receiver_queue_size": 1000,
    "ack_timeout": None,
    "negative_ack_redelivery_delay": 60.0,
    "dead_letter_policy": None,
    "key_shared_policy": None,
    "priority_level": 0,
    "initial_position": InitialPosition.LATEST,
}


def subscribe_args(**options: Any) -> tuple[float | None, float]:
    return check_subscribe_args(**{**SUBSCRIBE_DEFAULTS, **options})


def test_subscribe_args_return_seconds() -> None:
    assert subscribe_args() == (None, 60.0)
    assert subscribe_args(ack_timeout=timedelta(seconds=12), negative_ack_redelivery_delay=0.5) == (
        12.0,
        0.5,
    )
    assert subscribe_args(
        ack_timeout=MIN_ACK_TIMEOUT, negative_ack_redelivery_delay=MIN_NACK_DELAY
    ) == (MIN_ACK_TIMEOUT, MIN_NACK_DELAY)


def test_subscribe_args_accept_any_priority_level() -> None:
    # Rejecting a non-zero level is the Pulsar backend's rule, not the contract's.
    assert subscribe_args(priority_level=3) == (None, 60.0)


@pytest.mark.parametrize(
    ("options", "mentions"),
    [
        # (Each argument's range is also covered through tests/unit/test_pulsar_convert.py.)
        ({"receiver_queue_size": True}, "receiver_queue_size must be an int >= 1"),
        ({"priority_level": 1.0}, "priority_level must be an int >= 0"),
        ({"ack_timeout": 9.99}, "ack_timeout should be greater than 10 seconds"),
        ({"negative_ack_redelivery_delay": 0.05}, "at least 0.1 s"),
    ],
)
def test_bad_subscribe_args(options: dict[str, Any], mentions: str) -> None:
    with pytest.raises(InvalidArgumentError, match=mentions):
        subscribe_args(**options)


@pytest.mark.parametrize("partitions", [-1, True, 1.5, "3", None])
def test_bad_partition_counts(partitions: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="partitions must be an int >= 0"):
        check_partitions(partitions)


def test_partition_counts_from_zero_are_accepted() -> None:
    for partitions in (0, 1, 16):
        check_partitions(partitions)


def test_delivery_time_on_a_foreign_clock() -> None:
    loop_now = 500.0  # e.g. a virtual event-loop clock
    assert delivery_time(None, None, loop_now, EPOCH) is None
    # A delay is added to the caller's clock exactly (virtual-time tests rely on it).
    assert delivery_time(3, None, loop_now, EPOCH) == 503.0
    assert delivery_time(timedelta(seconds=0.25), None, loop_now, EPOCH) == 500.25
    assert delivery_time(0, None, loop_now, EPOCH) == loop_now
    # An absolute time keeps its distance from now.
    assert delivery_time(None, EPOCH + 30, loop_now, EPOCH) == pytest.approx(530.0)
    at = datetime.fromtimestamp(EPOCH - 5, UTC)
    assert delivery_time(None, at, loop_now, EPOCH) == pytest.approx(495.0)


def test_delivery_time_on_the_epoch_clock_is_exact() -> None:
    assert delivery_time(None, EPOCH + 0.001, EPOCH, EPOCH) == EPOCH + 0.001
    assert delivery_time(2.5, None, EPOCH, EPOCH) == EPOCH + 2.5


@pytest.mark.parametrize(
    ("deliver_after", "deliver_at", "mentions"),
    [
        (1, EPOCH, "not both"),
        (-1, None, "deliver_after must not be negative"),
        ("5", None, "deliver_after must be seconds"),
        (None, -1.0, "deliver_at must not be negative"),
        (None, float("nan"), "deliver_at must not be negative"),
        (None, True, "deliver_at must be a datetime"),
    ],
)
def test_bad_delivery_times(deliver_after: Any, deliver_at: Any, mentions: str) -> None:
    with pytest.raises(InvalidArgumentError, match=mentions):
        delivery_time(deliver_after, deliver_at, EPOCH, EPOCH)


def test_properties_are_copied_read_only() -> None:
    assert check_properties(None) is NO_PROPERTIES
    assert check_properties({}) is NO_PROPERTIES
    source = {"a": "1"}
    props = check_properties(source)
    source["a"] = "2"
    assert props == {"a": "1"}
    with pytest.raises(TypeError):
        props["a"] = "3"  # type: ignore[index]


def test_send_args_return_the_properties_and_accept_a_bytes_subclass() -> None:
    class Payload(bytes):
        pass

    assert check_send_args(Payload(b"x"), "k", None, {"p": "v"}, 1.5) == {"p": "v"}
    assert check_send_args(b"x", None, "o", None, None) is NO_PROPERTIES


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        ((bytearray(b"x"), None, None, None, None), "data must be bytes"),
        ((b"x", 1, None, None, None), "key must be a str or None"),
        ((b"x", None, b"o", None, None), "ordering_key must be a str or None"),
        ((b"x", None, None, [("a", "b")], None), "properties must be a mapping"),
        ((b"x", None, None, {"a": 1}, None), "properties must map str to str"),
        ((b"x", None, None, None, "now"), "event_time must be seconds"),
        ((b"x", None, None, None, False), "event_time must be seconds"),
    ],
)
def test_bad_send_args(args: tuple[Any, ...], mentions: str) -> None:
    with pytest.raises(InvalidArgumentError, match=mentions):
        check_send_args(*args)
