"""Pure helpers of the Pulsar backend: argument validation, unit conversion, routing, error names.

Everything here is plain Python so it can be unit-tested without a broker: the validation runs
before the client is touched (a rejected call changes nothing at the broker), durations become
the client's integer milliseconds, :class:`PartitionRouter` is the ``message_router`` that routes
keys with Murmur3_32 like the Java clients, and :func:`error_for_result` maps the name of a
``pulsar.Result`` to keylane's error class.

Imports no backend and not ``pulsar``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Protocol

from keylane.brokers.base import (
    BatchingType,
    DeadLetterPolicy,
    Duration,
    InitialPosition,
    KeySharedPolicy,
    MessageId,
    SubscriptionType,
    to_seconds,
)
from keylane.errors import (
    AlreadyClosedError,
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

__all__ = [
    "MIN_ACK_TIMEOUT",
    "MIN_NACK_DELAY",
    "NativeMessageId",
    "PartitionRouter",
    "SendOptions",
    "check_producer_args",
    "check_subscribe_args",
    "error_for_result",
    "message_id_from_native",
    "optional_text",
    "to_millis",
    "validate_send",
]

#: Minimum ack timeout of the C++/Python client (``unacked_messages_timeout_ms``).
MIN_ACK_TIMEOUT = 10.0
#: Minimum negative-ack redelivery delay of the C++/Python client.
MIN_NACK_DELAY = 0.1

_NO_PROPERTIES: Mapping[str, str] = MappingProxyType({})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def to_millis(seconds: float) -> int:
    """Seconds as the client's integer milliseconds, rounded to the nearest millisecond."""
    return round(seconds * 1000)


def optional_text(value: str | bytes | None) -> str | None:
    """The client's "unset" empty string (or bytes) as None, else the text."""
    if not value:
        return None
    return value.decode() if isinstance(value, bytes) else value


# --------------------------------------------------------------------------- producers


def check_producer_args(
    batching: object, batching_max_messages: object, batching_max_publish_delay: Duration,
    producer_name: object,
) -> float:  # fmt: skip
    """Validate ``create_producer`` arguments; return the publish delay in seconds."""
    if batching is not None and not isinstance(batching, BatchingType):
        raise InvalidArgumentError(f"batching must be a BatchingType or None, not {batching!r}")
    if not _is_int(batching_max_messages) or batching_max_messages < 1:  # type: ignore[operator]
        raise InvalidArgumentError(
            f"batching_max_messages must be an int >= 1, got {batching_max_messages!r}"
        )
    delay = to_seconds(batching_max_publish_delay, "batching_max_publish_delay")
    if producer_name is not None and (not isinstance(producer_name, str) or not producer_name):
        raise InvalidArgumentError("producer_name must be a non-empty str or None")
    return delay


class SendOptions:
    """Validated ``send`` arguments in the client's units (epoch milliseconds)."""

    __slots__ = ("deliver_at_ms", "event_time_ms", "key", "ordering_key", "properties")

    def __init__(
        self,
        key: str | None,
        ordering_key: str | None,
        properties: Mapping[str, str],
        deliver_at_ms: int | None,
        event_time_ms: int | None,
    ) -> None:
        self.key = key
        self.ordering_key = ordering_key
        self.properties = properties
        self.deliver_at_ms = deliver_at_ms
        self.event_time_ms = event_time_ms


