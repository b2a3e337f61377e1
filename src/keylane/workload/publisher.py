"""The :class:`ScheduledPublisher`: publishes each event when the run's clock reaches its time.

``keylane run`` plays a day of events on a :class:`~keylane.clock.ScaledClock` that starts at the
first event's ``occurred_at``. The publisher walks the events in order and starts the send of
every event that is due (``occurred_at <= clock.now()``), keyed by the subscriber (``event.key``),
as the schema's JSON (:func:`~keylane.runtime.codec.encode_event`).

- **Pipelined.** Each event is handed over with ``producer.enqueue`` (the broker contract's
  pipelined send), which returns at once with a future of the message's id, instead of an
  awaited ``send`` per event (one round trip to the broker each). Up to ``batch`` events are
  in flight; the publisher waits only when that window is full. Events are enqueued in order,
  and the contract keeps a producer's call order per key, so each subscriber's events are
  published in order.
- **Never early.** An event is sent only once the clock has reached its time; between events
  the publisher sleeps the real time the clock needs (``gap / speed`` for a clock with a
  ``speed``, else it polls every ``tick`` seconds, e.g. a :class:`~keylane.clock.ManualClock`).
- **Recorded.** With a recorder, each publication is recorded as
  ``published(key, seq_of_position(Position.of(message_id)), str(message_id))``, the order key
  the runtime's handler records its attempts under, so the checker can find lost events.
- **Bounded.** The events may be any iterable (read lazily); at most ``batch`` sends are held.
- **Stoppable.** :meth:`stop` ends the run after the sends in flight; ``run(deadline=...)`` does
  not publish events due after the deadline.

Imports the broker contract, the clock, the checker's recorder, the runtime's codec and the
state's :class:`~keylane.state.Position`; no backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterable, Sized
from dataclasses import dataclass
from datetime import datetime

from keylane.brokers.base import MessageId, Producer
from keylane.check import HistoryRecorder
from keylane.clock import Clock, as_utc
from keylane.errors import InvalidArgumentError
from keylane.journeys import Event
from keylane.runtime.codec import encode_event, seq_of_position
from keylane.state.values import Position

__all__ = ["PublisherStats", "ScheduledPublisher"]


@dataclass(frozen=True, slots=True)
class PublisherStats:
    """Progress of a :class:`ScheduledPublisher`.

    Attributes:
        total: how many events it was given (None for an iterable without a length).
        started: sends started.
        published: sends the broker confirmed.
        in_flight: sends started and not yet confirmed.
        behind_seconds: how late (clock seconds) the latest send started after its event's time.
        max_behind_seconds: the largest such lateness so far.
        next_due: the time of the next event not yet sent, if any.
        done: the run has ended (all sent, stopped, past the deadline, or failed).
    """

    total: int | None
    started: int
    published: int
    in_flight: int
    behind_seconds: float
    max_behind_seconds: float
    next_due: datetime | None
    done: bool


class ScheduledPublisher:
    """Publishes ``events`` on ``producer`` as ``clock`` reaches each one's ``occurred_at``.

    Args:
        producer: where the events go (key = the subscriber key).
        clock: the run's clock (usually a ScaledClock starting at the first event's time).
        events: the events, sorted by ``occurred_at`` (a late one is sent as soon as reached).
        recorder: records each publication for the history checker.
        batch: the most sends in flight at once. The default equals the producers' default
            ``batching_max_messages``, so a full window is flushed at once rather than after
            the batching delay.
        tick: the longest real sleep between clock reads, seconds.

    Raises:
        InvalidArgumentError: ``batch`` < 1, ``tick`` not > 0, or a non-Producer / Clock.
    """

    def __init__(
        self,
        producer: Producer,
        clock: Clock,
        events: Iterable[Event],
        *,
        recorder: HistoryRecorder | None = None,
        batch: int = 1000,
        tick: float = 0.05,
    ) -> None:
        if not isinstance(producer, Producer):
            raise InvalidArgumentError(f"producer: must be a Producer, got {producer!r}")
        if not isinstance(clock, Clock):
            raise InvalidArgumentError(f"clock: must be a Clock, got {clock!r}")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise InvalidArgumentError(f"batch: must be an int >= 1, got {batch!r}")
        if isinstance(tick, bool) or not isinstance(tick, int | float) or not 0 < tick <= 60:
            raise InvalidArgumentError(f"tick: must be seconds in (0, 60], got {tick!r}")
        self._producer = producer
        self._clock = clock
        self._events = events
        self._total = len(events) if isinstance(events, Sized) else None
        self._recorder = recorder
        self._batch = batch
        self._tick = float(tick)
        speed = getattr(clock, "speed", None)
        self._speed = float(speed) if isinstance(speed, int | float) and speed > 0 else None
        self._inflight: set[asyncio.Future[MessageId]] = set()
        self._room = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = False
        self._running = False
        self._done = False
        self._error: BaseException | None = None
        self._started = 0
        self._published = 0
        self._behind = 0.0
        self._max_behind = 0.0
        self._next_due: datetime | None = None

    def stats(self) -> PublisherStats:
        """A snapshot of the progress counters."""
        return PublisherStats(
            total=self._total,
            started=self._started,
            published=self._published,
            in_flight=len(self._inflight),
            behind_seconds=self._behind,
            max_behind_seconds=self._max_behind,
            next_due=self._next_due,
            done=self._done,
        )

    def stop(self) -> None:
        """End the run: no new send starts; :meth:`run` returns once the in-flight ones end."""
        self._stopping = True
        self._wake.set()

    async def run(self, deadline: datetime | None = None) -> PublisherStats:
        """Publish until every event is sent, :meth:`stop` is called, or the deadline.

        Args:
            deadline: a time on the clock; events due after it are not published.

        Returns:
            the final counters.

        Raises:
            InvalidArgumentError: ``deadline`` is naive.
            RuntimeError: the publisher is already running or has run.
            Exception: the first error a ``send`` raised (no new send starts after it; the sends
                in flight still finish).
        """
        if deadline is not None:
            deadline = as_utc(deadline, "deadline")
        if self._running or self._done:
            raise RuntimeError("a ScheduledPublisher runs once")
        self._running = True
        try:
            await self._publish(deadline)
        finally:
            if self._inflight:
                await asyncio.gather(*self._inflight, return_exceptions=True)
            self._running = False
            self._done = True
        if self._error is not None:
            raise self._error
        return self.stats()

    async def _publish(self, deadline: datetime | None) -> None:
        for event in self._events:
            due = event.occurred_at
            self._next_due = due
            if deadline is not None and due > deadline:
                return
            now = self._clock.now()
            while due > now:
                if self._stopping or self._error is not None:
                    return
                await self._sleep((due - now).total_seconds())
                now = self._clock.now()
            while len(self._inflight) >= self._batch:
                self._room.clear()
                await self._room.wait()
            if self._stopping or self._error is not None:
                return
            behind = (now - due).total_seconds()
            self._behind = behind
            self._max_behind = max(self._max_behind, behind)
            await self._start(event)
        self._next_due = None

    async def _sleep(self, clock_seconds: float) -> None:
        real = self._tick if self._speed is None else min(clock_seconds / self._speed, self._tick)
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(real, 0.0)):
                await self._wake.wait()

    async def _start(self, event: Event) -> None:
        self._started += 1
        key = event.key
        try:
            future = await self._producer.enqueue(encode_event(event), key=key)
        except Exception as exc:  # refused before it was queued: the run ends like a failure
            if self._error is None:
                self._error = exc
            return
        self._inflight.add(future)
        future.add_done_callback(functools.partial(self._finished, key))

    def _record(self, key: str, message_id: MessageId) -> None:
        assert self._recorder is not None
        self._recorder.published(key, seq_of_position(Position.of(message_id)), str(message_id))

    def _finished(self, key: str, future: asyncio.Future[MessageId]) -> None:
        self._inflight.discard(future)
        self._room.set()
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            if self._error is None:
                self._error = error
                self._wake.set()
            return
        self._published += 1
        if self._recorder is not None:
            self._record(key, future.result())
