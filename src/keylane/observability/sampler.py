"""The :class:`Sampler`: reads what needs I/O in the background, for scrapes and the dashboard.

Scrapes and dashboard refreshes must not query the store or the broker's admin API each time, so
every ``interval`` real seconds the sampler reads:

- the store's outbox (``outbox_stats``) and armed timers (``armed_timers_count``);
- the broker's view of the subscription (:func:`~.ownership.read_subscription`);
- the worker's counters, turned into a :class:`Point` of the time series (decisions and
  deliveries per second, decision p50/p99 over the interval, keys in flight, ...).

Each sample is a frozen :class:`Sample`; a read that fails leaves that part ``None`` and its error
in ``errors`` (the previous figures are not reused as if current).

Imports the runtime's worker, the state contract and :mod:`.ownership`; no backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from keylane.brokers.base import Broker
from keylane.clock import Clock
from keylane.errors import KeylaneError
from keylane.observability.ownership import SubscriptionView, read_subscription
from keylane.runtime import Worker
from keylane.state import OutboxStats, StateStore

__all__ = ["Point", "Sample", "Sampler", "percentile"]

logger = logging.getLogger("keylane.observability")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True, slots=True)
class Point:
    """One interval of the dashboard's time series.

    Attributes:
        time: the end of the interval (epoch seconds).
        decided_per_second: committed decisions and dedupes per second.
        delivered_per_second: sends the relay recorded as sent, per second.
        decision_p50, decision_p99: decision duration quantiles over the interval (seconds).
        in_flight, buffered: keys in flight and messages buffered at the end.
        outbox_pending: outbox rows waiting (None if the read failed).
    """

    time: float
    decided_per_second: float
    delivered_per_second: float
    decision_p50: float | None
    decision_p99: float | None
    in_flight: int
    buffered: int
    outbox_pending: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "time": self.time,
            "decided_per_second": self.decided_per_second,
            "delivered_per_second": self.delivered_per_second,
            "decision_p50_seconds": self.decision_p50,
            "decision_p99_seconds": self.decision_p99,
            "in_flight": self.in_flight,
            "buffered": self.buffered,
            "outbox_pending": self.outbox_pending,
        }


@dataclass(frozen=True, slots=True)
class Sample:
    """What one round read.

    Attributes:
        time: when it was read (epoch seconds).
        outbox: the outbox counts, or None.
        timers_armed: armed timers in the store, or None.
        subscription: the broker's consumers and ranges, or None.
        own_consumers: this process's consumer names (the metrics label only these).
        errors: what failed, one line each.
    """

    time: float
    outbox: OutboxStats | None
    timers_armed: int | None
    subscription: SubscriptionView | None
    own_consumers: frozenset[str] = frozenset()
    errors: tuple[str, ...] = ()

    def age(self, now: float | None = None) -> float:
        """Seconds since it was read."""
        return max(0.0, (time.time() if now is None else now) - self.time)


@dataclass
class _Totals:
    time: float = field(default_factory=time.time)
    decided: int = 0
    delivered: int = 0


class Sampler:
    """Samples a worker's store and broker every ``interval`` seconds (``start``/``stop``).

    Args:
        worker: the worker (its stats, topic and subscription).
        store: its state store.
        broker: its broker.
        clock: the engine's clock (the outbox ages are measured on it).
        durations: returns the commit durations since its last call (the log's window).
        interval: real seconds between rounds.
        history: points kept for the time series.
    """

    def __init__(
        self,
        worker: Worker,
        store: StateStore,
        broker: Broker,
        clock: Clock,
        *,
        durations: Callable[[], list[float]] | None = None,
        interval: float = 1.0,
        history: int = 300,
    ) -> None:
        self._worker = worker
        self._store = store
        self._broker = broker
        self._clock = clock
        self._durations = durations or list
        self.interval = interval
        self.latest: Sample | None = None
        self._series: deque[Point] = deque(maxlen=history)
        self._totals = _Totals()
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    def series(self) -> list[Point]:
        """The time series, oldest first."""
        return list(self._series)

    async def sample_once(self) -> Sample:
        """Read everything once; the result is also :attr:`latest`."""
        errors: list[str] = []
        outbox: OutboxStats | None = None
        armed: int | None = None
        view: SubscriptionView | None = None
        try:
            outbox = await self._store.outbox_stats(self._clock.now().timestamp())
            armed = await self._store.armed_timers_count()
        except KeylaneError as exc:
            errors.append(f"store: {exc}")
        config = self._worker.config
        try:
            view = await read_subscription(self._broker, config.topic, config.subscription)
        except KeylaneError as exc:
            errors.append(f"broker: {exc}")
        stats = self._worker.stats()
        sample = Sample(
            time=time.time(),
            outbox=outbox,
            timers_armed=armed,
            subscription=view,
            own_consumers=frozenset(stats.lanes.by_consumer),
            errors=tuple(errors),
        )
        decided = stats.decisions.get("ok", 0) + stats.decisions.get("dedupe", 0)
        delivered = 0 if stats.relay is None else stats.relay.outcomes.get("sent", 0)
        before = self._totals
        span = max(sample.time - before.time, 1e-6)
        durations = self._durations()
        self._series.append(
            Point(
                time=sample.time,
                decided_per_second=max(0, decided - before.decided) / span,
                delivered_per_second=max(0, delivered - before.delivered) / span,
                decision_p50=percentile(durations, 0.5),
                decision_p99=percentile(durations, 0.99),
                in_flight=stats.lanes.total.in_flight,
                buffered=stats.lanes.total.buffered,
                outbox_pending=None if outbox is None else outbox.pending,
            )
        )
        self._totals = _Totals(sample.time, decided, delivered)
        self.latest = sample
        self.rounds += 1
        return sample

    async def start(self) -> None:
        """Sample once now, then every ``interval`` in a background task."""
        await self.sample_once()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="sampler")

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sample_once()
            except Exception:
                logger.exception("sampler: a round failed")
