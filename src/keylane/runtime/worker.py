"""The :class:`Worker`: a LaneGroup with the JourneyHandler, the OutboxRelay and the timers.

One worker consumes the events topic with ``consumers`` Key_Shared consumers (each through its
own lanes), decides and commits every event, dispatches the outbox and fires timers. Several
workers (processes, hosts) share the subscription and the store. ``stop()`` drains: it stops
receiving, lets decisions in flight finish within the grace, leaves the rest unacked for
redelivery, then stops the relay and the sweeper.

Imports contracts only (brokers, state, providers, journeys, lanes); no backend.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from keylane.brokers.base import Broker, Producer
from keylane.check import HistoryRecorder
from keylane.clock import Clock
from keylane.journeys import EventType, JourneySet, ReasonCode, armed_timers
from keylane.lanes import ExhaustedPolicy, GroupStats, Handler, LaneConfig, LaneGroup
from keylane.providers import Provider
from keylane.resource import Startable
from keylane.runtime.handler import (
    DecisionObserver,
    DecisionOutcome,
    DecisionRecord,
    JourneyHandler,
)
from keylane.runtime.history import decision_history
from keylane.runtime.relay import OutboxRelay, RelayConfig, RelayStats
from keylane.runtime.timers import TimerService
from keylane.state import GroupCommitStats, GroupCommitter, StateStore

__all__ = ["DEFAULT_SUBSCRIPTION", "DEFAULT_TOPIC", "Worker", "WorkerConfig", "WorkerStats"]

logger = logging.getLogger("keylane.runtime")

DEFAULT_TOPIC = "persistent://public/default/keylane-events"
DEFAULT_SUBSCRIPTION = "keylane-decisions"
#: A decision's share of lanes' ``handler_timeout`` before a store that does not answer counts
#: as unavailable (retried later) rather than as a failed attempt (retried, then dead-lettered).
ATTEMPT_SHARE = 0.8


def _lane_config() -> LaneConfig:
    return LaneConfig(
        max_in_flight=256,
        handler_timeout=30.0,
        max_attempts=3,
        on_exhausted=ExhaustedPolicy.DEAD_LETTER,
        max_buffered_total=4096,
        shutdown_grace=10.0,
    )


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What a :class:`Worker` consumes and how.

    Args:
        topic: the events topic.
        subscription: the Key_Shared subscription shared by every worker.
        name: this worker's name; its consumers are ``<name>-<n>`` (unique per process).
        consumers: consumers in this process.
        receiver_queue_size: prefetch per consumer.
        lanes: the lanes configuration of each consumer.
        relay: the relay's knobs; ``None`` runs no relay in this worker.
        group_commit: batch concurrent commits into one transaction.
        group_commit_delay: seconds an idle group commit waits for more commits (0: at once).
        timers: run the wake-up hints and the overdue sweeper.
        sweep_interval: real seconds between sweeps.
        sweep_grace: engine seconds a timer may be overdue before the sweeper re-publishes it.
    """

    topic: str = DEFAULT_TOPIC
    subscription: str = DEFAULT_SUBSCRIPTION
    name: str = "worker"
    consumers: int = 2
    receiver_queue_size: int = 200
    lanes: LaneConfig = field(default_factory=_lane_config)
    relay: RelayConfig | None = field(default_factory=RelayConfig)
    group_commit: bool = True
    group_commit_delay: float = 0.0
    timers: bool = True
    sweep_interval: float = 1.0
    sweep_grace: float = 5.0


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """A snapshot of a worker.

    Attributes:
        lanes: the lane group's merged and per-consumer stats.
        decisions: attempts by outcome (``ok``, ``dedupe``, ``fenced``, ``poison``, ...).
        events: committed decisions by event type.
        reasons: reason codes of committed decisions.
        sends_created: send intents committed, by channel.
        relay: the relay's counters (None without a relay).
        group_commit: the committer's counters (None without group commit).
        timers_fired: timers that fired; ``timer_lateness`` their lateness in engine seconds.
        wakeups, swept: wake-up hints published; overdue timers re-published by the sweeper.
    """

    lanes: GroupStats
    decisions: dict[str, int]
    events: dict[str, int]
    reasons: dict[str, int]
    sends_created: dict[str, int]
    relay: RelayStats | None
    group_commit: GroupCommitStats | None
    timers_fired: int
    timer_lateness: tuple[float, ...]
    wakeups: int
    swept: int


