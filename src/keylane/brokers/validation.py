"""Argument rules of the broker contract, shared by every backend.

``create_topic``, ``create_producer``, ``subscribe`` and ``Producer.send`` accept the same
arguments on every backend and reject bad ones with the same
:class:`~keylane.errors.InvalidArgumentError` message. Those rules live here, once, built on the
generic checks of :mod:`keylane._validate`; the policies (``KeySharedPolicy``,
``DeadLetterPolicy``), topic names and durations are checked where they are built, in
:mod:`keylane.brokers.base`, with the same checks. What only one backend needs stays in that
backend: conversion to the Pulsar client's milliseconds, Pulsar's rejection of a non-zero
``priority_level``, the embedded broker's loop clock.

Every bound is finite and chosen so that a value that passes works on both backends: text must
encode to UTF-8 (the embedded broker hashes keys as UTF-8, the client sends UTF-8), integers fit
the client's 32-bit fields, durations are at most :data:`MAX_SECONDS`, and
:data:`MAX_ACK_TIMEOUT` and :data:`MAX_RECEIVER_QUEUE_SIZE` keep what the client allocates up
front small (``docs/backends.md``, "Argument rules").

The checks raise before anything is created or published, so a rejected call changes nothing.

Imports ``keylane._validate``, ``keylane.brokers.base`` and ``keylane.errors`` only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from keylane._validate import (
    MAX_INT32,
    MAX_SECONDS,
    check_int,
    check_seconds,
    check_text,
    is_int,
    is_number,
    show,
)
from keylane.brokers.base import (
    BatchingType,
    DeadLetterPolicy,
    Duration,
    InitialPosition,
    KeySharedPolicy,
    SubscriptionType,
)
from keylane.errors import InvalidArgumentError

__all__ = [
    "MAX_ACK_TIMEOUT",
    "MAX_EVENT_TIME",
    "MAX_INT32",
    "MAX_PARTITIONS",
    "MAX_RECEIVER_QUEUE_SIZE",
    "MAX_SECONDS",
    "MIN_ACK_TIMEOUT",
    "MIN_NACK_DELAY",
    "NO_PROPERTIES",
    "check_event_time",
    "check_partitions",
    "check_producer_args",
    "check_properties",
    "check_send_args",
    "check_subscribe_args",
    "delivery_time",
    "is_int",
]

#: Minimum ack timeout of the C++/Python client (``unacked_messages_timeout_ms``), seconds.
MIN_ACK_TIMEOUT = 10.0
#: keylane's maximum ack timeout, seconds (1 hour). The client (and the embedded broker, which
#: copies it) keeps one set per 1 s tick of the timeout for every consumer of every partition:
#: a week cost 30 MB per partition in pulsar-client 3.13, and ``timedelta.max`` overflowed it.
MAX_ACK_TIMEOUT = 3600.0
#: Minimum negative-ack redelivery delay of the C++/Python client, seconds.
MIN_NACK_DELAY = 0.1
#: Latest ``event_time``: 9999-12-31T23:59:59Z in seconds since the epoch (the end of what
#: :class:`~datetime.datetime` can hold; the client's unsigned 64-bit milliseconds hold it).
MAX_EVENT_TIME = 253_402_300_799.0
#: keylane's maximum partition count. Pulsar has no limit by default
#: (``maxNumPartitionsPerPartitionedTopic=0``); more than this is almost surely a mistake, and
#: the embedded broker builds a log per partition at once.
MAX_PARTITIONS = 10_000
#: keylane's maximum ``receiver_queue_size``. The client reserves about 16 bytes of address
#: space per slot when it subscribes: 10**9 made it abort (``std::bad_alloc``) in a 4 GB
#: address space. Pulsar's default is 1000.
MAX_RECEIVER_QUEUE_SIZE = 1_000_000

#: The (shared, read-only) properties of a message sent without any.
NO_PROPERTIES: Mapping[str, str] = MappingProxyType({})


# --------------------------------------------------------------------------- topics


def check_partitions(partitions: object) -> None:
    """Validate the ``create_topic`` partition count (0 makes a non-partitioned topic).

    Raises:
        InvalidArgumentError: not an int, negative, or above :data:`MAX_PARTITIONS`.
    """
    check_int("partitions", partitions, 0, MAX_PARTITIONS)


def _check_name(name: str, value: object) -> None:
    """A producer or consumer name: None, or a non-empty str that encodes to UTF-8."""
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{name} must be a non-empty str or None, not {show(value)}")
    check_text(name, value)


# --------------------------------------------------------------------------- producers


def check_producer_args(
    batching: object,
    batching_max_messages: object,
    batching_max_publish_delay: Duration,
    producer_name: object,
) -> float:
    """Validate ``create_producer`` arguments.

    Returns:
        The batching publish delay in seconds.

    Raises:
        InvalidArgumentError: an argument of the wrong type or out of range: batching not a
            BatchingType or None, ``batching_max_messages`` not an int in 1..:data:`MAX_INT32`,
            a publish delay that is not a duration up to :data:`MAX_SECONDS`, a producer name
            that is empty or not UTF-8.
    """
    if batching is not None and not isinstance(batching, BatchingType):
        raise InvalidArgumentError(f"batching must be a BatchingType or None, not {show(batching)}")
    check_int("batching_max_messages", batching_max_messages, 1, MAX_INT32)
    delay = check_seconds(
        "batching_max_publish_delay", batching_max_publish_delay, allow_timedelta=True
    )
    _check_name("producer_name", producer_name)
    return delay


# --------------------------------------------------------------------------- send


def _check_key(name: str, value: object) -> None:
    if value is not None:
        if not isinstance(value, str):
            raise InvalidArgumentError(f"{name} must be a str or None, not {type(value).__name__}")
        check_text(name, value)


def check_properties(properties: object) -> Mapping[str, str]:
    """Validate message properties; return a read-only copy.

    Returns:
        :data:`NO_PROPERTIES` for None or an empty mapping, else a read-only copy, so a caller
        changing its dict afterwards does not change the message.

    Raises:
        InvalidArgumentError: not a mapping, or a name or value that is not a ``str`` or does
            not encode to UTF-8.
    """
    if properties is None:
        return NO_PROPERTIES
    if not isinstance(properties, Mapping):
        raise InvalidArgumentError(
            f"properties must be a mapping of str to str, not {type(properties).__name__}"
        )
    if not properties:
        return NO_PROPERTIES
    for k, v in properties.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InvalidArgumentError(f"properties must map str to str, got {show(k)}: {show(v)}")
        check_text("properties name", k)
        check_text(f"properties[{show(k)}]", v)
    return MappingProxyType(dict(properties))


def check_event_time(event_time: object) -> float | None:
    """Validate a message's ``event_time``: None, or seconds since the epoch.

    Returns:
        The event time as a float, or None.

    Raises:
        InvalidArgumentError: not a number, not finite, not positive (Pulsar reads 0 as
            "unset", and its field is unsigned), or after :data:`MAX_EVENT_TIME`.
    """
    if event_time is None:
        return None
    if not is_number(event_time):
        raise InvalidArgumentError(
            f"event_time must be seconds since the epoch or None, not {show(event_time)}"
        )
    if not (isinstance(event_time, int) or math.isfinite(event_time)):
        raise InvalidArgumentError(f"event_time must be finite, got {event_time}")
    if event_time <= 0:
        raise InvalidArgumentError(
            f"event_time must be positive (Pulsar reads 0 as unset), got {event_time}"
        )
    if event_time > MAX_EVENT_TIME:
        raise InvalidArgumentError(
            f"event_time must be at most {MAX_EVENT_TIME:.0f} (9999-12-31T23:59:59Z), "
            f"got {show(event_time)}"
        )
    return float(event_time)


def check_send_args(
    data: object, key: object, ordering_key: object, properties: object, event_time: object
) -> Mapping[str, str]:
    """Validate the ``Producer.send`` arguments other than the delivery time.

    Checks, in this order: ``data`` is bytes, ``key`` and ``ordering_key`` are None or str that
    encode to UTF-8, the properties (see :func:`check_properties`), the event time (see
    :func:`check_event_time`).

    Returns:
        The checked properties (see :func:`check_properties`).

    Raises:
        InvalidArgumentError: the first bad argument.
    """
    if not isinstance(data, bytes):
        raise InvalidArgumentError(f"data must be bytes, not {type(data).__name__}")
    _check_key("key", key)
    _check_key("ordering_key", ordering_key)
    props = check_properties(properties)
    check_event_time(event_time)
    return props


def delivery_time(
    deliver_after: Duration | None,
    deliver_at: datetime | float | None,
    now: float,
    epoch_now: float,
) -> float | None:
    """When a message may be delivered, on the caller's clock; None when it is not delayed.

    Args:
        deliver_after: delay from now (seconds or timedelta), or None.
        deliver_at: absolute time, a datetime or seconds since the epoch, or None.
        now: the current reading of the clock the result is expressed in.
        epoch_now: the current time in seconds since the epoch (``time.time()``); pass ``now``
            again when the caller's clock is the epoch clock, and the result is then exact.

    Returns:
        ``now + deliver_after``, or ``deliver_at`` moved onto the caller's clock, or None when
        neither is given. A zero ``deliver_after`` gives ``now`` (a delayed message due now).

    Raises:
        InvalidArgumentError: both forms given; a delay that is not a duration of at most
            :data:`MAX_SECONDS`; a ``deliver_at`` that is not a datetime or number, is not
            finite, lies before the epoch or more than :data:`MAX_SECONDS` ahead.
    """
    if deliver_after is not None:
        if deliver_at is not None:
            raise InvalidArgumentError("give deliver_after or deliver_at, not both")
        return now + check_seconds("deliver_after", deliver_after, allow_timedelta=True)
    if deliver_at is None:
        return None
    epoch = _epoch_seconds(deliver_at, epoch_now)
    if now == epoch_now:
        return epoch
    return now + (epoch - epoch_now)


def _epoch_seconds(deliver_at: object, epoch_now: float) -> float:
    """``deliver_at`` as seconds since the epoch, checked (see :func:`delivery_time`)."""
    latest = epoch_now + MAX_SECONDS
    if isinstance(deliver_at, datetime):
        try:
            value: int | float = deliver_at.timestamp()
        except (OverflowError, ValueError, OSError) as exc:  # naive datetimes at the extremes
            raise InvalidArgumentError(
                f"deliver_at {deliver_at!r} is out of range: {exc}"
            ) from None
    elif not is_number(deliver_at):
        raise InvalidArgumentError(
            f"deliver_at must be a datetime or seconds since the epoch, not {show(deliver_at)}"
        )
    else:
        value = deliver_at
    if isinstance(value, float) and math.isnan(value):
        raise InvalidArgumentError("deliver_at must be a finite time, got nan")
    if value < 0:
        raise InvalidArgumentError(f"deliver_at must not be negative (before 1970), got {value}")
    if value > latest:  # also infinity, and ints too large for a float
        raise InvalidArgumentError(
            f"deliver_at must be at most {MAX_SECONDS:,.0f} s (100 years) from now, "
            f"got {show(deliver_at)}"
        )
    return float(value)


# --------------------------------------------------------------------------- subscribe


def check_subscribe_args(
    *,
    subscription: object,
    subscription_type: object,
    consumer_name: object,
    receiver_queue_size: object,
    ack_timeout: Duration | None,
    negative_ack_redelivery_delay: Duration,
    dead_letter_policy: object,
    key_shared_policy: object,
    priority_level: object,
    initial_position: object,
) -> tuple[float | None, float]:
    """Validate ``subscribe`` arguments.

    Returns:
        (ack timeout in seconds or None, negative-ack redelivery delay in seconds).

    Raises:
        InvalidArgumentError: the first argument of the wrong type or out of range, including
            an ack timeout outside :data:`MIN_ACK_TIMEOUT`..:data:`MAX_ACK_TIMEOUT`, a
            negative-ack delay outside :data:`MIN_NACK_DELAY`..:data:`MAX_SECONDS`, a
            ``receiver_queue_size`` outside 1..:data:`MAX_RECEIVER_QUEUE_SIZE`, and names that
            do not encode to UTF-8.
    """
    if not isinstance(subscription, str) or not subscription.strip():
        raise InvalidArgumentError("subscription name must be a non-empty str")
    check_text("subscription", subscription)
    if not isinstance(subscription_type, SubscriptionType):
        raise InvalidArgumentError(f"unknown subscription_type {show(subscription_type)}")
    _check_name("consumer_name", consumer_name)
    check_int("receiver_queue_size", receiver_queue_size, 1, MAX_RECEIVER_QUEUE_SIZE)
    check_int("priority_level", priority_level, 0, MAX_INT32)
    timeout = None
    if ack_timeout is not None:
        timeout = check_seconds(
            "ack_timeout", ack_timeout, maximum=MAX_ACK_TIMEOUT, allow_timedelta=True
        )
        if timeout < MIN_ACK_TIMEOUT:
            raise InvalidArgumentError(
                f"ack_timeout should be greater than 10 seconds (or None), got {timeout}"
            )
    nack_delay = check_seconds(
        "negative_ack_redelivery_delay",
        negative_ack_redelivery_delay,
        minimum=MIN_NACK_DELAY,
        allow_timedelta=True,
    )
    if dead_letter_policy is not None and not isinstance(dead_letter_policy, DeadLetterPolicy):
        raise InvalidArgumentError("dead_letter_policy must be a DeadLetterPolicy or None")
    if key_shared_policy is not None and not isinstance(key_shared_policy, KeySharedPolicy):
        raise InvalidArgumentError("key_shared_policy must be a KeySharedPolicy or None")
    if not isinstance(initial_position, InitialPosition):
        raise InvalidArgumentError(f"unknown initial_position {show(initial_position)}")
    return timeout, nack_delay
