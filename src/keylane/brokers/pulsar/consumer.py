"""``PulsarConsumer``: keylane's :class:`~keylane.brokers.base.Consumer` over ``pulsar.asyncio``.

Receiving: ``pulsar.asyncio.Consumer.receive`` has no timeout, loses a message when cancelled and
wakes the event loop once per message, so ``receive`` and ``receive_many`` go through
:class:`~keylane.brokers.pulsar._receiver.Receiver` over the client consumer's ``receive_async``
(the call ``pulsar.asyncio`` itself wraps), which takes every message already waiting in the
client without a wake-up. Received messages are the client's ``_pulsar.Message`` objects.

Acknowledging: ``pulsar.asyncio``'s ``acknowledge`` also wakes the loop once per message (its
callback goes through ``call_soon_threadsafe``). The client's ack only records the message in its
ack-grouping tracker (sent to the broker every 100 ms) and completes before it returns, so
``acknowledge`` calls the client consumer's synchronous ``acknowledge`` directly; the same for the
non-blocking ``negative_acknowledge``, which ``pulsar.asyncio`` runs in a worker thread.

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

import _pulsar
from pulsar.asyncio import Consumer as NativeConsumer
from pulsar.asyncio import PulsarException

from keylane.brokers.base import (
    Consumer,
    Duration,
    Message,
    MessageId,
    SubscriptionType,
    check_max_messages,
    to_seconds,
)
from keylane.brokers.pulsar._errors import result_name, translate, translate_native
from keylane.brokers.pulsar._receiver import Receiver
from keylane.errors import (
    AlreadyClosedError,
    BrokerError,
    ConsumerBusyError,
    CumulativeAckNotAllowedError,
    InvalidArgumentError,
)

__all__ = ["PulsarConsumer", "to_message"]

_INDIVIDUAL_ONLY = (SubscriptionType.SHARED, SubscriptionType.KEY_SHARED)


_NO_PROPERTIES: MappingProxyType[str, str] = MappingProxyType({})


def to_message(native: _pulsar.Message, topic: str | None = None) -> Message:
    """keylane's :class:`Message` of a received client message (kept as ``handle``).

    Args:
        native: the client's message.
        topic: the consumer's topic, used as the message's topic when it is not a partition's
            (saves the client call on the receive path); None asks the client.
    """
    native_id = native.message_id()
    partition = native_id.partition()
    properties = native.properties()  # a fresh dict
    event_ms = native.event_timestamp()
    return Message(
        native.data(),
        native.partition_key() or None,  # the client reports "no key" as ""
        native.ordering_key() or None,
        MappingProxyType(properties) if properties else _NO_PROPERTIES,
        MessageId(partition, native_id.ledger_id(), native_id.entry_id(), native_id.batch_index()),
        topic if topic is not None and partition < 0 else str(native.topic_name()),
        native.publish_timestamp() / 1000,
        native.redelivery_count(),
        event_ms / 1000 if event_ms else None,
        native,
    )


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
        #: Set as soon as close() or unsubscribe() begins: the broker may move our keys before
        #: the client's close completes.
        self._closing = False
        client_consumer = getattr(native, "_consumer", None)
        receive_async = getattr(client_consumer, "receive_async", None)
        if not callable(receive_async) or not callable(
            getattr(client_consumer, "acknowledge", None)
        ):
            raise BrokerError(
                "this pulsar-client has no Consumer._consumer.receive_async/acknowledge; "
                "keylane needs pulsar-client 3.x (see pyproject.toml)"
            )
        #: The client's own consumer (``_pulsar.Consumer``), for the calls that do not block.
        self._client_consumer: _pulsar.Consumer = client_consumer
        self._receiver: Receiver[_pulsar.Message] = Receiver(
            receive_async,
            ok=_pulsar.Result.Ok,
            error=self._receive_error,
            loop=asyncio.get_running_loop(),
        )
        #: Client messages received and not yet acked, for acks by MessageId.
        self._held: dict[MessageId, _pulsar.Message] = {}

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
    def closed(self) -> bool:
        return self._closed or self._closing

    @property
    def subscription_type(self) -> SubscriptionType:
        """The type this consumer subscribed with."""
        return self._type

    def _check_open(self) -> None:
        if self._closed:
            raise self._closed_error()

    async def receive(self, timeout: Duration | None = None) -> Message:
        seconds = None if timeout is None else to_seconds(timeout, "timeout")
        self._check_open()
        native = await self._receiver.receive(seconds)
        message = to_message(native, self._topic)
        self._held[message.message_id] = native
        return message

    async def receive_many(
        self, max_messages: int, timeout: Duration | None = None
    ) -> list[Message]:
        count = check_max_messages(max_messages)
        seconds = None if timeout is None else to_seconds(timeout, "timeout")
        self._check_open()
        natives = await self._receiver.receive_many(count, seconds)
        held, topic = self._held, self._topic
        out = []
        for native in natives:
            message = to_message(native, topic)
            held[message.message_id] = native
            out.append(message)
        return out

    def _receive_error(self, result: object) -> BaseException:
        if self._closed or result == _pulsar.Result.AlreadyClosed:
            return self._closed_error()
        return translate(PulsarException(result), f"receive from {self._topic}")

    def _closed_error(self) -> AlreadyClosedError:
        return AlreadyClosedError(f"consumer {self.consumer_name!r} on {self._topic} is closed")

    def _native_of(self, message: Message | MessageId) -> tuple[_pulsar.Message, MessageId]:
        """The client message to ack for ``message``, and its id."""
        if isinstance(message, Message):
            if isinstance(message.handle, _pulsar.Message):
                return message.handle, message.message_id
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
        return native, message

    async def acknowledge(self, message: Message | MessageId) -> None:
        self._check_open()
        native, message_id = self._native_of(message)
        try:
            self._client_consumer.acknowledge(native)  # completes before it returns
        except _pulsar.PulsarException as exc:
            raise translate_native(exc, f"acknowledge on {self._topic}") from exc
        self._held.pop(message_id, None)

    async def acknowledge_cumulative(self, message: Message | MessageId) -> None:
        self._check_open()
        if self._type in _INDIVIDUAL_ONLY:
            raise CumulativeAckNotAllowedError(
                f"cumulative acknowledgement is not allowed on a {self._type.value} subscription"
            )
        native, upto = self._native_of(message)
        try:
            await self._native.acknowledge_cumulative(native)
        except PulsarException as exc:
            raise translate(exc, f"acknowledge cumulatively on {self._topic}") from exc
        for held in [i for i in self._held if i.partition == upto.partition and i <= upto]:
            del self._held[held]

    async def negative_acknowledge(self, message: Message | MessageId) -> None:
        self._check_open()
        native, message_id = self._native_of(message)
        self._held.pop(message_id, None)
        try:
            self._client_consumer.negative_acknowledge(native)  # only records it; never blocks
        except _pulsar.PulsarException as exc:
            raise translate_native(exc, f"negatively acknowledge on {self._topic}") from exc

    async def redeliver_unacknowledged_messages(self) -> None:
        self._check_open()
        # Non-blocking in the client: it only sends a command to the broker.
        self._native.redeliver_unacknowledged_messages()

    def _mark_closed(self) -> None:
        self._closed = True
        self._on_close(self)
        self._held.clear()
        self._receiver.close(self._closed_error)

    async def close(self) -> None:
        if self._closed:
            return
        self._closing = True
        try:
            await self._native.close()
        except PulsarException as exc:
            if result_name(exc) != "AlreadyClosed":
                raise translate(exc, f"close the consumer on {self._topic}") from exc
        finally:
            self._mark_closed()

    async def unsubscribe(self) -> None:
        self._check_open()
        self._closing = True
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
