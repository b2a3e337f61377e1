"""Dead-letter sinks: where lanes put a message whose handler failed ``max_attempts`` times.

Responsible for the :data:`DeadLetterSink` contract and the producer-backed sink. Imports no
backend; it publishes through the broker contract's :class:`~keylane.brokers.base.Producer`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from keylane.brokers.base import Message, Producer
from keylane.errors import InvalidArgumentError

__all__ = [
    "DEAD_LETTER_ATTEMPTS",
    "DEAD_LETTER_ERROR",
    "ORIGIN_MESSAGE_ID",
    "REAL_TOPIC",
    "DeadLetterSink",
    "producer_dead_letter_sink",
    "store_dead_letter",
]

#: ``(message, last error, attempts made)``; returns once the message is safely stored.
#: Raising means "not stored": lanes then park the key instead of acking the message.
DeadLetterSink = Callable[[Message, BaseException, int], Awaitable[None]]

#: Property names Pulsar's own dead-letter producer sets (kept if already present, as Pulsar does).
ORIGIN_MESSAGE_ID = "ORIGIN_MESSAGE_ID"
REAL_TOPIC = "REAL_TOPIC"
#: keylane's additions: the last error as ``"<ExceptionType>: <text>"`` and the attempts made.
DEAD_LETTER_ERROR = "KEYLANE_DLQ_ERROR"
DEAD_LETTER_ATTEMPTS = "KEYLANE_DLQ_ATTEMPTS"

#: Error texts longer than this are cut, so one huge message cannot bloat the dead letter.
MAX_ERROR_TEXT = 2000


def describe_error(error: BaseException) -> str:
    """``"<ExceptionType>: <text>"``, cut to :data:`MAX_ERROR_TEXT` characters. Never raises.

    An error whose ``__str__`` raises (or returns a non-string) is described as
    ``"<ExceptionType>: <unprintable: <why>>"``.
    """
    name = type(error).__name__
    try:
        detail = str(error)
        if not isinstance(detail, str):
            raise TypeError(f"__str__ returned {type(detail).__name__}")
    except Exception as exc:
        detail = f"<unprintable: {type(exc).__name__}>"
    text = f"{name}: {detail}" if detail else name
    if len(text) > MAX_ERROR_TEXT:
        text = text[: MAX_ERROR_TEXT - 3] + "..."
    return text


def producer_dead_letter_sink(producer: Producer) -> DeadLetterSink:
    """A sink that publishes a copy of each dead message with ``producer``.

    The copy has the same data, partition key, ordering key and event time; its properties are the
    original ones plus ``ORIGIN_MESSAGE_ID`` (``str(message.message_id)``) and ``REAL_TOPIC``
    (kept if already set, so a message dead-lettered twice names its first origin, as in Pulsar)
    and ``KEYLANE_DLQ_ERROR`` / ``KEYLANE_DLQ_ATTEMPTS`` (always overwritten). The sink returns once
    the broker has stored the copy; a failed send raises, and lanes then keep the original.

    Raises:
        InvalidArgumentError: ``producer`` is not a :class:`~keylane.brokers.base.Producer`.
    """
    if not isinstance(producer, Producer):
        raise InvalidArgumentError(
            f"producer must be a keylane Producer, not {type(producer).__name__}"
        )

    async def sink(message: Message, error: BaseException, attempts: int) -> None:
        properties = dict(message.properties)
        properties.setdefault(ORIGIN_MESSAGE_ID, str(message.message_id))
        properties.setdefault(REAL_TOPIC, message.topic)
        properties[DEAD_LETTER_ERROR] = describe_error(error)
        properties[DEAD_LETTER_ATTEMPTS] = str(attempts)
        await producer.send(
            message.data,
            key=message.key,
            ordering_key=message.ordering_key,
            properties=properties,
            event_time=message.event_time,
        )

    return sink


async def store_dead_letter(
    sink: DeadLetterSink,
    message: Message,
    error: BaseException,
    attempts: int,
    timeout: float | None,
) -> BaseException | None:
    """Call ``sink`` within ``timeout``; None once it stored the message, else why it did not.

    A cancellation of the running task itself (shutdown) propagates.
    """
    try:
        async with asyncio.timeout(timeout):
            await sink(message, error, attempts)
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        return exc
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        return exc
    return None
