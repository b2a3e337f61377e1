"""The producer's plumbing between the event loop and the client's threads.

- :class:`SendWindow`: the FIFO limit on messages in flight.
- :class:`Receipts`: send receipts appended by the client's callbacks (any thread) and handed to
  the event loop in bursts, one ``call_soon_threadsafe`` per burst.
- :class:`Flusher`: the client's blocking ``flush`` in a worker thread, one at a time.

Pure asyncio and threads: the client's objects are passed in. Imports no backend and not
``pulsar`` (``_pulsar`` only for its exception type).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor

import _pulsar

from keylane.brokers.base import MessageId
from keylane.brokers.pulsar._threads import pin_thread_state

__all__ = ["Flusher", "Receipts", "SendWindow"]


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


class Receipts:
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


class Flusher:
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
