"""``keylane run``: a simulated shopping day through the whole system, then the verdicts.

1. The events: the built-in Black Friday day (:func:`keylane.workload.generate`) or a JSON
   Lines file (``--events``).
2. A :class:`~keylane.clock.ScaledClock` starting at the first event's time (``speed``
   simulated seconds per real second: 1440 plays a day in a minute).
3. A :class:`~keylane.service.pipeline.Pipeline` (memory broker, SQLite, the embedded gateway by
   default), and the :class:`~keylane.workload.ScheduledPublisher` publishing each event when
   the clock reaches it.
4. After the last event, the clock runs ``tail`` more simulated time (so the last carts' timers
   fire), then the outbox drains, and everything stops.
5. The report: counts, and the three verdicts (gateway duplicates, the compliance audit of the
   gateway's log, the history checker).

Imports the service's pipeline, the workload, the audit and the checker; no CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from keylane.audit import ComplianceReport, ConsentChange, audit
from keylane.check import Report, check
from keylane.clock import ScaledClock
from keylane.errors import InvalidArgumentError
from keylane.journeys import Event, JourneySet, ReasonCode, load_default_journeys, load_journeys
from keylane.runtime import DecisionOutcome, DecisionRecord, Worker, WorkerStats
from keylane.service.pipeline import Pipeline, PipelineConfig
from keylane.service.report import RunReport, percentile
from keylane.service.serve import Service
from keylane.web.api import ApiConfig
from keylane.web.gateway import DeliveryRecord
from keylane.workload import (
    BlackFridaySpec,
    ScheduledPublisher,
    generate,
    load_events_file,
    subscriber_phones,
)

__all__ = ["RunConfig", "RunProgress", "run_day"]

logger = logging.getLogger("keylane.service")

_CONSENT = {ReasonCode.OPTED_OUT: False, ReasonCode.OPTED_IN: True}


@dataclass(frozen=True, slots=True)
class RunConfig:
    """What ``keylane run`` runs.

    Args:
        pipeline: where (broker, store, gateway, data directory).
        events_path: replay this JSON Lines file instead of the built-in day.
        workload: the built-in day's shape.
        journeys_path: a journeys file; the packaged default when None.
        speed: simulated seconds per real second (> 0).
        tail: simulated time the run goes on after the last event.
        drain_timeout: real seconds to wait for the outbox at the end.
        api: serve the HTTP API, the dashboard's data and ``/metrics`` while the day runs
            (:class:`~keylane.service.serve.Service`); None serves nothing.
    """

    pipeline: PipelineConfig
    events_path: Path | None = None
    workload: BlackFridaySpec = field(default_factory=BlackFridaySpec)
    journeys_path: Path | None = None
    speed: float = 1440.0
    tail: timedelta = timedelta(minutes=35)
    drain_timeout: float = 30.0
    api: ApiConfig | None = None


@dataclass(frozen=True, slots=True)
class RunProgress:
    """A progress snapshot (about four per second), for the CLI's display."""

    simulated: str
    fraction: float
    published: int
    total: int
    decided: int
    delivered: int
    phase: str


def _load(config: RunConfig) -> tuple[list[Event], JourneySet]:
    journeys = (
        load_default_journeys()
        if config.journeys_path is None
        else load_journeys(config.journeys_path)
    )
    if config.events_path is not None:
        events = load_events_file(config.events_path)
    else:
        events = generate(config.workload)
    if not events:
        raise InvalidArgumentError("there are no events to run")
    return events, journeys


async def run_day(
    config: RunConfig,
    progress: Callable[[RunProgress], None] | None = None,
    on_serving: Callable[[str, str], None] | None = None,
) -> RunReport:
    """Run the simulated day and return the report.

    With ``config.api`` the service runs alongside; ``on_serving(url, token)`` is told where.

    Raises:
        InvalidArgumentError: a bad journeys or events file (with the file and line), no events.
        KeylaneError: a backend failed (the broker, the store, the gateway).
    """
    if not (isinstance(config.speed, int | float) and 0 < config.speed < 1e7):
        raise InvalidArgumentError(f"speed must be a number > 0, got {config.speed!r}")
    events, journeys = await asyncio.to_thread(_load, config)
    first, last = events[0].occurred_at, events[-1].occurred_at
    clock = ScaledClock(first, config.speed)
    consent: list[ConsentChange] = []
    decided = Counter[str]()

    def observe(record: DecisionRecord) -> None:
        decided[record.outcome.value] += 1
        if record.outcome is DecisionOutcome.COMMITTED and record.decision is not None:
            for reason in record.decision.reasons:
                opted_in = _CONSENT.get(reason.code)
                if opted_in is not None and record.committed_at is not None:
                    consent.append(ConsentChange(record.key, record.committed_at, opted_in))

    started = time.monotonic()
    service = None if config.api is None else Service(config.api, journeys)
    wrappers = {} if service is None else service.wrappers()
    pipeline = Pipeline(config.pipeline, journeys, clock, **wrappers)
    async with pipeline:
        if service is not None:
            url = await service.start(pipeline)
            if on_serving is not None:
                on_serving(url, service.token)
        worker, producer = pipeline.worker, pipeline.producer
        assert worker is not None
        assert producer is not None
        worker.handler.add_observer(observe)
        publisher = ScheduledPublisher(producer, clock, events, recorder=pipeline.recorder)
        end = last + config.tail
        ticker = asyncio.create_task(
            _tick(progress, clock, first, end, publisher, decided, pipeline, len(events))
        )
        try:
            stats = await publisher.run()
            await _until_decided(worker, len(events), timeout=max(60.0, len(events) / 500))
            remaining = (end - clock.now()).total_seconds() / config.speed
            if remaining > 0:
                await asyncio.sleep(remaining)
            if worker.relay is not None:
                with contextlib.suppress(TimeoutError):
                    await worker.relay.drain(config.drain_timeout)
        finally:
            ticker.cancel()
            if service is not None:
                await service.stop()
        wall = time.monotonic() - started
        simulated = (clock.now() - first).total_seconds() / 3600
        worker_stats = worker.stats()
        assert pipeline.store is not None
        armed = await pipeline.store.armed_timers_count()
        gateway = pipeline.gateway
        deliveries = [] if gateway is None else gateway.ledger.deliveries()
        duplicates = 0 if gateway is None else gateway.ledger.stats().duplicate_deliveries
    compliance = audit(
        deliveries, journeys, consent, phones=subscriber_phones(events), max_examples=10
    )
    history = None if pipeline.recorder is None else pipeline.recorder.history()
    report = None if history is None else check(history)
    return _report(
        config,
        pipeline,
        worker_stats,
        deliveries,
        duplicates,
        compliance,
        report,
        wall=wall,
        simulated=simulated,
        events=len(events),
        late=stats.max_behind_seconds,
        armed=armed,
    )


