"""What a worker process watches while it runs, and logs as events of note.

:class:`WorkerMonitor` is told about every decision attempt (an observer of the handler) and
polls the worker once a second:

- the state store: a probe (a ``load`` of :data:`PROBE_KEY` within :data:`PROBE_TIMEOUT`) every
  :data:`PROBE_INTERVAL` seconds, and the decisions' own ``unavailable`` outcomes; the first
  failure logs ``store_unavailable``, the first success after it ``store_available``;
- consumers the broker closed (``consumer_lost``), new relay failures (``relay_failures``),
  poison events dead-lettered (``dead_lettered``, at most :data:`MAX_DEAD_LETTER_LINES` lines
  per stats interval), and the periodic ``stats`` line.

:attr:`store_error` feeds the process's readiness. Imports the runtime and the log helpers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

from keylane.runtime import DecisionOutcome, DecisionRecord, Worker, WorkerStats
from keylane.service.logs import log_event
from keylane.state import StateStore

__all__ = [
    "MAX_DEAD_LETTER_LINES",
    "PROBE_INTERVAL",
    "PROBE_KEY",
    "PROBE_TIMEOUT",
    "WorkerMonitor",
    "summary",
]

logger = logging.getLogger("keylane.worker")

#: Seconds between store probes, and how long one may take.
PROBE_INTERVAL = 2.0
PROBE_TIMEOUT = 2.0
#: The key the store probe loads (never committed).
PROBE_KEY = "keylane:health-probe"
#: ``dead_lettered`` lines per stats interval, beyond which they are only counted.
MAX_DEAD_LETTER_LINES = 20
_RELAY_FAILURES = ("retry", "failed_permanent", "unknown")


class WorkerMonitor:
    """Watches one worker and its store; logs what changes.

    Args:
        store: the worker's open store.
        stats_interval: seconds between ``stats`` lines.
    """

    def __init__(self, store: StateStore, stats_interval: float) -> None:
        self._store = store
        self._interval = stats_interval
        self.store_error: str | None = None
        self._lost: set[str] = set()
        self._poison_lines = 0

    def observe(self, record: DecisionRecord) -> None:
        """A decision observer (``JourneyHandler.add_observer``)."""
        outcome = record.outcome
        if outcome is DecisionOutcome.UNAVAILABLE:
            self._store_down(record.detail or "unavailable", "decision")
        elif outcome in (DecisionOutcome.COMMITTED, DecisionOutcome.DEDUPE):
            self._store_up("decision")
        elif outcome is DecisionOutcome.POISON:
            self._poison_lines += 1
            if self._poison_lines <= MAX_DEAD_LETTER_LINES:
                log_event(
                    logger,
                    "dead_lettered",
                    level=logging.WARNING,
                    key=record.key,
                    message_id=record.message_id,
                    consumer=record.consumer,
                    reason=record.detail,
                )

    def _store_down(self, why: str, source: str) -> None:
        if self.store_error is None:
            log_event(logger, "store_unavailable", level=logging.WARNING, source=source, error=why)
        self.store_error = why

    def _store_up(self, source: str) -> None:
        if self.store_error is not None:
            self.store_error = None
            log_event(logger, "store_available", source=source)

    async def _probe_store(self) -> None:
        assert self._store is not None
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self._store.load(PROBE_KEY)
        except TimeoutError:
            self._store_down(f"no answer within {PROBE_TIMEOUT:g} s", "probe")
        except Exception as exc:
            self._store_down(str(exc) or type(exc).__name__, "probe")
        else:
            self._store_up("probe")

    async def run(self, worker: Worker) -> None:
        """Poll ``worker`` once a second until cancelled."""
        interval = self._interval
        next_probe = time.monotonic()
        next_stats = next_probe + interval
        last_stats = worker.stats()
        last_relay = Counter(last_stats.relay.outcomes if last_stats.relay else {})
        last_at = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_probe:
                next_probe = now + PROBE_INTERVAL
                await self._probe_store()
            stats = worker.stats()
            self._watch_consumers(stats)
            relay = Counter(stats.relay.outcomes if stats.relay else {})
            failures = {
                k: relay[k] - last_relay[k] for k in _RELAY_FAILURES if relay[k] > last_relay[k]
            }
            if failures:
                log_event(logger, "relay_failures", level=logging.WARNING, **failures)
            last_relay = relay
            if now >= next_stats and now > last_at:
                next_stats = now + interval
                self._log_stats(stats, last_stats, now - last_at)
                last_stats, last_at = stats, now
                self._poison_lines = 0
            await asyncio.sleep(1.0)

    def _watch_consumers(self, stats: WorkerStats) -> None:
        for name, lanes in stats.lanes.by_consumer.items():
            if lanes.consumer_closed and name not in self._lost:
                self._lost.add(name)
                log_event(logger, "consumer_lost", level=logging.WARNING, consumer=name)

    def _log_stats(self, stats: WorkerStats, last: WorkerStats, seconds: float) -> None:
        total, before = stats.lanes.total, last.lanes.total
        dead = total.dead_lettered - before.dead_lettered
        log_event(
            logger,
            "stats",
            interval_seconds=round(seconds, 3),
            acked_per_second=round((total.acked - before.acked) / seconds, 1),
            buffered=total.buffered,
            in_flight_keys=len(total.in_flight_keys),
            dead_lettered_since=dead,
            **summary(stats),
        )


def summary(stats: WorkerStats) -> dict[str, Any]:
    """The counters a ``stats`` or ``stopped`` line carries."""
    total = stats.lanes.total
    relay = stats.relay
    return {
        "received": total.received,
        "acked": total.acked,
        "dead_lettered": total.dead_lettered,
        "decisions": dict(sorted(stats.decisions.items())),
        "sends_created": dict(sorted(stats.sends_created.items())),
        "relay": {} if relay is None else dict(sorted(relay.outcomes.items())),
    }
