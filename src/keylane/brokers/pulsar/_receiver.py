"""Receiving from the client's callback API with timeouts and without losing messages.

``pulsar.asyncio.Consumer.receive`` has no timeout, and cancelling it loses a message: the client
later hands the message it took from its receive queue to the cancelled future, which drops it.
:class:`Receiver` uses the client's ``receive_async(callback)`` directly. Every client callback
is delivered on the event loop to the oldest receiver still waiting; when nobody waits any more
(a receive timed out or was cancelled), the message is kept and the next ``receive`` returns it
first. Client receives are requested only as needed (one per waiting receiver), so at most a
handful of messages ever leave the client's receive queue early, and in order.

Pure asyncio: the client objects are passed in, so this module is unit-tested with a fake.
Imports no backend and not ``pulsar``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Receiver"]

T = TypeVar("T")

#: ``callback(result, message)`` as the client calls it (from one of its own threads).
NativeCallback = Callable[[object, T], None]


class Receiver(Generic[T]):
    """Turns a callback-style ``receive_async`` into ``await receive(timeout)``.

    Args:
        receive_async: the client's ``receive_async(callback)``; the callback may run on any
            thread, once per call, with ``(result, message)``.
        ok: the ``result`` value that means success.
        error: builds the exception for a failed ``result``.
        loop: the event loop that owns the consumer.
    """

    def __init__(
        self,
        receive_async: Callable[[NativeCallback[T]], None],
        *,
        ok: object,
        error: Callable[[object], BaseException],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._receive_async = receive_async
        self._ok = ok
        self._error = error
        self._loop = loop
        self._waiters: deque[asyncio.Future[T]] = deque()
        self._stash: deque[T] = deque()
        self._requested = 0  # client receives asked for and not yet delivered
        self._closed: Callable[[], BaseException] | None = None

    @property
    def buffered(self) -> int:
        """Messages taken from the client whose receiver gave up; served first."""
        return len(self._stash)

    async def receive(self, timeout: float | None) -> T:
        """The next message; TimeoutError after ``timeout`` seconds (None: wait forever)."""
        if self._closed is not None:
            raise self._closed()
        if self._stash:
            return self._stash.popleft()
        waiters = self._waiters
        while waiters and waiters[0].done():
            waiters.popleft()
        waiter: asyncio.Future[T] = self._loop.create_future()
        waiters.append(waiter)
        live = sum(1 for w in waiters if not w.done())
        while self._requested < live:
            self._requested += 1
            self._receive_async(self._on_native)
        timer = None
        if timeout is not None:
            timer = self._loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            if timer is not None:
                timer.cancel()

    def _on_native(self, result: object, message: T) -> None:
        # On a client thread. The loop may already be closed at interpreter shutdown.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._deliver, result, message)

    def _deliver(self, result: object, message: T) -> None:
        self._requested -= 1
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if waiter.done():
                continue
            if result == self._ok:
                waiter.set_result(message)
            else:
                waiter.set_exception(self._closed() if self._closed else self._error(result))
            return
        if result == self._ok and self._closed is None:
            self._stash.append(message)

    def close(self, error: Callable[[], BaseException]) -> None:
        """Fail every waiter, and every later call, with ``error()``; drop kept messages."""
        self._closed = error
        self._stash.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error())


def _expire(waiter: asyncio.Future[T]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
