"""Prometheus metrics of a keylane service process (prometheus-client, one registry each).

Two kinds, both low-cardinality (labels are outcomes, channels, stages and this process's
consumer names; never a key or a subscriber):

- **read at scrape time** by :class:`StatsCollector` from the stats the components already keep:
  ``Worker.stats()`` (lanes, decisions, the relay) and the :class:`~.sampler.Sampler`'s latest
  sample (the store's outbox and timer counts and the broker's hash ranges, which need I/O and
  are sampled in the background). Nothing counts inside lanes.
- **fed by hooks** outside lanes: decision and timer-lateness histograms and send outcomes from
  the :class:`~keylane.runtime.JourneyHandler` observer and the relay's ``on_delivered`` hook;
  provider call durations and broker redeliveries from the provider and handler wrappers
  (:mod:`.instrument`); ingest outcomes from the API.

:data:`METRICS` lists every name with its type, labels and meaning (docs/service.md renders it).

Imports the runtime's records and stats and the journeys model; prometheus-client (``web``
extra); no backend.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from keylane.journeys import JourneySet, ReasonCode
from keylane.journeys.decision import SYSTEM_JOURNEY
from keylane.observability.sampler import Sample
from keylane.providers import Outcome
from keylane.providers.base import CHANNELS
from keylane.runtime import DecisionOutcome, DecisionRecord, WorkerStats
from keylane.state import ClaimedSend

__all__ = [
    "METRICS",
    "MetricSpec",
    "ServiceMetrics",
    "StatsCollector",
    "dispatch_outcome",
]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: its exposed name, type, labels and meaning."""

    name: str
    kind: str
    labels: tuple[str, ...]
    help: str


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "keylane_events_ingested_total",
        "counter",
        ("outcome",),
        "events received by POST /v1/events: accepted (published), invalid, unavailable",
    ),
    MetricSpec(
        "keylane_events_processed_total",
        "counter",
        ("outcome",),
        "handler attempts by outcome: ok, dedupe, fenced, poison, unavailable",
    ),
    MetricSpec(
        "keylane_decision_duration_seconds",
        "histogram",
        ("outcome",),
        "one load-decide-commit attempt, real seconds",
    ),
    MetricSpec("keylane_keys_in_flight", "gauge", (), "keys whose handler runs now"),
    MetricSpec("keylane_messages_buffered", "gauge", (), "messages received, not yet finished"),
    MetricSpec("keylane_keys_stalled", "gauge", (), "keys in flight longer than the threshold"),
    MetricSpec("keylane_keys_parked", "gauge", (), "keys parked after exhausted attempts"),
    MetricSpec(
        "keylane_dead_lettered_total", "counter", (), "messages published to the dead-letter topic"
    ),
    MetricSpec(
        "keylane_hash_ranges_owned",
        "gauge",
        ("consumer",),
        "Key_Shared hash ranges owned by each consumer of this process (from the broker)",
    ),
    MetricSpec(
        "keylane_hash_slots_owned",
        "gauge",
        ("consumer",),
        "hash slots those ranges cover",
    ),
    MetricSpec(
        "keylane_draining_hashes",
        "gauge",
        ("consumer",),
        "hashes that moved away from the consumer while it still holds their messages",
    ),
    MetricSpec(
        "keylane_redeliveries_total",
        "counter",
        ("source",),
        "broker: messages delivered again by the broker; lanes: retries lanes scheduled",
    ),
    MetricSpec(
        "keylane_fence_rejections_total",
        "counter",
        ("stage",),
        "commit: a decision fenced by a concurrent commit; dispatch: a relay outcome fenced",
    ),
    MetricSpec(
        "keylane_sends_total",
        "counter",
        ("channel", "stage", "outcome"),
        "sends by channel; stage decision (planned, deferred, capped, suppressed, stale, ...) "
        "or dispatch (sent, deferred, capped, suppressed, stale, unknown, failed, retry, ...)",
    ),
    MetricSpec("keylane_timers_armed", "gauge", (), "armed timers in the store"),
    MetricSpec(
        "keylane_timer_lateness_seconds",
        "histogram",
        (),
        "how late timers fired after their due time (engine-clock seconds)",
    ),
    MetricSpec(
        "keylane_outbox_pending", "gauge", (), "outbox rows waiting for dispatch (PENDING, RETRY)"
    ),
    MetricSpec(
        "keylane_outbox_oldest_pending_age_seconds",
        "gauge",
        (),
        "how long the oldest due, undispatched row has been due (engine-clock seconds)",
    ),
    MetricSpec("keylane_outbox_rows", "gauge", ("status",), "outbox rows by status"),
    MetricSpec(
        "keylane_provider_request_duration_seconds",
        "histogram",
        ("channel", "outcome"),
        "provider calls, real seconds, by channel and receipt outcome",
    ),
    MetricSpec(
        "keylane_sample_age_seconds",
        "gauge",
        (),
        "age of the sampled store/broker figures (they are read in the background)",
    ),
)

_BY_NAME = {m.name: m for m in METRICS}

