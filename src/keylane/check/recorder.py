"""Recording a history: :class:`HistoryRecorder` and the :func:`recorded` handler wrapper.

Every consumer records its own handler attempts (and a producer its publications) with one
recorder each; a recorder keeps the records in memory and, given a path, also writes them as JSON
Lines. The checker (:mod:`keylane.check.checker`) merges the files afterwards.

All consumers on a host must use one clock: the default :func:`time.monotonic` is
``CLOCK_MONOTONIC``, which Linux shares across processes. A simulation on virtual time passes
``clock=loop.time``.

This module imports no backend: only :class:`keylane.brokers.base.Message` (for typing) and
:mod:`keylane.errors`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Protocol, Self, TypeVar

from keylane.check.records import (
    DROPPED,
    ERROR,
    OK,
    SEQ_PROPERTY,
    TIMEOUT,
    Attempt,
    History,
    Published,
    write_records,
)
from keylane.errors import InvalidArgumentError

if TYPE_CHECKING:
    from keylane.brokers.base import Message

__all__ = ["AttemptContext", "HistoryRecorder", "property_seq", "recorded", "recorded_drops"]


class HistoryRecorder:
    """Collects attempts and publications in memory and optionally appends them to a file.

    Recording is cheap (an append to a list); the file is written in batches of ``flush_every``
    records, on :meth:`flush` and on :meth:`close`, so a crash loses at most the last batch. A
    recorder belongs to one thread (one event loop); give each process its own file.

    Args:
        path: a JSON Lines file to write; ``None`` keeps the history in memory only.
        clock: seconds on a clock shared by every consumer being checked together.
        append: add to an existing file instead of replacing it (e.g. a restarted consumer).
        flush_every: how many records to buffer before writing them to the file.
        keep_in_memory: also keep every record for :meth:`history`; turn it off for a
            long-running consumer that only writes the file.

    Raises:
        InvalidArgumentError: ``flush_every`` < 1, or neither a path nor ``keep_in_memory``.
        OSError: the file cannot be opened.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        append: bool = False,
        flush_every: int = 4096,
        keep_in_memory: bool = True,
    ) -> None:
        if isinstance(flush_every, bool) or not isinstance(flush_every, int) or flush_every < 1:
            raise InvalidArgumentError(f"flush_every must be an int >= 1, got {flush_every!r}")
        if path is None and not keep_in_memory:
            raise InvalidArgumentError("a HistoryRecorder without a path must keep_in_memory")
        self._clock = clock
        self._flush_every = flush_every
        self._keep = keep_in_memory
        self._attempts: list[Attempt] = []
        self._published: list[Published] = []
        self._pending: list[Attempt | Published] = []
        self._path = None if path is None else Path(path)
        self._file: IO[str] | None = None
        if self._path is not None:
            # Opened here, not lazily, so a bad path fails before the run starts.
            self._file = open(self._path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
        self._closed = False

    @property
    def path(self) -> Path | None:
        """The file being written, if any."""
        return self._path

    def now(self) -> float:
        """The current time on this recorder's clock."""
        return self._clock()

    def published(self, key: str, seq: int, message_id: str) -> None:
        """Record that a message was published (call it after ``send`` returned its id)."""
        self._record(Published(key, seq, message_id))

    def attempt(self, a: Attempt) -> None:
        """Record one finished handler attempt.

        Raises:
            InvalidArgumentError: a time is not finite or ``end`` precedes ``start``; or the
                recorder is closed.
        """
        if not (math.isfinite(a.start) and math.isfinite(a.end) and a.start <= a.end):
            raise InvalidArgumentError(f"attempt times must be finite with start <= end: {a!r}")
        self._record(a)

    def _record(self, record: Attempt | Published) -> None:
        if self._closed:
            raise InvalidArgumentError("this HistoryRecorder is closed")
        if self._keep:
            if isinstance(record, Attempt):
                self._attempts.append(record)
            else:
                self._published.append(record)
        if self._file is not None:
            self._pending.append(record)
            if len(self._pending) >= self._flush_every:
                self.flush()

    def history(self) -> History:
        """A snapshot of everything recorded so far (new lists; the records are shared).

        Raises:
            InvalidArgumentError: the recorder was created with ``keep_in_memory=False``; read
                its file with :func:`~keylane.check.records.read_history` instead.
        """
        if not self._keep:
            raise InvalidArgumentError(
                "this HistoryRecorder does not keep its history in memory; read its file instead"
            )
        return History(attempts=list(self._attempts), published=list(self._published))

    def flush(self) -> None:
        """Write the buffered records to the file (a no-op without a file)."""
        if self._file is None or not self._pending:
            return
        pending, self._pending = self._pending, []
        write_records(self._file, pending)
        self._file.flush()

    def close(self) -> None:
        """Flush and close the file. Idempotent; the in-memory history stays readable."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            if self._file is not None:
                self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AttemptContext(Protocol):
    """What :func:`recorded` needs to know about an attempt besides the message.

    ``keylane.lanes.HandlerContext`` satisfies it; a strategy without lanes can pass any object
    with these attributes.
    """

    @property
    def key(self) -> str:
        """The key the message is processed under."""

    @property
    def attempt(self) -> int:
        """1-based attempt number (count broker redeliveries in it too, where known)."""

    @property
    def consumer_name(self) -> str:
        """Name of the consumer running the handler."""


def property_seq(message: Message) -> int:
    """The message's per-key sequence number, from its ``seq`` property.

    Raises:
        InvalidArgumentError: the property is missing or not an integer.
    """
    raw = message.properties.get(SEQ_PROPERTY)
    if raw is None:
        raise InvalidArgumentError(
            f"message {message.message_id} has no {SEQ_PROPERTY!r} property; publish it with "
            f"properties={{{SEQ_PROPERTY!r}: str(n)}} or pass seq_of= to recorded()"
        )
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgumentError(
            f"message {message.message_id} has a non-integer {SEQ_PROPERTY!r} property: {raw!r}"
        ) from None


C = TypeVar("C", bound=AttemptContext)
R = TypeVar("R")


def recorded(
    handler: Callable[[Message, C], Awaitable[R]],
    recorder: HistoryRecorder,
    *,
    seq_of: Callable[[Message], int] = property_seq,
) -> Callable[[Message, C], Coroutine[Any, Any, R]]:
    """Wrap a handler so that each call is recorded as one :class:`Attempt`.

    The outcome is ``"ok"`` when the handler returns, ``"timeout"`` when it is cancelled (a
    handler timeout cancels it; ``TimeoutError`` counts too) and ``"error"`` when it raises
    anything else. The message's ``redelivery_count`` is recorded with the attempt, so the
    checker can tell a redelivered duplicate from an unexplained one. The wrapper re-raises, so
    retries, timeouts and dead-lettering work as without it. ``seq_of`` runs before the
    handler: a message without a sequence number fails the attempt with
    :class:`~keylane.errors.InvalidArgumentError` instead of being processed unrecorded.

    Args:
        handler: ``async (message, context) -> object``, e.g. a ``keylane.lanes`` handler.
        recorder: where the attempts go.
        seq_of: how to read the per-key sequence number (default: the ``seq`` property).
    """

    async def recording_handler(message: Message, context: C) -> R:
        seq = seq_of(message)
        start = recorder.now()
        outcome = ERROR
        try:
            result = await handler(message, context)
        except (asyncio.CancelledError, TimeoutError):
            outcome = TIMEOUT
            raise
        else:
            outcome = OK
            return result
        finally:
            recorder.attempt(
                Attempt(
                    key=context.key,
                    consumer=context.consumer_name,
                    message_id=str(message.message_id),
                    seq=seq,
                    attempt=context.attempt,
                    start=start,
                    end=recorder.now(),
                    outcome=outcome,
                    redelivery_count=message.redelivery_count,
                )
            )

    recording_handler.__name__ = getattr(handler, "__name__", "handler")
    recording_handler.__qualname__ = f"recorded({getattr(handler, '__qualname__', 'handler')})"
    recording_handler.__doc__ = getattr(handler, "__doc__", None)
    return recording_handler


def recorded_drops(
    recorder: HistoryRecorder,
    *,
    seq_of: Callable[[Message], int] = property_seq,
) -> Callable[[Message, AttemptContext, str], None]:
    """A ``Lanes(on_dropped=...)`` callback that records each dropped message in the history.

    A drop is an :class:`Attempt` with outcome ``"dropped"`` and ``start == end`` (the handler
    never ran, so it overlaps nothing). The message must still complete elsewhere (at the key's
    new owner), otherwise the checker reports it lost. A message without a sequence number is
    not recorded (there is nothing to check it against).
    """

    def on_dropped(message: Message, context: AttemptContext, reason: str) -> None:
        try:
            seq = seq_of(message)
        except InvalidArgumentError:
            return
        now = recorder.now()
        recorder.attempt(
            Attempt(
                key=context.key,
                consumer=context.consumer_name,
                message_id=str(message.message_id),
                seq=seq,
                attempt=context.attempt,
                start=now,
                end=now,
                outcome=DROPPED,
            )
        )

    return on_dropped