def _check_key(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a str or None, not {type(value).__name__}")


def _properties(properties: object) -> Mapping[str, str]:
    if properties is None:
        return _NO_PROPERTIES
    if not isinstance(properties, Mapping):
        raise InvalidArgumentError(
            f"properties must be a mapping of str to str, not {type(properties).__name__}"
        )
    for k, v in properties.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InvalidArgumentError(f"properties must map str to str, got {k!r}: {v!r}")
    return dict(properties)


def _deliver_at_ms(
    deliver_after: Duration | None, deliver_at: datetime | float | None, now: float
) -> int | None:
    if deliver_after is not None and deliver_at is not None:
        raise InvalidArgumentError("give deliver_after or deliver_at, not both")
    if deliver_after is not None:
        delay = to_seconds(deliver_after, "deliver_after")
        return to_millis(now + delay) if delay > 0 else None
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
    return to_millis(epoch)


def validate_send(
    data: object,
    *,
    key: object,
    ordering_key: object,
    properties: object,
    deliver_after: Duration | None,
    deliver_at: datetime | float | None,
    event_time: object,
    now: Callable[[], float] = time.time,
) -> SendOptions:
    """Check ``Producer.send`` arguments and convert times to epoch milliseconds.

    A zero ``deliver_after`` means "now" and is not sent as a delay (a delayed message is never
    batched, so this keeps zero-delay messages batchable).
    """
    if not isinstance(data, bytes):
        raise InvalidArgumentError(f"data must be bytes, not {type(data).__name__}")
    _check_key("key", key)
    _check_key("ordering_key", ordering_key)
    props = _properties(properties)
    event_ms = None
    if event_time is not None:
        if isinstance(event_time, bool) or not isinstance(event_time, int | float):
            raise InvalidArgumentError(f"event_time must be seconds, not {event_time!r}")
        if not event_time > 0:
            raise InvalidArgumentError(f"event_time must be positive, got {event_time}")
        event_ms = to_millis(event_time)
    at_ms = _deliver_at_ms(deliver_after, deliver_at, now())
    return SendOptions(key, ordering_key, props, at_ms, event_ms)  # type: ignore[arg-type]


class PartitionRouter:
    """keylane's partition routing for the client's ``message_router`` hook.

    A message with a partition key goes to ``partition_for_key(key, n)`` (Murmur3_32, the Java
    clients' ``Murmur3_32Hash`` scheme; the C++/Python default, BoostHash, matches no other
    client). The ordering key never routes. A keyless message goes round robin from a random
    start, like the C++ ``RoundRobinMessageRouter``: per message without batching, and per batch
    (``max_messages`` messages or ``max_delay`` seconds) with batching.
    """

    def __init__(
        self,
        *,
        batching: bool,
        max_messages: int,
        max_delay: float,
        clock: Callable[[], float] = time.monotonic,
        start: int | None = None,
    ) -> None:
        self._batching = batching
        self._max_messages = max_messages
        self._max_delay = max_delay
        self._clock = clock
        self._next = random.randrange(1 << 16) if start is None else start
        self._count = 0
        self._changed = -math.inf

    def route(self, key: str | None, partitions: int) -> int:
        """The partition (0..partitions-1) of a message with partition key ``key``."""
        if partitions <= 1:
            return 0
        if key:  # the client reports "no key" as ""
            return partition_for_key(key, partitions)
        if not self._batching:
            self._next += 1
            return (self._next - 1) % partitions
        self._count += 1
        now = self._clock()
        if self._count >= self._max_messages or now - self._changed >= self._max_delay:
            self._next += 1
            self._count = 1
            self._changed = now
        return self._next % partitions


# --------------------------------------------------------------------------- consumers


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
) -> tuple[int | None, int]:
    """Validate ``subscribe`` arguments; return (ack timeout ms or None, nack delay ms).

    Raises:
        InvalidArgumentError: any argument out of range, including a non-zero
            ``priority_level``, which the Python client cannot send to the broker.
    """
    if not isinstance(subscription, str) or not subscription.strip():
        raise InvalidArgumentError("subscription name must be a non-empty str")
    if not isinstance(subscription_type, SubscriptionType):
        raise InvalidArgumentError(f"unknown subscription_type {subscription_type!r}")
    if consumer_name is not None and (not isinstance(consumer_name, str) or not consumer_name):
        raise InvalidArgumentError("consumer_name must be a non-empty str or None")
    if not _is_int(receiver_queue_size) or receiver_queue_size < 1:  # type: ignore[operator]
        raise InvalidArgumentError(
            f"receiver_queue_size must be an int >= 1, got {receiver_queue_size!r}"
        )
    if not _is_int(priority_level) or priority_level < 0:  # type: ignore[operator]
        raise InvalidArgumentError(f"priority_level must be an int >= 0, got {priority_level!r}")
    if priority_level != 0:
        raise InvalidArgumentError(
            "priority_level other than 0 is not supported on Pulsar: the Python client "
            "(pulsar-client 3.x) has no consumer priority option"
        )
    ack_ms = None
    if ack_timeout is not None:
        seconds = to_seconds(ack_timeout, "ack_timeout")
        if seconds < MIN_ACK_TIMEOUT:
            raise InvalidArgumentError(
                f"ack_timeout should be greater than 10 seconds (or None), got {seconds}"
            )
        ack_ms = to_millis(seconds)
    nack = to_seconds(negative_ack_redelivery_delay, "negative_ack_redelivery_delay")
    if nack < MIN_NACK_DELAY:
        raise InvalidArgumentError(
            f"negative_ack_redelivery_delay must be at least 0.1 s, got {nack}"
        )
    if dead_letter_policy is not None and not isinstance(dead_letter_policy, DeadLetterPolicy):
        raise InvalidArgumentError("dead_letter_policy must be a DeadLetterPolicy or None")
    if key_shared_policy is not None and not isinstance(key_shared_policy, KeySharedPolicy):
        raise InvalidArgumentError("key_shared_policy must be a KeySharedPolicy or None")
    if not isinstance(initial_position, InitialPosition):
        raise InvalidArgumentError(f"unknown initial_position {initial_position!r}")
    return ack_ms, to_millis(nack)


