"""``PulsarProducer``: keylane's :class:`~keylane.brokers.base.Producer` over the Pulsar client.

Arguments are validated before the client sees them. Sends go straight to the client's
``send_async`` (the C++ call that ``pulsar.asyncio`` wraps), with one callback per message that
only records the receipt; the receipts are handed to the event loop in bursts, one
``call_soon_threadsafe`` per burst (:class:`_Receipts`), never one per message as
``pulsar.asyncio`` does. :meth:`PulsarProducer.enqueue` returns each message's future at once;
:meth:`PulsarProducer.send` awaits it, after asking for the open batches to be flushed at the
end of the event-loop iteration (so an awaited send never waits for
``batching_max_publish_delay``).

Flushing never holds the GIL: the client's ``flush_async`` binding (which ``pulsar.asyncio``'s
``flush`` uses) keeps the GIL while it waits for the producer's lock, and the client's batch
timer holds that lock while it destroys the messages' Python callbacks, which needs the GIL: a
deadlock, seen in 1 of 3 runs of 100,000 gathered sends (``gdb``: ``ProducerImpl::flushAsync``
waiting for the mutex on the loop's thread, ``MessageAndCallbackBatch::clear`` waiting for the
GIL on the client's thread). :class:`_Flusher` runs the client's blocking ``flush``, which
releases the GIL first, in a worker thread, one at a time per producer.

Messages in flight are bounded by the client's pending-message limit (:class:`SendWindow`), so a
burst waits on the event loop instead of failing with ``ProducerQueueIsFull`` (the client's
blocking mode would block the loop's thread).

Part of the Pulsar backend; imports ``pulsar`` and no other backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
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
from keylane.brokers.pulsar._threads import pin_thread_state
from keylane.brokers.serial_sends import SerialSendWatch
from keylane.errors import AlreadyClosedError

__all__ = ["PulsarProducer", "SendWindow"]

_OK = _pulsar.Result.Ok
_MessageBuilder = _pulsar.MessageBuilder


class SendWindow:
    """A FIFO limit on messages in flight.

    Like :class:`asyncio.Semaphore`, but a release hands its slots straight to the oldest
    waiters and costs O(1) however many wait (3.11's semaphore scans its waiters on every
    release, which made a burst of 20,000 sends quadratic), and :meth:`release` returns many
    slots at once.
    """

    __slots__ = ("_free", "_size", "_waiters")

    def __init__(self, size: int) -> None:
        self._size = size
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def used(self) -> int:
        """Slots taken."""
        return self._size - self._free

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody waits for one."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def acquire(self) -> None:
        """Take a slot, waiting in FIFO order if none is free."""
        if self.try_acquire():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over just before the cancellation
            raise

    def release(self, count: int = 1) -> None:
        """Return ``count`` slots: to the oldest live waiters, the rest to the pool."""
        waiters = self._waiters
        while count and waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1
        self._free += count


class _Receipts:
    """Send receipts from the client's threads, delivered on the event loop in bursts.

    :meth:`callback` gives the ``send_async`` callback of one message. It runs on a client
    thread (or at once, if the client refuses the message): it appends the receipt and, unless
    a drain is already scheduled, schedules one with ``call_soon_threadsafe``. The drain clears
    the flag *before* taking the receipts, so a receipt appended while it runs either is taken
    by it or schedules the next drain.
    """

    __slots__ = ("_deliver", "_loop", "_scheduled", "_thread", "queue")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[deque[tuple[asyncio.Future[MessageId], object, object]]], None],
    ) -> None:
        self._loop = loop
        self._thread = threading.get_ident()
        self._deliver = deliver
        self._scheduled = False
        self.queue: deque[tuple[asyncio.Future[MessageId], object, object]] = deque()

    def callback(self, future: asyncio.Future[MessageId]) -> Callable[[object, object], None]:
        """The client callback that completes ``future``."""
        return functools.partial(self._on_receipt, future)

    def _on_receipt(
        self, future: asyncio.Future[MessageId], result: object, message_id: object
    ) -> None:
        self.queue.append((future, result, message_id))
        if threading.get_ident() != self._thread:
            pin_thread_state()
        if not self._scheduled:
            self._scheduled = True
            # The loop may already be closed at interpreter shutdown.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        self._deliver(self.queue)


class _Flusher:
    """Runs the client's blocking ``flush`` in a worker thread; requests made while one runs
    are coalesced into one more run after it."""

    __slots__ = ("_again", "_executor", "_flush", "_loop", "_running")

    def __init__(
        self, flush: Callable[[], None], loop: asyncio.AbstractEventLoop, executor: Executor
    ) -> None:
        self._flush = flush
        self._loop = loop
        self._executor = executor
        self._running = False
        self._again = False

    def request(self) -> None:
        """Flush the open batches soon (errors are the messages' own callbacks' business)."""
        if self._running:
            self._again = True
            return
        self._running = True
        try:
            done = self._loop.run_in_executor(self._executor, self._flush_quietly)
        except RuntimeError:  # the executor is shut down: the producer is closing
            self._running = False
            return
        done.add_done_callback(self._finished)

    def _flush_quietly(self) -> None:
        with contextlib.suppress(_pulsar.PulsarException):
            self._flush()

    def _finished(self, _: object) -> None:
        self._running = False
        if self._again:
            self._again = False
            self.request()


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
        #: The client's own producer (``_pulsar.Producer``): ``send_async`` and ``flush_async``.
        self._client: _pulsar.Producer = native._producer
        self._topic = topic
        self._loop = asyncio.get_running_loop()
        self._window = SendWindow(max_pending)
        self._receipts = _Receipts(self._loop, self._complete)
        self._batching = batching
        self._executor = executor
        self._flusher = _Flusher(self._client.flush, self._loop, executor)
        self._flush_soon = False
        self._on_close = on_close
        self._closed = False
        self._serial = SerialSendWatch(f"producer {self.producer_name!r} on {topic}")

    def __repr__(self) -> str:
        return f"<PulsarProducer {self.producer_name!r} {self._topic}>"

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def producer_name(self) -> str:
        """The producer's name (given, or assigned by the broker)."""
        return str(self._native.producer_name())

    @property
    def in_flight(self) -> int:
        """Messages handed to the client whose receipt has not been delivered yet."""
        return self._window.used

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
        if self._batching:
            self._serial.awaited_send(self._window.used, self._loop.time())
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
        if not self._window.used:
            self._serial.idle(self._loop.time())

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