_DECISION_OUTCOMES = {
    ReasonCode.SENT: "planned",
    ReasonCode.DEFERRED_QUIET_HOURS: "deferred",
    ReasonCode.SKIPPED_FREQUENCY_CAP: "capped",
    ReasonCode.SKIPPED_SUPPRESSED: "suppressed",
    ReasonCode.SKIPPED_STALE: "stale",
    ReasonCode.SKIPPED_NO_CONSENT: "no_consent",
    ReasonCode.SKIPPED_NO_ADDRESS: "no_address",
    ReasonCode.SKIPPED_QUIET_HOURS: "quiet_hours",
    ReasonCode.SKIPPED_CANCELLED: "cancelled",
    ReasonCode.CANCELLED_PENDING_FULL: "cancelled",
    ReasonCode.TEMPLATE_ERROR: "template_error",
}
_DISPATCH_SKIPS = {
    "frequency_cap": "capped",
    "suppressed": "suppressed",
    "stale": "stale",
    "no_consent": "no_consent",
    "no_address": "no_address",
    "quiet_hours": "quiet_hours",
    "cancelled": "cancelled",
}


#: The main ``outcome`` values of dispatch-stage sends (exposed at 0 from the start).
DISPATCH_OUTCOMES = ("sent", "deferred", "capped", "suppressed", "stale", "unknown", "failed")


def dispatch_outcome(word: str) -> str:
    """The ``outcome`` label of a relay outcome word (``skipped_stale`` -> ``stale``, ...)."""
    if word == "failed_permanent":
        return "failed"
    if word in ("sent", "unknown", "retry"):
        return word
    if word.startswith("deferred"):
        return "deferred"
    if word.startswith("skipped_"):
        return _DISPATCH_SKIPS.get(word.removeprefix("skipped_"), "skipped")
    return "other"


def _spec(name: str) -> tuple[str, str]:
    spec = _BY_NAME[name]
    return spec.name.removesuffix("_total"), spec.help