class Worker(Startable):
    """Decide, commit, dispatch and fire timers for the events on ``config.topic``.

    Args:
        broker: the broker (memory or Pulsar).
        store: an open state store.
        provider: where the relay sends.
        journeys: the journeys.
        clock: the engine's clock.
        config: what to consume and how.
        history: records every decision attempt for ``keylane check`` (optional).
        wrap_handler: called once with the :class:`JourneyHandler` and this worker's config;
            lanes run the handler it returns (a tracing wrapper, say). ``self.handler`` stays
            the JourneyHandler.
    """

    def __init__(
        self,
        broker: Broker,
        store: StateStore,
        provider: Provider,
        journeys: JourneySet,
        clock: Clock,
        config: WorkerConfig | None = None,
        *,
        history: HistoryRecorder | None = None,
        wrap_handler: Callable[[Handler, WorkerConfig], Handler] | None = None,
    ) -> None:
        self.config = config if config is not None else WorkerConfig()
        self._broker = broker
        self._store = store
        self._clock = clock
        self._committer = (
            GroupCommitter(store, max_delay=self.config.group_commit_delay)
            if self.config.group_commit
            else None
        )
        observers: list[DecisionObserver] = [self._observe]
        if history is not None:
            observers.append(decision_history(history))
        timeout = self.config.lanes.handler_timeout
        self.handler = JourneyHandler(
            store,
            journeys,
            clock,
            committer=self._committer,
            observers=tuple(observers),
            attempt_timeout=None if timeout is None else timeout * ATTEMPT_SHARE,
        )
        self.relay = (
            None
            if self.config.relay is None
            else OutboxRelay(
                store,
                provider,
                journeys,
                clock,
                self.config.relay,
                owner=f"{self.config.name}-relay",
            )
        )
        self._timer_producer: Producer | None = None
        self.timers: TimerService | None = None
        self.group = LaneGroup(
            broker,
            self.config.topic,
            self.config.subscription,
            self.handler if wrap_handler is None else wrap_handler(self.handler, self.config),
            consumers=self.config.consumers,
            config=self.config.lanes,
            name=self.config.name,
            receiver_queue_size=self.config.receiver_queue_size,
        )
        self._decisions: Counter[str] = Counter()
        self._events: Counter[str] = Counter()
        self._reasons: Counter[str] = Counter()
        self._sends: Counter[str] = Counter()
        self._lateness: list[float] = []

    async def start(self) -> None:
        """Start the relay, the timers and the consumers (in that order)."""
        if self.relay is not None:
            await self.relay.start()
        if self.config.timers:
            self._timer_producer = await self._broker.create_producer(
                self.config.topic, batching=None
            )
            self.timers = TimerService(
                self._store,
                self._timer_producer,
                self._clock,
                sweep_interval=self.config.sweep_interval,
                grace=self.config.sweep_grace,
            )
            await self.timers.start()
        await self.group.start()

    async def stop(self, grace: float | None = None) -> None:
        """Drain: stop the consumers (decisions in flight get ``grace``), then the rest."""
        try:
            await self.group.stop(grace)
        finally:
            if self.timers is not None:
                await self.timers.stop()
            if self._timer_producer is not None:
                await self._timer_producer.close()
            if self.relay is not None:
                await self.relay.stop(grace if grace is not None else 10.0)
            if self._committer is not None:
                await self._committer.close()

    def stats(self) -> WorkerStats:
        """A snapshot of everything the worker counts."""
        return WorkerStats(
            lanes=self.group.stats(),
            decisions=dict(self._decisions),
            events=dict(self._events),
            reasons=dict(self._reasons),
            sends_created=dict(self._sends),
            relay=self.relay.stats() if self.relay is not None else None,
            group_commit=self._committer.stats() if self._committer is not None else None,
            timers_fired=len(self._lateness),
            timer_lateness=tuple(self._lateness),
            wakeups=self.timers.hints if self.timers is not None else 0,
            swept=self.timers.swept if self.timers is not None else 0,
        )

    def _observe(self, record: DecisionRecord) -> None:
        self._decisions[record.outcome.value] += 1
        if record.outcome is not DecisionOutcome.COMMITTED or record.decision is None:
            return
        decision = record.decision
        if record.event_type is not None:
            self._events[record.event_type.value] += 1
        for reason in decision.reasons:
            self._reasons[reason.code.value] += 1
            if (
                reason.code is ReasonCode.TIMER_FIRED
                and record.event_type is EventType.TIMER_FIRED
                and record.now is not None
            ):
                self._lateness.append(self._lateness_of(record))
        if decision.sends:
            for send in decision.sends:
                self._sends[send.channel.value] += 1
            if self.relay is not None:
                self.relay.poke()
        if self.timers is None:
            return
        state = decision.new_state
        if decision.timers_to_arm:
            self.timers.hint(state.brand_id, state.subscriber_id, decision.timers_to_arm)
        early = {
            (r.journey, r.step) for r in decision.reasons if r.code is ReasonCode.TIMER_NOT_DUE
        }
        if early:
            # The wake-up came early (a broker that delivers up to a tick early): hint again.
            again = [t for t in armed_timers(state) if (t.journey, t.step) in early]
            self.timers.hint(state.brand_id, state.subscriber_id, again, again=True)

    @staticmethod
    def _lateness_of(record: DecisionRecord) -> float:
        # A timer_fired event's occurred_at is the timer's due time (runtime.timers).
        if record.now is None or record.occurred_at is None:
            return 0.0
        return max(0.0, (record.now - record.occurred_at).total_seconds())
