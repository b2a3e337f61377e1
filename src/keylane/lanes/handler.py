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

from keylane.brokers.base import Message
from keylane.errors import KeylaneError

__all__ = ["Handler", "HandlerContext", "HandlerResultError", "HandlerTimeoutError", "run_attempt"]


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


async def run_attempt(
    handler: Handler, message: Message, context: HandlerContext, timeout: float | None
) -> BaseException | None:
    """Run one handler attempt and return None on success or the error that failed it.

    A timeout is reported as :class:`HandlerTimeoutError`. A ``CancelledError`` that the handler
    raises on its own (the running task is not being cancelled) is a failure too; a cancellation
    of the running task itself (shutdown) propagates.
    """
    try:
        if timeout is None:
            await _call(handler, message, context)
        else:
            deadline = asyncio.timeout(timeout)
            try:
                async with deadline:
                    await _call(handler, message, context)
            except TimeoutError:
                if not deadline.expired():
                    raise
                return HandlerTimeoutError(f"handler did not finish within {timeout:g} s")
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        return exc
    except Exception as exc:
        return exc
    return None


async def _call(handler: Handler, message: Message, context: HandlerContext) -> None:
    result = handler(message, context)
    # Fast path for the usual case, an ``async def`` handler.
    if type(result) is types.CoroutineType or inspect.isawaitable(result):
        await result
        return
    raise HandlerResultError(
        f"handler returned {type(result).__name__}, not an awaitable; "
        "a handler must be an async callable (async def handler(message, context))"
    )