class NativeMessageId(Protocol):
    """The parts of ``pulsar.MessageId`` / ``_pulsar.MessageId`` used here."""

    def partition(self) -> int: ...
    def ledger_id(self) -> int: ...
    def entry_id(self) -> int: ...
    def batch_index(self) -> int: ...


def message_id_from_native(native: NativeMessageId) -> MessageId:
    """keylane's :class:`MessageId` of a client message id."""
    return MessageId(
        native.partition(), native.ledger_id(), native.entry_id(), native.batch_index()
    )


# --------------------------------------------------------------------------- errors

_BY_RESULT: dict[str, type[BrokerError]] = {
    "Timeout": OperationTimeoutError,
    "ConnectError": BrokerConnectionError,
    "NotConnected": BrokerConnectionError,
    "ServiceUnitNotReady": BrokerConnectionError,
    "LookupError": BrokerConnectionError,
    "TooManyLookupRequestException": BrokerConnectionError,
    "AlreadyClosed": AlreadyClosedError,
    "ConsumerBusy": ConsumerBusyError,
    "ConsumerAssignError": StickyRangeConflictError,
    "CumulativeAcknowledgementNotAllowedError": CumulativeAckNotAllowedError,
    "TopicNotFound": TopicNotFoundError,
}
#: Reasons the Python client drops (it reports only the result code).
_REASONS = {
    "ConsumerAssignError": "Range conflict: the STICKY ranges overlap another consumer's",
    "CumulativeAcknowledgementNotAllowedError": (
        "cumulative acknowledgement is not allowed on Shared and Key_Shared subscriptions"
    ),
}
_INVALID = frozenset({"InvalidConfiguration", "InvalidTopicName", "InvalidUrl", "InvalidMessage"})


def error_for_result(result_name: str, detail: str, action: str) -> Exception:
    """keylane's exception for a failed client call.

    Args:
        result_name: the ``pulsar.Result`` member name, e.g. ``"ConsumerBusy"``.
        detail: the client's error text.
        action: what was attempted, for the message (``"subscribe to persistent://..."``).
    """
    reason = _REASONS.get(result_name)
    message = f"cannot {action}: {reason} ({detail})" if reason else f"cannot {action}: {detail}"
    if result_name in _INVALID:
        return InvalidArgumentError(message)
    return _BY_RESULT.get(result_name, BrokerError)(message)
