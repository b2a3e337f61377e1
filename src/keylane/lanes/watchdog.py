"""A timeout shared by many attempts: one timer instead of an ``asyncio.timeout`` each.

Responsible for cancelling every attempt that outlives a fixed timeout, exactly at its
deadline, and for saying how its ending counts (:meth:`AttemptWatchdog.settle`), as
``asyncio.timeout`` would, but without a timer, a ``Timeout`` object and a heap push and
removal per attempt: lanes' ``handler_timeout``, one per :class:`~keylane.lanes.Lanes`. Every
attempt under one watchdog has the same timeout and the loop's clock never goes back, so the
deadlines of running attempts are in start order: a FIFO of attempts and one timer armed at its
oldest running deadline are enough. The timer re-arms itself for the oldest attempt still
running when it fires; an attempt that ends only marks itself done. Imports nothing of keylane.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["AttemptWatchdog", "WatchedAttempt"]


class WatchedAttempt:
    """One running attempt under an :class:`AttemptWatchdog`.

    Attributes:
        task: the task running it (cancelled when it expires).
        deadline: the loop time it must end by.
        cancelling: ``task.cancelling()`` when it started (as ``asyncio.timeout`` records it).
        expired: the watchdog cancelled the task at ``deadline``.
        done: the attempt ended (it is no longer watched).
    """

    __slots__ = ("cancelling", "deadline", "done", "expired", "task")

    def __init__(self, task: asyncio.Task[object], deadline: float) -> None:
        self.task = task
        self.deadline = deadline
        self.cancelling = task.cancelling()
        self.expired = False
        self.done = False


class AttemptWatchdog:
    """Cancel each attempt still running ``timeout`` seconds after it started.

    Args:
        loop: the running loop (its clock and its timer).
        timeout: seconds, > 0; the same for every attempt.
    """

    __slots__ = ("_handle", "_loop", "_running", "timeout")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self.timeout = timeout
        self._running: deque[WatchedAttempt] = deque()
        self._handle: asyncio.TimerHandle | None = None

    def enter(self, task: asyncio.Task[object]) -> WatchedAttempt:
        """Watch an attempt that starts now in ``task``."""
        deadline = self._loop.time() + self.timeout
        attempt = WatchedAttempt(task, deadline)
        self._running.append(attempt)
        if self._handle is None:
            self._handle = self._loop.call_at(deadline, self._expire, deadline)
        return attempt

    def leave(self, attempt: WatchedAttempt) -> None:
        """The attempt ended: stop watching it.

        The timer stays armed even when nothing runs any more (cancelling and re-arming it for
        every attempt of a lone key would cost what ``asyncio.timeout`` costs): it fires at a
        deadline no later than any attempt started since, and re-arms for the oldest one still
        running, if any.
        """
        attempt.done = True
        running = self._running
        while running and running[0].done:
            running.popleft()

    def settle(self, attempt: WatchedAttempt, exc: BaseException | None) -> bool:
        """The attempt ended with ``exc`` (None: it returned); True if that is its timeout.

        Stops watching it. As ``asyncio.timeout`` does, an expiry is taken back
        (``Task.uncancel``) whatever the code did with it, and the ending is a timeout if the
        cancellation came through (and nobody else cancelled the task meanwhile) or was turned
        into a ``TimeoutError``.
        """
        self.leave(attempt)
        if not attempt.expired:
            return False
        others = attempt.task.uncancel() > attempt.cancelling
        if isinstance(exc, TimeoutError):
            return True
        return isinstance(exc, asyncio.CancelledError) and not others

    def close(self) -> None:
        """Let go of the timer if no attempt runs (an attempt still running stays watched)."""
        running = self._running
        while running and running[0].done:
            running.popleft()
        if not running and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _expire(self, due: float) -> None:
        """The timer: cancel every running attempt whose deadline is ``due`` or earlier."""
        self._handle = None
        running = self._running
        while running:
            head = running[0]
            if not head.done:
                if head.deadline > due:
                    self._handle = self._loop.call_at(head.deadline, self._expire, head.deadline)
                    return
                head.expired = True
                head.task.cancel()
            running.popleft()
