"""The contract's shared argument rules (``keylane.brokers.validation``).

The backends' error messages are covered through the brokers (``tests/contract/test_bad_input.py``,
``tests/unit/memory/test_producer.py``, ``tests/unit/test_pulsar_convert.py``); these tests pin
what the backends build on: the returned units, clocks and copies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keylane.brokers.base import (
    DeadLetterPolicy,
    InitialPosition,
    KeySharedMode,
    KeySharedPolicy,
    SubscriptionType,
    normalize_topic,
    to_seconds,
)
from keylane.brokers.validation import (
    MAX_ACK_TIMEOUT,
    MAX_EVENT_TIME,
    MAX_INT32,
    MAX_PARTITIONS,
    MAX_RECEIVER_QUEUE_SIZE,
    MAX_SECONDS,
    MIN_ACK_TIMEOUT,
    MIN_NACK_DELAY,
    NO_PROPERTIES,
    check_event_time,
    check_partitions,
    check_producer_args,
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
        ({"receiver_queue_size": True}, "receiver_queue_size must be an int, not True"),
        ({"receiver_queue_size": 0}, "receiver_queue_size must be >= 1, got 0"),
        ({"priority_level": 1.0}, "priority_level must be an int, not 1.0"),
        ({"priority_level": -1}, "priority_level must be >= 0, got -1"),
        ({"ack_timeout": 9.99}, "ack_timeout should be greater than 10 seconds"),
        ({"negative_ack_redelivery_delay": 0.05}, "at least 0.1 s"),
    ],
)
def test_bad_subscribe_args(options: dict[str, Any], mentions: str) -> None:
    with pytest.raises(InvalidArgumentError, match=mentions):
        subscribe_args(**options)


@pytest.mark.parametrize("partitions", [-1, True, 1.5, "3", None, MAX_PARTITIONS + 1, 10**400])
def test_bad_partition_counts(partitions: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=r"partitions must be (an int|>= 0|<= )"):
        check_partitions(partitions)


def test_partition_counts_from_zero_are_accepted() -> None:
    for partitions in (0, 1, 16, MAX_PARTITIONS):
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
        ("5", None, "deliver_after must be a number of seconds"),
        (None, -1.0, "deliver_at must not be negative"),
        (None, float("nan"), "deliver_at must be a finite time"),
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
        ((b"x", None, None, None, "now"), "event_time must be"),
        ((b"x", None, None, None, False), "event_time must be"),
    ],
)
def test_bad_send_args(args: tuple[Any, ...], mentions: str) -> None:
    with pytest.raises(InvalidArgumentError, match=mentions):
        check_send_args(*args)


# --------------------------------------------------------------------------- issue 7, items 2, 8

SURROGATE = json.loads('"\\ud800"')
HUGE_INT = 10**400


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (b"x", SURROGATE, None, None, None),
            "key must be valid UTF-8 text, but it holds the lone surrogate '\\ud800' at index 0",
        ),
        (
            (b"x", "k", "ord-" + SURROGATE, None, None),
            "ordering_key must be valid UTF-8 text, but it holds the lone surrogate '\\ud800' "
            "at index 4",
        ),
        (
            (b"x", None, None, {SURROGATE: "v"}, None),
            "properties name must be valid UTF-8 text, but it holds the lone surrogate",
        ),
        (
            (b"x", None, None, {"p": SURROGATE}, None),
            "properties['p'] must be valid UTF-8 text, but it holds the lone surrogate",
        ),
    ],
)
def test_send_text_must_encode_to_utf8(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_send_args(*args)
    assert str(info.value).startswith(message)


def test_non_ascii_text_that_encodes_is_accepted() -> None:
    props = check_send_args(b"x", "ünïcödé-✓", "ключ", {"naïve": "café"}, None)
    assert props == {"naïve": "café"}


@pytest.mark.parametrize(
    ("event_time", "message"),
    [
        (float("nan"), "event_time must be finite, got nan"),
        (float("inf"), "event_time must be finite, got inf"),
        (0, "event_time must be positive (Pulsar reads 0 as unset), got 0"),
        (-1.5, "event_time must be positive (Pulsar reads 0 as unset), got -1.5"),
        (-HUGE_INT, "event_time must be positive"),
        (MAX_EVENT_TIME + 1, "event_time must be at most 253402300799 (9999-12-31T23:59:59Z)"),
        (HUGE_INT, "event_time must be at most 253402300799"),
        ("now", "event_time must be seconds since the epoch or None, not 'now'"),
    ],
)
def test_bad_event_times(event_time: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_event_time(event_time)
    assert str(info.value).startswith(message)


def test_event_times_from_just_after_the_epoch_to_year_9999_are_accepted() -> None:
    assert check_event_time(None) is None
    assert check_event_time(0.001) == 0.001
    assert check_event_time(1) == 1.0
    assert check_event_time(MAX_EVENT_TIME) == MAX_EVENT_TIME
    assert datetime.fromtimestamp(MAX_EVENT_TIME, UTC).year == 9999


@pytest.mark.parametrize(
    ("deliver_after", "deliver_at", "mentions"),
    [
        (float("inf"), None, "deliver_after must be a finite number of seconds"),
        (1e300, None, "deliver_after must be at most 3,155,760,000 s (100 years)"),
        (HUGE_INT, None, "deliver_after must be at most"),
        (timedelta.max, None, "deliver_after must be at most"),
        (None, float("inf"), "deliver_at must be at most 3,155,760,000 s (100 years) from now"),
        (None, -float("inf"), "deliver_at must not be negative"),
        (None, HUGE_INT, "deliver_at must be at most"),
        (None, -HUGE_INT, "deliver_at must not be negative"),
        (None, EPOCH + MAX_SECONDS + 1, "deliver_at must be at most"),
        (None, datetime(1960, 1, 1, tzinfo=UTC), "deliver_at must not be negative"),
        (None, datetime.max.replace(tzinfo=UTC), "deliver_at must be at most"),
    ],
)
def test_non_finite_and_far_delivery_times(
    deliver_after: Any, deliver_at: Any, mentions: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(mentions)):
        delivery_time(deliver_after, deliver_at, EPOCH, EPOCH)


def test_delivery_times_up_to_the_bound_are_accepted() -> None:
    assert delivery_time(MAX_SECONDS, None, EPOCH, EPOCH) == EPOCH + MAX_SECONDS
    assert delivery_time(None, EPOCH + MAX_SECONDS, EPOCH, EPOCH) == EPOCH + MAX_SECONDS
    assert delivery_time(None, 0, EPOCH, EPOCH) == 0.0  # in the past: due at once


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ack_timeout": float("inf")}, "ack_timeout must be a finite number of seconds"),
        ({"ack_timeout": MAX_ACK_TIMEOUT + 1}, "ack_timeout must be at most 3,600 s (1 hour)"),
        ({"ack_timeout": timedelta.max}, "ack_timeout must be at most 3,600 s"),
        (
            {"negative_ack_redelivery_delay": float("nan")},
            "negative_ack_redelivery_delay must be a",
        ),
        ({"negative_ack_redelivery_delay": 1e300}, "negative_ack_redelivery_delay must be at most"),
        (
            {"receiver_queue_size": MAX_RECEIVER_QUEUE_SIZE + 1},
            "receiver_queue_size must be <= 1000000",
        ),
        ({"priority_level": MAX_INT32 + 1}, "priority_level must be <= 2147483647"),
        ({"subscription": "s" + SURROGATE}, "subscription must be valid UTF-8 text"),
        ({"consumer_name": SURROGATE}, "consumer_name must be valid UTF-8 text"),
        ({"consumer_name": 7}, "consumer_name must be a non-empty str or None, not 7"),
    ],
)
def test_subscribe_args_have_finite_bounds(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        subscribe_args(**options)
    assert str(info.value).startswith(message)


def test_subscribe_args_at_the_bounds_are_accepted() -> None:
    assert subscribe_args(
        ack_timeout=MAX_ACK_TIMEOUT,
        negative_ack_redelivery_delay=MAX_SECONDS,
        receiver_queue_size=MAX_RECEIVER_QUEUE_SIZE,
        priority_level=MAX_INT32,
    ) == (MAX_ACK_TIMEOUT, MAX_SECONDS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None, MAX_INT32 + 1, 0.01, None), "batching_max_messages must be <= 2147483647"),
        ((None, 10, float("inf"), None), "batching_max_publish_delay must be a finite number"),
        ((None, 10, 1e300, None), "batching_max_publish_delay must be at most"),
        ((None, 10, 0.01, "p" + SURROGATE), "producer_name must be valid UTF-8 text"),
        (("KeyBased", 10, 0.01, None), "batching must be a BatchingType or None, not 'KeyBased'"),
    ],
)
def test_producer_args_have_finite_bounds(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_producer_args(*args)
    assert str(info.value).startswith(message)


def test_producer_args_at_the_bounds_are_accepted() -> None:
    assert check_producer_args(None, MAX_INT32, MAX_SECONDS, "ünïcödé") == MAX_SECONDS


# Policies and topic names are checked where they are built (keylane.brokers.base), with the
# same ground-floor rules.


def bad(value: object) -> Any:
    """``value``, typed so that a deliberately wrong argument passes mypy."""
    return value


def sticky(ranges: object) -> KeySharedPolicy:
    return KeySharedPolicy(mode=KeySharedMode.STICKY, sticky_ranges=bad(ranges))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DeadLetterPolicy(2**31), "max_redeliver_count must be <= 2147483647"),
        (lambda: DeadLetterPolicy(0), "max_redeliver_count must be >= 1, got 0"),
        (lambda: DeadLetterPolicy(True), "max_redeliver_count must be an int, not True"),
        (lambda: DeadLetterPolicy(1, dead_letter_topic=bad(3)), "dead_letter_topic must be a str"),
        (
            lambda: DeadLetterPolicy(1, dead_letter_topic="a/b"),
            "dead_letter_topic: malformed topic name 'a/b'",
        ),
        (
            lambda: DeadLetterPolicy(1, dead_letter_topic="dlq" + SURROGATE),
            "dead_letter_topic must be valid UTF-8 text",
        ),
        (
            lambda: DeadLetterPolicy(1, initial_subscription_name=SURROGATE),
            "initial_subscription_name must be valid UTF-8 text",
        ),
        (
            lambda: KeySharedPolicy(allow_out_of_order_delivery=1),  # type: ignore[arg-type]
            "allow_out_of_order_delivery must be a bool, not 1",
        ),
        (
            lambda: sticky([(0, 1.5)]),
            "sticky_ranges must hold (start, end) int pairs, got (0, 1.5)",
        ),
        (
            lambda: sticky([(0, float("inf"))]),
            "sticky_ranges must hold (start, end) int pairs",
        ),
        (
            lambda: sticky([(1, 2, 3)]),
            "sticky_ranges must hold (start, end) int pairs, got (1, 2, 3)",
        ),
        (
            lambda: sticky("0-9"),
            "sticky_ranges must be a sequence of (start, end) int pairs, not '0-9'",
        ),
        (
            lambda: sticky(5),
            "sticky_ranges must be a sequence of (start, end) int pairs, not 5",
        ),
        (lambda: normalize_topic("t" + SURROGATE), "topic must be valid UTF-8 text"),
        (lambda: to_seconds(float("inf"), "timeout"), "timeout must be a finite number"),
        (lambda: to_seconds(HUGE_INT, "timeout"), "timeout must be at most"),
    ],
)
def test_policies_topics_and_durations_use_the_same_rules(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        build()
    assert str(info.value).startswith(message)


def test_valid_policies_are_kept_as_given() -> None:
    policy = sticky([[0, 9], (10, 65535)])
    assert policy.sticky_ranges == ((0, 9), (10, 65535))
    assert DeadLetterPolicy(MAX_INT32, "t-dlq", "init").max_redeliver_count == MAX_INT32


#: Arbitrary values for the property test below, including those that broke builtins.
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([HUGE_INT, -HUGE_INT, 2**64]),
    st.floats(),
    st.timedeltas(),
    st.datetimes(timezones=st.sampled_from([None, UTC])),
    st.text(alphabet=st.characters(codec=None), max_size=5),
    st.binary(max_size=5),
    st.dictionaries(st.text(max_size=3), st.text(alphabet=st.characters(codec=None), max_size=3)),
)


@settings(max_examples=300)
@given(key=ANYTHING, properties=ANYTHING, event_time=ANYTHING, after=ANYTHING, at=ANYTHING)
def test_send_rules_raise_nothing_but_invalid_argument(
    key: object, properties: object, event_time: object, after: Any, at: Any
) -> None:
    # Whatever is passed, a send is either rejected with InvalidArgumentError or its values fit
    # the Pulsar client's fields (str that encodes, unsigned 64-bit epoch milliseconds).
    try:
        props = check_send_args(b"x", key, None, properties, event_time)
        when = delivery_time(after, at if after is None else None, EPOCH, EPOCH)
    except InvalidArgumentError:
        return
    if isinstance(key, str):
        key.encode()
    for name, value in props.items():
        name.encode()
        value.encode()
    seconds = check_event_time(event_time)
    for time_value in (seconds, when):
        assert time_value is None or 0 <= round(time_value * 1000) < 2**64
