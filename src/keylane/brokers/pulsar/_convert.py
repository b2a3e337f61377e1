"""Pure helpers of the Pulsar backend: argument conversion, routing, error names.

Everything here is plain Python so it can be unit-tested without a broker. The contract's
argument rules are :mod:`keylane.brokers.validation`; this module adds the client's own rule (no
consumer priority) and converts durations and times to the client's integer milliseconds (the
shared bounds keep them within the client's integer fields). :class:`PartitionRouter` is the
``message_router`` that routes keys with Murmur3_32 like the Java clients, and
:func:`error_for_result` maps the name of a ``pulsar.Result`` to keylane's error class. The
checks run before the client is touched, so a rejected call changes nothing at the broker.

Imports no backend and not ``pulsar``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from keylane.brokers.base import Duration, MessageId
from keylane.brokers.validation import check_event_time, check_send_args, delivery_time
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

__all__ = [
    "NativeMessageId",
    "PartitionRouter",
    "SendOptions",
    "client_subscribe_args",
    "error_for_result",
    "message_id_from_native",
    "optional_text",
    "to_millis",
    "validate_send",
]


def to_millis(seconds: float) -> int:
    """Seconds as the client's integer milliseconds, rounded to the nearest millisecond."""
    return round(seconds * 1000)


def optional_text(value: str | bytes | None) -> str | None:
    """The client's "unset" empty string (or bytes) as None, else the text."""
    if not value:
        return None
    return value.decode() if isinstance(value, bytes) else value


# --------------------------------------------------------------------------- producers


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

    The rules are the contract's: :func:`~keylane.brokers.validation.check_send_args` and
    :func:`~keylane.brokers.validation.delivery_time`. A zero ``deliver_after`` means "now" and
    is not sent as a delay (a delayed message is never batched, so this keeps zero-delay messages
    batchable).
    """
    props = check_send_args(data, key, ordering_key, properties, event_time)
    seconds = check_event_time(event_time)
    event_ms = None if seconds is None else to_millis(seconds)
    epoch_now = now()
    at = delivery_time(deliver_after, deliver_at, epoch_now, epoch_now)
    at_ms = None
    if at is not None and (deliver_after is None or at > epoch_now):
        at_ms = to_millis(at)
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


def client_subscribe_args(
    priority_level: object, ack_timeout: float | None, nack_delay: float
) -> tuple[int | None, int]:
    """Pulsar's own ``subscribe`` rule and units, after the contract's checks.

    Args:
        priority_level: as given to ``subscribe``.
        ack_timeout, nack_delay: seconds, as returned by
            :func:`keylane.brokers.validation.check_subscribe_args`.

    Returns:
        (ack timeout ms or None, negative-ack redelivery delay ms).

    Raises:
        InvalidArgumentError: a non-zero ``priority_level``, which the Python client cannot
            send to the broker.
    """
    if priority_level != 0:
        raise InvalidArgumentError(
            "priority_level other than 0 is not supported on Pulsar: the Python client "
            "(pulsar-client 3.x) has no consumer priority option"
        )
    ack_ms = None if ack_timeout is None else to_millis(ack_timeout)
    return ack_ms, to_millis(nack_delay)


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
    "AuthenticationError": BrokerAuthenticationError,
    "AuthorizationError": BrokerAuthenticationError,
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
