"""Timers: an armed timer is state; wake-ups only hint that it may be due.

The subscriber's state and the store's timer index (both written by the decision's commit) are
the truth. Two things publish a ``timer_fired`` event on the subscriber's key, so that it is
decided by the key's owner like any other event:

- a **wake-up hint**: right after a commit arms a timer, a delayed message due at the timer's
  time (broker delayed delivery; Key_Shared delivers it to the key's owner);
- the **sweeper**: every ``sweep_interval`` it asks the store for armed timers overdue by more
  than ``grace`` and publishes their event again (a lost, early or never published hint).

Each publication has its own event id (``timer:<timer_id>:<due ms>:<h|s><n>``), so an early
hint (decided as ``timer_not_due``) never makes the sweeper's later event a dedupe no-op. Firing
twice cannot happen: firing is the engine's "still armed, due, and the run still at that step"
check, in one compare-and-set, so a second arrival is ``timer_not_armed``. Hints are published a
little after the due time (:data:`HINT_SLACK`), because arriving early costs a sweep.

Imports the broker, state and journeys contracts; no backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime

from keylane.brokers.base import Producer
from keylane.clock import Clock
from keylane.journeys import Event, EventType, TimerSpec
from keylane.runtime.codec import encode_event
from keylane.state import StateStore, StoreUnavailableError, Timer

__all__ = ["TimerService", "timer_event"]

logger = logging.getLogger("keylane.runtime.timers")

#: How many recently swept timers are remembered, so one sweep does not re-publish them.
_SWEPT_MEMORY = 100_000
#: Real seconds a wake-up hint is delivered after its timer's due time.
HINT_SLACK = 0.02
#: The shortest delay of a repeated hint (after one came early), real seconds: Pulsar's default
#: delayed-delivery tick. A broker that delivers up to one tick early
#: (``isDelayedDeliveryDeliverAtTimeStrict=false``, the default) would otherwise bounce a hint
#: back at once, again and again, during the timer's last tick.
REHINT_MIN_DELAY = 1.0


def timer_event(
    brand_id: str, subscriber_id: str, timer_id: str, due_at: datetime, tag: str
) -> Event:
    """The ``timer_fired`` event of one timer; ``tag`` tells publications apart."""
    due_ms = int(due_at.timestamp() * 1000)
    suffix = f":{due_ms}:{tag}"
    return Event(
        event_id=f"timer:{timer_id}"[: 128 - len(suffix)] + suffix,
        brand_id=brand_id,
        subscriber_id=subscriber_id,
        type=EventType.TIMER_FIRED,
        occurred_at=due_at.astimezone(UTC),
        properties={"timer_id": timer_id},
    )


class TimerService:
    """Publishes wake-up hints for armed timers and sweeps overdue ones.

    Args:
        store: the state store (its timer index).
        producer: a producer on the events topic (no batching needed: hints are delayed).
        clock: the engine's clock.
        sweep_interval: real seconds between sweeps.
        grace: engine seconds a timer may be overdue before the sweeper publishes it again.
        resweep_after: real seconds before the sweeper publishes the same overdue timer once
            more (its previous event may still be queued behind a backlog: publishing it on
            every sweep would only add to that backlog).
        sweep_limit: timers per sweep.
    """

    def __init__(
        self,
        store: StateStore,
        producer: Producer,
        clock: Clock,
        *,
        sweep_interval: float = 1.0,
        grace: float = 5.0,
        resweep_after: float = 30.0,
        sweep_limit: int = 1000,
    ) -> None:
        self._store = store
        self._producer = producer
        self._clock = clock
        self._speed = float(getattr(clock, "speed", 1.0))
        self._interval = sweep_interval
        self._grace = grace
        self._resweep = resweep_after * self._speed  # in engine seconds
        self._limit = sweep_limit
        self._swept: OrderedDict[tuple[str, str, float], float] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._sequence = 0
        self.hints = 0
        """Wake-up hints published."""
        self.swept = 0
        """Overdue timers the sweeper published again."""

    async def start(self) -> None:
        """Start the sweeper."""
        self._task = asyncio.get_running_loop().create_task(self._sweep_loop(), name="sweeper")

    async def stop(self) -> None:
        """Stop the sweeper and wait for hints being published."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pending:
            await asyncio.wait(self._pending, timeout=5.0)

    def hint(
        self, brand_id: str, subscriber_id: str, timers: Iterable[TimerSpec], *, again: bool = False
    ) -> None:
        """Publish a delayed wake-up for each of ``timers`` (in the background).

        ``again``: the previous hint came early; wait at least :data:`REHINT_MIN_DELAY`.
        """
        floor = REHINT_MIN_DELAY if again else 0.0
        for spec in timers:
            task = asyncio.get_running_loop().create_task(
                self._publish(
                    brand_id, subscriber_id, spec.timer_id, spec.due_at, delayed=True, floor=floor
                )
            )
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _publish(
        self,
        brand_id: str,
        subscriber_id: str,
        timer_id: str,
        due_at: datetime,
        *,
        delayed: bool,
        floor: float = 0.0,
    ) -> None:
        self._sequence += 1
        tag = f"h{self._sequence}" if delayed else f"s{self._sequence}"
        event = timer_event(brand_id, subscriber_id, timer_id, due_at, tag)
        delay = 0.0
        if delayed:
            # Broker delays run on real time; the engine's clock may be scaled.
            ahead = (due_at - self._clock.now()).total_seconds() / self._speed
            delay = max(floor, ahead + HINT_SLACK)
        logger.debug("timer %s: publishing %s (delay %.3f s)", timer_id, event.event_id, delay)
        try:
            await self._producer.send(
                encode_event(event),
                key=event.key,
                deliver_after=delay if delay > 0 else None,
            )
        except Exception as exc:  # the sweeper covers a lost hint
            logger.warning("timer %s: wake-up not published (%s); the sweeper will", timer_id, exc)
            return
        if delayed:
            self.hints += 1
        else:
            self.swept += 1

    async def sweep_once(self) -> int:
        """Publish every timer overdue by more than ``grace``; returns how many."""
        now = self._clock.now().timestamp()
        due = await self._store.due_timers(now=now - self._grace, limit=self._limit)
        published = 0
        for timer in due:
            if self._recently_swept(timer, now):
                continue
            brand_id, _, subscriber_id = timer.key.partition(":")
            due_at = datetime.fromtimestamp(timer.due_at, UTC)
            await self._publish(brand_id, subscriber_id, timer.timer_id, due_at, delayed=False)
            published += 1
        return published

    def _recently_swept(self, timer: Timer, now: float) -> bool:
        """Publish an overdue timer again only once per ``resweep_after`` (real seconds)."""
        token = (timer.key, timer.timer_id, timer.due_at)
        last = self._swept.get(token)
        if last is not None and now - last < self._resweep:
            return True
        self._swept[token] = now
        self._swept.move_to_end(token)
        while len(self._swept) > _SWEPT_MEMORY:
            self._swept.popitem(last=False)
        return False

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep_once()
            except StoreUnavailableError as exc:
                logger.warning("sweeper: store unavailable (%s)", exc)
            except Exception:
                logger.exception("sweeper: sweep failed")
