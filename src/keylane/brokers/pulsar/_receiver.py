"""Receiving from the client's callback API: timeouts, no lost messages, few wake-ups.

``pulsar.asyncio.Consumer.receive`` has no timeout, and cancelling it loses a message: the client
later hands the message it took from its receive queue to the cancelled future, which drops it.
It also costs one ``call_soon_threadsafe`` (a wake-up of the event loop) per message.
:class:`Receiver` uses the client's ``receive_async(callback)`` directly, and relies on what the
C++ client does with it (``ConsumerImpl::receiveAsync``): when a message is already in the
client's receive queue, the callback runs at once, on the calling thread, before
``receive_async`` returns; otherwise the client keeps the callback and calls it from one of its
own threads when the next message arrives.

So a receive first *pulls*: it calls ``receive_async`` again and again on the event loop's
thread while messages come back synchronously, up to what the caller asked for, into a local
buffer. Only when the client's queue is empty does one ``receive_async`` stay outstanding; its
callback, on a client thread, wakes the loop once (``call_soon_threadsafe``), and the woken
receiver pulls whatever else arrived meanwhile. A busy consumer therefore costs one wake-up per
burst, not one per message. At most one client receive is outstanding at any time, so the
messages reach the buffer in the client's order.

Nothing is handed to a future that might be cancelled: messages wait in the buffer and the
receiver that runs takes them, so a receive that times out or is cancelled loses nothing, and
the next one returns what arrived first. Messages leave the client's queue only as far as
callers ask (``receive_many``'s maximum), plus at most one that arrives for a receiver that gave
up.

Pure asyncio: the client objects are passed in, so this module is unit-tested with a fake.
Imports no backend and not ``pulsar``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from keylane.brokers.pulsar._threads import pin_thread_state

__all__ = ["Receiver"]

T = TypeVar("T")

#: ``callback(result, message)`` as the client calls it (on the caller's or its own thread).
NativeCallback = Callable[[object, T], None]


class Receiver(Generic[T]):
    """Turns a callback-style ``receive_async`` into ``await receive(timeout)`` and
    ``await receive_many(max_messages, timeout)``.

    Args:
        receive_async: the client's ``receive_async(callback)``; the callback runs once per
            call with ``(result, message)``, either before the call returns (a message was
            waiting) or later on another thread.
        ok: the ``result`` value that means success.
        error: builds the exception for a failed ``result``.
        loop: the event loop that owns the consumer (construct the receiver on its thread).
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
        self._thread = threading.get_ident()
        #: (result, message) of completed client receives; appended by the callback (any
        #: thread), taken on the loop's thread.
        self._ready: deque[tuple[object, T]] = deque()
        #: Messages pulled from the client and not handed out yet, in order.
        self._stash: deque[T] = deque()
        #: Client receives requested, and completions taken from ``_ready`` (loop thread only);
        #: they differ while one is outstanding.
        self._requested = 0
        self._taken = 0
        self._failure: BaseException | None = None
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self._closed: Callable[[], BaseException] | None = None
        self._callback: NativeCallback[T] = self._on_native
        #: Times the event loop was woken by a client thread (a measure of the batching).
        self.wakeups = 0

    @property
    def buffered(self) -> int:
        """Messages taken from the client and not handed out yet; served first."""
        return len(self._stash) + sum(1 for result, _ in self._ready if result == self._ok)

    async def receive(self, timeout: float | None) -> T:
        """The next message; TimeoutError after ``timeout`` seconds (None: wait forever)."""
        if self._closed is not None:
            raise self._closed()
        stash = self._stash
        if not stash:
            self._pull(1)
            if not stash:
                await self._wait(timeout, 1)
        message = stash.popleft()
        if self._waiters:
            self._serve_waiters()
        return message

    async def receive_many(self, max_messages: int, timeout: float | None) -> list[T]:
        """Between 1 and ``max_messages`` messages: what is there, waiting only for the first."""
        if self._closed is not None:
            raise self._closed()
        stash = self._stash
        if len(stash) < max_messages:
            self._pull(max_messages)
            if not stash:
                await self._wait(timeout, max_messages)
        if len(stash) <= max_messages:
            out = list(stash)
            stash.clear()
        else:
            out = [stash.popleft() for _ in range(max_messages)]
        if self._waiters:
            self._serve_waiters()
        return out

    # ------------------------------------------------------------------ internals

    def _pull(self, want: int) -> None:
        """:meth:`_fill`, then raise a failed client receive (once) if the stash is empty."""
        self._fill(want)
        if self._failure is not None and not self._stash:
            failure, self._failure = self._failure, None
            raise failure

    def _fill(self, want: int) -> None:
        """Move messages from the client into the stash until it holds ``want`` or the client
        has none waiting (then one client receive stays outstanding). Loop thread only."""
        ready, stash, ok = self._ready, self._stash, self._ok
        receive_async, callback = self._receive_async, self._callback
        while True:
            while ready:
                result, message = ready.popleft()
                self._taken += 1
                if result == ok:
                    stash.append(message)
                elif self._closed is None:
                    self._failure = self._error(result)
            if (
                len(stash) >= want
                or self._requested != self._taken
                or self._closed
                or self._failure is not None
            ):
                return
            self._requested += 1
            try:
                receive_async(callback)  # may run the callback before it returns
            except BaseException:
                self._requested -= 1  # no callback will come
                raise

    def _serve_waiters(self) -> None:
        """After a receiver took its messages: keep a client receive outstanding for those
        still waiting, and wake one of them if something is there for it."""
        waiters = self._waiters
        while waiters and waiters[0].done():
            waiters.popleft()
        if not waiters:
            return
        if not self._stash:
            self._fill(1)
        if self._stash or self._failure is not None:
            self._wake_one()

    async def _wait(self, timeout: float | None, want: int) -> None:
        """Return once the stash holds a message; TimeoutError after ``timeout`` seconds."""
        loop = self._loop
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            waiter: asyncio.Future[bool] = loop.create_future()
            self._waiters.append(waiter)
            timer = None if deadline is None else loop.call_at(deadline, _expire, waiter)
            try:
                timed_out = await waiter
            except asyncio.CancelledError:
                if not waiter.cancelled() and (self._ready or self._stash):
                    self._wake_one()  # pass the wake-up on to the next receiver
                raise
            finally:
                if timer is not None:
                    timer.cancel()
            if self._closed is not None:
                raise self._closed()
            self._pull(want)
            if self._stash:
                return
            if timed_out:
                raise TimeoutError()

    def _on_native(self, result: object, message: T) -> None:
        # On the loop's thread (the message was waiting) or on a client thread (it arrived).
        if self._closed is not None:
            return  # dropped, as close() drops what was kept
        self._ready.append((result, message))
        if threading.get_ident() != self._thread:
            pin_thread_state()
            # The loop may already be closed at interpreter shutdown.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._woken)

    def _woken(self) -> None:
        self.wakeups += 1
        self._wake_one()

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(False)
                return

    def close(self, error: Callable[[], BaseException]) -> None:
        """Fail every waiter, and every later call, with ``error()``; drop kept messages."""
        self._closed = error
        self._stash.clear()
        self._ready.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error())


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(True)
