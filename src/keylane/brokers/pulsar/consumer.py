"""``PulsarConsumer``: keylane's :class:`~keylane.brokers.base.Consumer` over ``pulsar.asyncio``.

Receiving with a timeout: ``pulsar.asyncio.Consumer.receive`` has no timeout, and cancelling it
would lose the message the client later hands to the cancelled future (it is already taken from
the client's receive queue). So each consumer keeps at most one native receive in flight as a
task; ``receive(timeout)`` waits on it through :func:`asyncio.shield`, and a receive that timed
out leaves the task running for the next call, which gets its message. Concurrent ``receive``
calls on one consumer take turns.

Acknowledging by :class:`~keylane.brokers.base.MessageId` looks up the client message of that
id, because only the client's own id carries the batch bookkeeping needed to ack one message of
a batch and the partition's name on a partitioned topic.

Part of the Pulsar backend; imports ``pulsar`` and no other backend.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from types import MappingProxyType

import pulsar
from pulsar.asyncio import Consumer as NativeConsumer
from pulsar.asyncio import PulsarException

from keylane.brokers.base import (
    Consumer,
    Duration,
    Message,
    MessageId,
    SubscriptionType,
    to_seconds,
)
from keylane.brokers.pulsar._convert import message_id_from_native, optional_text
from keylane.brokers.pulsar._errors import result_name, translate
from keylane.errors import (
    AlreadyClosedError,
    ConsumerBusyError,
    CumulativeAckNotAllowedError,
    InvalidArgumentError,
)

__all__ = ["PulsarConsumer", "to_message"]

_INDIVIDUAL_ONLY = (SubscriptionType.SHARED, SubscriptionType.KEY_SHARED)


def to_message(native: pulsar.Message) -> Message:
    """keylane's :class:`Message` of a received client message (kept as ``handle``)."""
    event_ms = native.event_timestamp()
    return Message(
        data=native.data(),
        key=optional_text(native.partition_key()),
        ordering_key=optional_text(native.ordering_key()),
        properties=MappingProxyType(dict(native.properties())),
        message_id=message_id_from_native(native.message_id()),
        topic=str(native.topic_name()),
        publish_time=native.publish_timestamp() / 1000,
        redelivery_count=int(native.redelivery_count()),
        event_time=event_ms / 1000 if event_ms else None,
        handle=native,
    )


def _retrieve(task: asyncio.Task[pulsar.Message]) -> None:
    """Mark a finished receive task's exception as seen (it is re-raised where awaited)."""
    if not task.cancelled():
        task.exception()


