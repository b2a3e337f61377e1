"""Argument rules of the broker contract, shared by every backend.

``create_topic``, ``create_producer``, ``subscribe`` and ``Producer.send`` accept the same
arguments on every backend and reject bad ones with the same
:class:`~keylane.errors.InvalidArgumentError` message. Those rules live here, once. What only one
backend needs stays in that backend: conversion to the Pulsar client's milliseconds, Pulsar's
rejection of a non-zero ``priority_level`` or of an ``event_time`` the client would read as
"unset", the embedded broker's loop clock.

The checks raise before anything is created or published, so a rejected call changes nothing.

Imports ``keylane.brokers.base`` and ``keylane.errors`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from keylane.brokers.base import (
    BatchingType,
    DeadLetterPolicy,
    Duration,
    InitialPosition,
    KeySharedPolicy,
    SubscriptionType,
    to_seconds,
)
from keylane.errors import InvalidArgumentError

__all__ = [
    "MIN_ACK_TIMEOUT",
    "MIN_NACK_DELAY",
    "NO_PROPERTIES",
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
#: Minimum negative-ack redelivery delay of the C++/Python client, seconds.
MIN_NACK_DELAY = 0.1

#: The (shared, read-only) properties of a message sent without any.
NO_PROPERTIES: Mapping[str, str] = MappingProxyType({})


def is_int(value: object) -> bool:
    """Whether ``value`` is an ``int`` and not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------- topics


def check_partitions(partitions: object) -> None:
    """Validate the ``create_topic`` partition count (0 makes a non-partitioned topic).

    Raises:
        InvalidArgumentError: not an int, or negative.
    """
    if not is_int(partitions) or partitions < 0:  # type: ignore[operator]
        raise InvalidArgumentError(f"partitions must be an int >= 0, got {partitions!r}")


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
        InvalidArgumentError: an argument of the wrong type or out of range.
    """
    if batching is not None and not isinstance(batching, BatchingType):
        raise InvalidArgumentError(f"batching must be a BatchingType or None, not {batching!r}")
    if not is_int(batching_max_messages) or batching_max_messages < 1:  # type: ignore[operator]
        raise InvalidArgumentError(
            f"batching_max_messages must be an int >= 1, got {batching_max_messages!r}"
        )
    delay = to_seconds(batching_max_publish_delay, "batching_max_publish_delay")
    if producer_name is not None and (not isinstance(producer_name, str) or not producer_name):
        raise InvalidArgumentError("producer_name must be a non-empty str or None")
    return delay


# --------------------------------------------------------------------------- send


def _check_key(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a str or None, not {type(value).__name__}")


def check_properties(properties: object) -> Mapping[str, str]:
    """Validate message properties; return a read-only copy.

    Returns:
        :data:`NO_PROPERTIES` for None or an empty mapping, else a read-only copy, so a caller
        changing its dict afterwards does not change the message.

    Raises:
        InvalidArgumentError: not a mapping, or a key or value that is not a ``str``.
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
            raise InvalidArgumentError(f"properties must map str to str, got {k!r}: {v!r}")
    return MappingProxyType(dict(properties))


def check_send_args(
    data: object, key: object, ordering_key: object, properties: object, event_time: object
) -> Mapping[str, str]:
    """Validate the ``Producer.send`` arguments other than the delivery time.

    Checks, in this order: ``data`` is bytes, ``key`` and ``ordering_key`` are str or None,
    the properties (see :func:`check_properties`), ``event_time`` is a number of seconds or None.

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
    if event_time is not None and (
        isinstance(event_time, bool) or not isinstance(event_time, int | float)
    ):
        raise InvalidArgumentError(f"event_time must be seconds, not {event_time!r}")
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
        InvalidArgumentError: both forms given, a negative or non-numeric delay, a negative or
            non-numeric ``deliver_at``.
    """
    if deliver_after is not None:
        if deliver_at is not None:
            raise InvalidArgumentError("give deliver_after or deliver_at, not both")
        return now + to_seconds(deliver_after, "deliver_after")
    if deliver_at is None:
        return None
    if isinstance(deliver_at, datetime):
        epoch = deliver_at.timestamp()
    elif isinstance(deliver_at, bool) or not isinstance(deliver_at, int | float):
        raise InvalidArgumentError(
            f"deliver_at must be a datetime or seconds since the epoch, not {deliver_at!r}"
        )
    else:
        epoch = float(deliver_at)
        if not epoch >= 0:
            raise InvalidArgumentError(f"deliver_at must not be negative, got {deliver_at}")
    if now == epoch_now:
        return epoch
    return now + (epoch - epoch_now)


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
            an ack timeout below :data:`MIN_ACK_TIMEOUT` and a negative-ack delay below
            :data:`MIN_NACK_DELAY` (the client's minimums).
    """
    if not isinstance(subscription, str) or not subscription.strip():
        raise InvalidArgumentError("subscription name must be a non-empty str")
    if not isinstance(subscription_type, SubscriptionType):
        raise InvalidArgumentError(f"unknown subscription_type {subscription_type!r}")
    if consumer_name is not None and (not isinstance(consumer_name, str) or not consumer_name):
        raise InvalidArgumentError("consumer_name must be a non-empty str or None")
    if not is_int(receiver_queue_size) or receiver_queue_size < 1:  # type: ignore[operator]
        raise InvalidArgumentError(
            f"receiver_queue_size must be an int >= 1, got {receiver_queue_size!r}"
        )
    if not is_int(priority_level) or priority_level < 0:  # type: ignore[operator]
        raise InvalidArgumentError(f"priority_level must be an int >= 0, got {priority_level!r}")
    timeout = None
    if ack_timeout is not None:
        timeout = to_seconds(ack_timeout, "ack_timeout")
        if timeout < MIN_ACK_TIMEOUT:
            raise InvalidArgumentError(
                f"ack_timeout should be greater than 10 seconds (or None), got {timeout}"
            )
    nack_delay = to_seconds(negative_ack_redelivery_delay, "negative_ack_redelivery_delay")
    if nack_delay < MIN_NACK_DELAY:
        raise InvalidArgumentError(
            f"negative_ack_redelivery_delay must be at least 0.1 s, got {nack_delay}"
        )
    if dead_letter_policy is not None and not isinstance(dead_letter_policy, DeadLetterPolicy):
        raise InvalidArgumentError("dead_letter_policy must be a DeadLetterPolicy or None")
    if key_shared_policy is not None and not isinstance(key_shared_policy, KeySharedPolicy):
        raise InvalidArgumentError("key_shared_policy must be a KeySharedPolicy or None")
    if not isinstance(initial_position, InitialPosition):
        raise InvalidArgumentError(f"unknown initial_position {initial_position!r}")
    return timeout, nack_delay
