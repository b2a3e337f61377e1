"""The handler contract of lanes and the code that runs one handler attempt.

Responsible for calling the user's handler, bounding it with the timeout and turning every way a
handler can misbehave (raise, hang, return a non-awaitable) into an outcome. Imports no backend;
only the broker contract's :class:`~keylane.brokers.base.Message` and the error hierarchy.
"""

from __future__ import annotations

import asyncio
import inspect
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from keylane.brokers.base import Message
from keylane.errors import KeylaneError
from keylane.lanes.watchdog import AttemptWatchdog

__all__ = [
    "Handler",
    "HandlerContext",
    "HandlerResultError",
    "HandlerTimeoutError",
    "NoRetryError",
    "RetryLater",
    "run_attempt",
]


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What a handler is told about the call besides the message.

    Attributes:
        key: the message's key as lanes see it (``key_of(message)``).
        attempt: 1 for the first attempt, 2 for the first retry, ...; starts again at 1 after
            :meth:`~keylane.lanes.Lanes.resume`.
        consumer_name: name of the consumer the message came from.
    """

    key: str
    attempt: int
    consumer_name: str


#: An async callable; its return value is ignored and raising means failure.
Handler = Callable[[Message, HandlerContext], Awaitable[object]]


class HandlerResultError(KeylaneError, TypeError):
    """The handler did not return an awaitable (e.g. a plain function was passed as handler).

    Counted as a failed attempt, like an exception raised by the handler.
    """


class HandlerTimeoutError(KeylaneError, TimeoutError):
    """A handler attempt exceeded ``handler_timeout`` and was cancelled.

    Counted as a failed attempt. (A ``TimeoutError`` the handler raises itself is an ordinary
    failure and is passed on unchanged.)
    """


class NoRetryError(KeylaneError):
    """Raise it (or an error deriving from it) from a handler: retrying cannot help.

    The attempt fails and the message goes straight to the exhausted policy (dead letter or
    park) without its remaining attempts, e.g. an event that cannot be parsed.
    """


class RetryLater(KeylaneError):
    """Raise it from a handler: not a failure; run the message again after ``delay`` seconds.

    The message stays at the head of its key (order is kept), no attempt is consumed and the
    key frees its slot while it waits, e.g. while a database is unreachable. A key can wait
    this way for as long as the handler keeps asking.

    Args:
        delay: seconds to wait (>= 0).
        reason: why, for logs and ``stats().parked_keys``-style diagnostics.
    """

    def __init__(self, delay: float, reason: str = "") -> None:
        super().__init__(f"retry in {delay:g} s: {reason}" if reason else f"retry in {delay:g} s")
        self.delay = max(0.0, float(delay))
        self.reason = reason


async def run_attempt(
    handler: Handler,
    message: Message,
    context: HandlerContext,
    timeout: float | None,
    *,
    cancel_requested: Callable[[], bool] | None = None,
    watchdog: AttemptWatchdog | None = None,
) -> BaseException | None:
    """Run one handler attempt and return None on success or the error that failed it.

    A timeout is reported as :class:`HandlerTimeoutError`. Every other way a handler can end
    except ``KeyboardInterrupt`` and ``SystemExit`` is an outcome, never an escape: an
    ``Exception``, any other ``BaseException`` (``GeneratorExit``, a library's own base class)
    and a ``CancelledError`` the handler raises on its own are failures.

    A cancellation of the running task propagates only when the caller asked for it: with
    ``cancel_requested`` given, a cancellation while it returns False (the handler cancelled its
    own task, as some libraries do) is taken back (``Task.uncancel``) and counted as a failure;
    without it, any cancellation of the running task propagates.

    With ``watchdog`` (whose timeout is ``timeout``) the attempt is bounded by it instead of an
    ``asyncio.timeout`` of its own; the outcomes are the same.
    """
    try:
        if watchdog is not None:
            # Inline rather than a coroutine of its own: this runs for every message.
            task = asyncio.current_task()
            assert task is not None, "lanes run handlers in worker tasks"
            attempt = watchdog.enter(task)
            try:
                await _awaitable(handler(message, context))
            except BaseException as exc:
                if watchdog.settle(attempt, exc):
                    return _timed_out(watchdog.timeout)
                raise
            watchdog.settle(attempt, None)
        elif timeout is None:
            await _call(handler, message, context)
        else:
            deadline = asyncio.timeout(timeout)
            try:
                async with deadline:
                    await _call(handler, message, context)
            except TimeoutError:
                if not deadline.expired():
                    raise
                return _timed_out(timeout)
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is None or not task.cancelling():
            return exc  # raised by the handler itself, not a cancellation of this task
        if cancel_requested is None or cancel_requested():
            raise
        while task.cancelling():  # the handler cancelled its own task: not ours to obey
            task.uncancel()
        return exc
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        return exc
    return None


def _timed_out(timeout: float) -> HandlerTimeoutError:
    return HandlerTimeoutError(f"handler did not finish within {timeout:g} s")


async def _call(handler: Handler, message: Message, context: HandlerContext) -> None:
    await _awaitable(handler(message, context))


def _awaitable(result: object) -> Awaitable[object]:
    # Fast path for the usual case, an ``async def`` handler.
    if type(result) is types.CoroutineType or inspect.isawaitable(result):
        return cast(Awaitable[object], result)
    raise HandlerResultError(
        f"handler returned {type(result).__name__}, not an awaitable; "
        "a handler must be an async callable (async def handler(message, context))"
    )