class PulsarConsumer(Consumer):
    """A consumer of :class:`~keylane.brokers.pulsar.PulsarBroker` (created by ``subscribe``)."""

    def __init__(
        self,
        native: NativeConsumer,
        *,
        topic: str,
        subscription_type: SubscriptionType,
        on_close: Callable[[PulsarConsumer], None],
    ) -> None:
        self._native = native
        self._topic = topic
        self._type = subscription_type
        self._on_close = on_close
        self._closed = False
        self._pending: asyncio.Task[pulsar.Message] | None = None
        self._turn = asyncio.Lock()
        #: Client messages received and not yet acked, for acks by MessageId.
        self._held: dict[MessageId, pulsar.Message] = {}

    def __repr__(self) -> str:
        return f"<PulsarConsumer {self.consumer_name!r} {self._topic} sub={self.subscription!r}>"

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def subscription(self) -> str:
        return str(self._native.subscription_name())

    @property
    def consumer_name(self) -> str:
        return str(self._native.consumer_name())

    @property
    def subscription_type(self) -> SubscriptionType:
        """The type this consumer subscribed with."""
        return self._type

    def _check_open(self) -> None:
        if self._closed:
            raise AlreadyClosedError(f"consumer {self.consumer_name!r} on {self._topic} is closed")

    async def receive(self, timeout: Duration | None = None) -> Message:
        seconds = None if timeout is None else to_seconds(timeout, "timeout")
        self._check_open()
        async with asyncio.timeout(seconds), self._turn:
            self._check_open()
            task = self._pending
            if task is None:
                task = asyncio.ensure_future(self._native.receive())
                task.add_done_callback(_retrieve)
                self._pending = task
            try:
                native = await asyncio.shield(task)
            except PulsarException as exc:
                self._pending = None
                if self._closed or result_name(exc) == "AlreadyClosed":
                    raise AlreadyClosedError(
                        f"consumer {self.consumer_name!r} on {self._topic} is closed"
                    ) from exc
                raise translate(exc, f"receive from {self._topic}") from exc
            self._pending = None
        message = to_message(native)
        self._held[message.message_id] = native
        return message

    def _native_of(self, message: Message | MessageId) -> pulsar.Message:
        if isinstance(message, Message):
            if isinstance(message.handle, pulsar.Message):
                return message.handle
            message = message.message_id
        if not isinstance(message, MessageId):
            raise InvalidArgumentError(
                f"expected a Message or MessageId, not {type(message).__name__}"
            )
        native = self._held.get(message)
        if native is None:
            raise InvalidArgumentError(
                f"message {message} was not received (or was already acked) by this consumer"
            )
        return native

    async def acknowledge(self, message: Message | MessageId) -> None:
        self._check_open()
        native = self._native_of(message)
        try:
            await self._native.acknowledge(native)
        except PulsarException as exc:
            raise translate(exc, f"acknowledge on {self._topic}") from exc
        self._held.pop(message_id_from_native(native.message_id()), None)

    async def acknowledge_cumulative(self, message: Message | MessageId) -> None:
        self._check_open()
        if self._type in _INDIVIDUAL_ONLY:
            raise CumulativeAckNotAllowedError(
                f"cumulative acknowledgement is not allowed on a {self._type.value} subscription"
            )
        native = self._native_of(message)
        try:
            await self._native.acknowledge_cumulative(native)
        except PulsarException as exc:
            raise translate(exc, f"acknowledge cumulatively on {self._topic}") from exc
        upto = message_id_from_native(native.message_id())
        for held in [i for i in self._held if i.partition == upto.partition and i <= upto]:
            del self._held[held]

    async def negative_acknowledge(self, message: Message | MessageId) -> None:
        self._check_open()
        native = self._native_of(message)
        self._held.pop(message_id_from_native(native.message_id()), None)
        try:
            await self._native.negative_acknowledge(native)
        except PulsarException as exc:
            raise translate(exc, f"negatively acknowledge on {self._topic}") from exc

    async def redeliver_unacknowledged_messages(self) -> None:
        self._check_open()
        # Non-blocking in the client: it only sends a command to the broker.
        self._native.redeliver_unacknowledged_messages()

    def _mark_closed(self) -> None:
        self._closed = True
        self._on_close(self)
        self._held.clear()
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
        self._pending = None

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await self._native.close()
        except PulsarException as exc:
            if result_name(exc) != "AlreadyClosed":
                raise translate(exc, f"close the consumer on {self._topic}") from exc
        finally:
            self._mark_closed()

    async def unsubscribe(self) -> None:
        self._check_open()
        try:
            await self._native.unsubscribe()
        except PulsarException as exc:
            # The broker answers "Unconnected or shared consumer attempting to unsubscribe"
            # with a metadata error when other consumers are still connected.
            if result_name(exc) in ("BrokerMetadataError", "ConsumerBusy"):
                raise ConsumerBusyError(
                    f"cannot unsubscribe {self.subscription!r} on {self._topic}: "
                    "other consumers are still connected"
                ) from exc
            raise translate(exc, f"unsubscribe from {self._topic}") from exc
        with contextlib.suppress(PulsarException):
            await self._native.close()
        self._mark_closed()
