"""``PulsarProducer``: keylane's :class:`~keylane.brokers.base.Producer` over the Pulsar client.

Arguments are validated before the client sees them. Sends go straight to the client's
``send_async`` (the C++ call that ``pulsar.asyncio`` wraps), with one callback per message that
only records the receipt; the receipts are handed to the event loop in bursts, one
``call_soon_threadsafe`` per burst (``_sending.Receipts``), never one per message as
``pulsar.asyncio`` does. :meth:`PulsarProducer.enqueue` returns each message's future at once;
:meth:`PulsarProducer.send` awaits it, after asking for the open batches to be flushed at the
end of the event-loop iteration (so an awaited send never waits for
``batching_max_publish_delay``).

Flushing never holds the GIL: the client's ``flush_async`` binding (which ``pulsar.asyncio``'s
``flush`` uses) keeps the GIL while it waits for the producer's lock, and the client's batch
timer holds that lock while it destroys the messages' Python callbacks, which needs the GIL: a
deadlock, seen in 1 of 3 runs of 100,000 gathered sends (``gdb``: ``ProducerImpl::flushAsync``
waiting for the mutex on the loop's thread, ``MessageAndCallbackBatch::clear`` waiting for the
GIL on the client's thread). ``_sending.Flusher`` runs the client's blocking ``flush``, which
releases the GIL first, in a worker thread, one at a time per producer.

Messages in flight are bounded by the client's pending-message limit (``_sending.SendWindow``),
so a burst waits on the event loop instead of failing with ``ProducerQueueIsFull`` (the client's
blocking mode would block the loop's thread).

Part of the Pulsar backend; imports ``pulsar`` and no other backend.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from datetime import datetime

import _pulsar
from pulsar.asyncio import Producer as NativeProducer
from pulsar.asyncio import PulsarException

from keylane.brokers.base import Duration, MessageId, Producer
from keylane.brokers.pulsar._convert import validate_send
from keylane.brokers.pulsar._errors import (
    result_name,
    translate,
    translate_native,
    translate_result,
)
from keylane.brokers.pulsar._sending import Flusher, Receipts, SendWindow
from keylane.brokers.serial_sends import SerialSendWatch
from keylane.errors import AlreadyClosedError

__all__ = ["PulsarProducer", "SendWindow"]

_OK = _pulsar.Result.Ok
_MessageBuilder = _pulsar.MessageBuilder


class PulsarProducer(Producer):
    """A producer of :class:`~keylane.brokers.pulsar.PulsarBroker` (see ``create_producer``)."""

    def __init__(
        self,
        native: NativeProducer,
        *,
        topic: str,
        max_pending: int,
        batching: bool,
        executor: Executor,
        on_close: Callable[[PulsarProducer], None],
    ) -> None:
        self._native = native
        #: The client's own producer (``_pulsar.Producer``): ``send_async`` and ``flush``.
        self._client: _pulsar.Producer = native._producer
        self._topic = topic
        self._loop = asyncio.get_running_loop()
        self._window = SendWindow(max_pending)
        self._receipts = Receipts(self._loop, self._complete)
        self._batching = batching
        self._executor = executor
        self._flusher = Flusher(self._client.flush, self._loop, executor)
        self._flush_soon = False
        self._on_close = on_close
        self._closed = False
        self._serial = SerialSendWatch(f"producer {self.producer_name!r} on {topic}")
        #: Messages taken since the window was last empty (for the serial-send watch).
        self._spell = 0

    def __repr__(self) -> str:
        return f"<PulsarProducer {self.producer_name!r} {self._topic}>"

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def producer_name(self) -> str:
        """The producer's name (given, or assigned by the broker)."""
        return str(self._native.producer_name())

    async def send(
        self,
        data: bytes,
        *,
        key: str | None = None,
        ordering_key: str | None = None,
        properties: Mapping[str, str] | None = None,
        deliver_after: Duration | None = None,
        deliver_at: datetime | float | None = None,
        event_time: float | None = None,
    ) -> MessageId:
        future = await self.enqueue(
            data,
            key=key,
            ordering_key=ordering_key,
            properties=properties,
            deliver_after=deliver_after,
            deliver_at=deliver_at,
            event_time=event_time,
        )
        if self._batching and not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._flush_now)
        return await future

    async def enqueue(
        self,
        data: bytes,
        *,
        key: str | None = None,
        ordering_key: str | None = None,
        properties: Mapping[str, str] | None = None,
        deliver_after: Duration | None = None,
        deliver_at: datetime | float | None = None,
        event_time: float | None = None,
    ) -> asyncio.Future[MessageId]:
        self._check_open()
        if (
            data.__class__ is bytes
            and (key is None or key.__class__ is str)
            and ordering_key is None
            and properties is None
            and deliver_after is None
            and deliver_at is None
            and event_time is None
            and (key is None or key.isascii())
        ):  # the common case: nothing to check or convert (ASCII always encodes)
            builder = _MessageBuilder().content(data)
            if key is not None:
                builder.partition_key(key)
        else:
            builder = self._builder(
                data, key, ordering_key, properties, deliver_after, deliver_at, event_time
            )
        message = builder.build()
        window = self._window
        if not window.used and self._batching:  # a busy spell begins
            self._serial.busy(self._loop.time())
            self._spell = 0
        self._spell += 1
        if not window.try_acquire():
            await window.acquire()
            try:
                self._check_open()
            except AlreadyClosedError:
                window.release()
                raise
        future: asyncio.Future[MessageId] = self._loop.create_future()
        try:
            self._client.send_async(message, self._receipts.callback(future))
        except BaseException:
            window.release()
            raise
        return future

    def _check_open(self) -> None:
        if self._closed:
            raise AlreadyClosedError(f"producer on {self._topic} is closed")

    @staticmethod
    def _builder(
        data: object,
        key: object,
        ordering_key: object,
        properties: object,
        deliver_after: Duration | None,
        deliver_at: datetime | float | None,
        event_time: object,
    ) -> _pulsar.MessageBuilder:
        options = validate_send(
            data,
            key=key,
            ordering_key=ordering_key,
            properties=properties,
            deliver_after=deliver_after,
            deliver_at=deliver_at,
            event_time=event_time,
        )
        builder = _MessageBuilder().content(data)
        for name, value in options.properties.items():
            builder.property(name, value)
        if options.key is not None:
            builder.partition_key(options.key)
        if options.ordering_key is not None:
            builder.ordering_key(options.ordering_key)
        if options.event_time_ms is not None:
            builder.event_timestamp(options.event_time_ms)
        if options.deliver_at_ms is not None:
            builder.deliver_at(options.deliver_at_ms)
        return builder

    def _complete(self, receipts: deque[tuple[asyncio.Future[MessageId], object, object]]) -> None:
        """Resolve the futures of a burst of receipts (on the loop, once per burst)."""
        count = 0
        while receipts:
            future, result, native_id = receipts.popleft()
            count += 1
            if future.done():  # cancelled by its caller; the message was sent anyway
                continue
            if result == _OK:
                future.set_result(
                    MessageId(
                        native_id.partition(),  # type: ignore[attr-defined]
                        native_id.ledger_id(),  # type: ignore[attr-defined]
                        native_id.entry_id(),  # type: ignore[attr-defined]
                        native_id.batch_index(),  # type: ignore[attr-defined]
                    )
                )
            else:
                future.set_exception(self._send_error(result))
        self._window.release(count)
        if not self._window.used and self._batching:
            self._serial.idle(self._loop.time(), self._spell)

    def _send_error(self, result: _pulsar.Result) -> Exception:
        if self._closed and result.name == "AlreadyClosed":
            return AlreadyClosedError(f"producer on {self._topic} closed before the send")
        return translate_result(result, f"send to {self._topic}")

    def _flush_now(self) -> None:
        self._flush_soon = False
        if not self._closed:
            self._flusher.request()

    async def flush(self) -> None:
        if self._closed:
            return
        await self._flush_and_wait()

    async def _flush_and_wait(self) -> None:
        try:
            await self._loop.run_in_executor(self._executor, self._client.flush)
        except _pulsar.PulsarException as exc:
            raise translate_native(exc, f"flush the producer on {self._topic}") from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._on_close(self)
        with contextlib.suppress(AlreadyClosedError):
            await self._flush_and_wait()  # sends already accepted still complete
        try:
            await self._native.close()
        except PulsarException as exc:
            if result_name(exc) != "AlreadyClosed":
                raise translate(exc, f"close the producer on {self._topic}") from exc