async def _until_decided(worker: Worker, events: int, timeout: float) -> None:
    """Wait until every published event was decided (or dead-lettered)."""
    async with asyncio.timeout(timeout):
        while True:
            stats = worker.stats()
            done = stats.lanes.total.acked + stats.lanes.total.dead_lettered
            if done >= events and stats.lanes.total.buffered == 0:
                return
            await asyncio.sleep(0.05)


async def _tick(
    progress: Callable[[RunProgress], None] | None,
    clock: ScaledClock,
    first: datetime,
    end: datetime,
    publisher: ScheduledPublisher,
    decided: Counter[str],
    pipeline: Pipeline,
    total: int,
) -> None:
    span = (end - first).total_seconds() or 1.0
    while progress is not None:
        now = clock.now()
        gateway = pipeline.gateway
        delivered = 0 if gateway is None else len(gateway.ledger)
        published = publisher.stats().published
        progress(
            RunProgress(
                simulated=now.strftime("%a %H:%M UTC"),
                fraction=min(1.0, (now - first).total_seconds() / span),
                published=published,
                total=total,
                decided=decided["ok"] + decided["dedupe"],
                delivered=delivered,
                phase="publishing" if published < total else "finishing the day",
            )
        )
        await asyncio.sleep(0.25)


def _report(
    config: RunConfig,
    pipeline: Pipeline,
    worker_stats: WorkerStats,
    deliveries: Sequence[DeliveryRecord],
    duplicates: int,
    compliance: ComplianceReport,
    checker: Report | None,
    *,
    wall: float,
    simulated: float,
    events: int,
    late: float,
    armed: int,
) -> RunReport:
    by_channel: Counter[str] = Counter()
    by_journey: Counter[str] = Counter()
    for record in deliveries:
        by_channel[record.delivery.channel] += 1
        by_journey[record.delivery.journey] += 1
    reasons = dict(sorted(worker_stats.reasons.items()))
    skips = {
        code: n
        for code, n in reasons.items()
        if code.startswith(("skipped_", "deferred_")) or code == ReasonCode.TEMPLATE_ERROR.value
    }
    relay = {} if worker_stats.relay is None else dict(sorted(worker_stats.relay.outcomes.items()))
    for word, n in relay.items():
        if word.startswith(("skipped_", "deferred_")):
            skips[f"relay: {word}"] = n
    lateness = list(worker_stats.timer_lateness)
    group = worker_stats.group_commit
    decided = sum(worker_stats.decisions.get(k, 0) for k in ("ok", "dedupe"))
    return RunReport(
        wall_seconds=wall,
        simulated_hours=simulated,
        events=events,
        published_late_max=late,
        decisions=dict(sorted(worker_stats.decisions.items())),
        events_by_type=dict(sorted(worker_stats.events.items())),
        sends_created=dict(sorted(worker_stats.sends_created.items())),
        deliveries={"by_channel": dict(by_channel), "by_journey": dict(sorted(by_journey.items()))},
        skips=skips,
        reasons=reasons,
        relay=relay,
        timers_fired=worker_stats.timers_fired,
        timer_lateness_p50=percentile(lateness, 0.5),
        timer_lateness_p99=percentile(lateness, 0.99),
        timer_lateness_max=max(lateness, default=float("nan")),
        timers_armed_at_end=armed,
        dead_lettered=worker_stats.lanes.total.dead_lettered,
        duplicate_deliveries=duplicates,
        compliance=compliance,
        checker=checker,
        events_per_second=decided / wall if wall > 0 else 0.0,
        data_dir=str(config.pipeline.data_dir),
        gateway_url=pipeline.gateway_url,
        store_url=pipeline.store_url,
        group_commit_mean_batch=0.0 if group is None else group.mean_batch,
    )