class ServiceMetrics:
    """The registry of one process and the metrics that hooks feed.

    Args:
        journeys: the journeys (the channel of a decision's skipped send comes from its step).
    """

    def __init__(self, journeys: JourneySet | None = None) -> None:
        self.registry = CollectorRegistry()
        self._journeys = journeys
        r = self.registry
        self.decision_duration = Histogram(
            *_spec("keylane_decision_duration_seconds"),
            ["outcome"],
            registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.timer_lateness = Histogram(
            *_spec("keylane_timer_lateness_seconds"),
            registry=r,
            buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
        )
        self.provider_duration = Histogram(
            *_spec("keylane_provider_request_duration_seconds"),
            ["channel", "outcome"],
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.ingested = Counter(*_spec("keylane_events_ingested_total"), ["outcome"], registry=r)
        self.sends = Counter(
            *_spec("keylane_sends_total"), ["channel", "stage", "outcome"], registry=r
        )
        self.broker_redeliveries = 0
        """Messages the broker delivered again (counted by the handler wrapper)."""
        self.send_counts: Tally[tuple[str, str, str]] = Tally()
        """``keylane_sends_total`` as ``(channel, stage, outcome) -> n``, for the dashboard."""
        self.ingest_counts: Tally[str] = Tally()
        """``keylane_events_ingested_total`` by outcome, for the dashboard."""
        # Present at 0 from the first scrape (a labelled series appears once it is touched).
        for outcome in ("accepted", "invalid", "unavailable"):
            self.ingested.labels(outcome)
        for decided in DecisionOutcome:
            self.decision_duration.labels(decided.value)
        for channel in CHANNELS:
            for receipt in Outcome:
                self.provider_duration.labels(channel, receipt.value)
            for outcome in ("planned", "deferred", "capped", "suppressed", "stale"):
                self.sends.labels(channel, "decision", outcome)
            for outcome in DISPATCH_OUTCOMES:
                self.sends.labels(channel, "dispatch", outcome)

    def collect_stats(
        self, worker: Callable[[], WorkerStats | None], sample: Callable[[], Sample | None]
    ) -> None:
        """Read ``worker()`` and ``sample()`` at every scrape (:class:`StatsCollector`)."""
        self.registry.register(StatsCollector(worker, sample, lambda: self.broker_redeliveries))

    # -- hooks -----------------------------------------------------------------------------

    def count_ingested(self, outcome: str, n: int = 1) -> None:
        """The API's ingest outcomes: ``accepted``, ``invalid`` or ``unavailable``."""
        if n > 0:
            self.ingested.labels(outcome).inc(n)
            self.ingest_counts[outcome] += n

    def _count_send(self, channel: str, stage: str, outcome: str) -> None:
        self.sends.labels(channel, stage, outcome).inc()
        self.send_counts[channel, stage, outcome] += 1

    def observe(self, record: DecisionRecord) -> None:
        """A decision observer: duration, timer lateness and decision-stage send outcomes."""
        self.decision_duration.labels(record.outcome.value).observe(
            max(0.0, record.end - record.start)
        )
        decision = record.decision
        if record.outcome is not DecisionOutcome.COMMITTED or decision is None:
            return
        for reason in decision.reasons:
            outcome = _DECISION_OUTCOMES.get(reason.code)
            if outcome is not None:
                channel = self._channel_of(reason.journey, reason.step)
                self._count_send(channel, "decision", outcome)
            elif reason.code is ReasonCode.TIMER_FIRED:
                self.timer_lateness.observe(_lateness(record.now, record.occurred_at))

    def delivered(self, claim: ClaimedSend, sent_at: datetime | None, word: str) -> None:
        """A relay ``on_delivered`` hook: dispatch-stage send outcomes."""
        self._count_send(claim.channel, "dispatch", dispatch_outcome(word))

    def _channel_of(self, journey: str | None, step: str | None) -> str:
        if journey == SYSTEM_JOURNEY:
            return "sms"
        found = None
        if self._journeys is not None and journey is not None and step is not None:
            spec = self._journeys.journeys.get(journey)
            found = None if spec is None else spec.steps.get(step)
        channel = getattr(found, "channel", None)
        return str(getattr(channel, "value", "unknown"))


def _lateness(now: datetime | None, due: datetime | None) -> float:
    # A timer_fired event's occurred_at is the timer's due time (runtime.timers).
    if now is None or due is None:
        return 0.0
    return max(0.0, (now - due).total_seconds())


class StatsCollector(Collector):
    """Metrics read at scrape time from the worker's stats and the sampler's latest sample."""

    def __init__(
        self,
        worker: Callable[[], WorkerStats | None],
        sample: Callable[[], Sample | None],
        broker_redeliveries: Callable[[], int],
    ) -> None:
        self._worker = worker
        self._sample = sample
        self._redeliveries = broker_redeliveries

    def describe(self) -> Iterator[Metric]:
        return iter(())  # read lazily: the families depend on what is attached

    def collect(self) -> Iterator[Metric]:
        stats = self._worker()
        if stats is not None:
            yield from self._worker_metrics(stats)
        sample = self._sample()
        if sample is not None:
            yield from self._sample_metrics(sample)

    def _worker_metrics(self, stats: WorkerStats) -> Iterator[Metric]:
        lanes = stats.lanes.total
        processed = _counter("keylane_events_processed_total", ["outcome"])
        for outcome in DecisionOutcome:
            processed.add_metric([outcome.value], stats.decisions.get(outcome.value, 0))
        yield processed
        for name, value in (
            ("keylane_keys_in_flight", lanes.in_flight),
            ("keylane_messages_buffered", lanes.buffered),
            ("keylane_keys_stalled", len(lanes.stalled_keys)),
            ("keylane_keys_parked", len(lanes.parked_keys)),
        ):
            gauge = _gauge(name)
            gauge.add_metric([], value)
            yield gauge
        dead = _counter("keylane_dead_lettered_total", [])
        dead.add_metric([], lanes.dead_lettered)
        yield dead
        redeliveries = _counter("keylane_redeliveries_total", ["source"])
        redeliveries.add_metric(["broker"], self._redeliveries())
        redeliveries.add_metric(["lanes"], lanes.retried)
        yield redeliveries
        fenced = _counter("keylane_fence_rejections_total", ["stage"])
        fenced.add_metric(["commit"], stats.decisions.get(DecisionOutcome.FENCED.value, 0))
        fenced.add_metric(["dispatch"], 0 if stats.relay is None else stats.relay.fenced)
        yield fenced

    def _sample_metrics(self, sample: Sample) -> Iterator[Metric]:
        age = _gauge("keylane_sample_age_seconds")
        age.add_metric([], sample.age())
        yield age
        if sample.timers_armed is not None:
            timers = _gauge("keylane_timers_armed")
            timers.add_metric([], sample.timers_armed)
            yield timers
        outbox = sample.outbox
        if outbox is not None:
            pending = _gauge("keylane_outbox_pending")
            pending.add_metric([], outbox.pending)
            yield pending
            oldest = _gauge("keylane_outbox_oldest_pending_age_seconds")
            oldest.add_metric([], outbox.oldest_pending_age)
            yield oldest
            rows = _gauge("keylane_outbox_rows", ["status"])
            for status, count in sorted(outbox.by_status.items(), key=lambda kv: kv[0].value):
                rows.add_metric([status.value.lower()], count)
            yield rows
        view = sample.subscription
        if view is not None:
            ranges = _gauge("keylane_hash_ranges_owned", ["consumer"])
            slots = _gauge("keylane_hash_slots_owned", ["consumer"])
            draining = _gauge("keylane_draining_hashes", ["consumer"])
            for consumer in view.consumers:
                if consumer.name not in sample.own_consumers:
                    continue
                ranges.add_metric([consumer.name], len(consumer.ranges))
                slots.add_metric([consumer.name], consumer.slots)
                draining.add_metric([consumer.name], len(consumer.draining))
            yield from (ranges, slots, draining)


def _counter(name: str, labels: list[str]) -> CounterMetricFamily:
    spec = _BY_NAME[name]
    return CounterMetricFamily(spec.name.removesuffix("_total"), spec.help, labels=labels)


def _gauge(name: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    spec = _BY_NAME[name]
    return GaugeMetricFamily(spec.name, spec.help, labels=labels or [])
