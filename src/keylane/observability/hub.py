"""The :class:`Observability` of one service process: metrics, the decision log, the sampler and
(optionally) tracing, wired around one worker.

Use: pass its ``wrap_*`` methods to the :class:`~keylane.service.Pipeline`, then
:meth:`Observability.attach` the started pipeline's parts and ``await start()``; ``stop()`` at the
end. Without tracing the broker is not wrapped and the wrappers only count and time.

Imports this package and the runtime's worker; no backend, no web framework.
"""

from __future__ import annotations

from dataclasses import dataclass

from keylane.brokers.base import Broker
from keylane.clock import Clock
from keylane.journeys import JourneySet
from keylane.lanes import Handler
from keylane.observability.decisions import DecisionLog
from keylane.observability.instrument import (
    InstrumentedHandler,
    InstrumentedProvider,
    annotate_decision,
    outbox_span_hook,
)
from keylane.observability.metrics import ServiceMetrics
from keylane.observability.sampler import Sample, Sampler
from keylane.observability.tracing import TracedBroker, Tracing
from keylane.providers import Provider
from keylane.runtime import Worker, WorkerConfig, WorkerStats
from keylane.state import StateStore

__all__ = ["Attached", "Observability"]


@dataclass(frozen=True, slots=True)
class Attached:
    """The running parts an :class:`Observability` watches."""

    worker: Worker
    store: StateStore
    broker: Broker
    clock: Clock


class Observability:
    """Metrics, recent decisions, background sampling and tracing for one worker.

    Args:
        journeys: the journeys (for the channel of skipped sends).
        tracing: trace through the broker; None traces nothing.
        decisions: the decision log (a default one otherwise).
        sample_interval: real seconds between background samples.
    """

    def __init__(
        self,
        journeys: JourneySet | None = None,
        *,
        tracing: Tracing | None = None,
        decisions: DecisionLog | None = None,
        sample_interval: float = 1.0,
    ) -> None:
        self.metrics = ServiceMetrics(journeys)
        self.decisions = decisions if decisions is not None else DecisionLog()
        self.tracing = tracing
        self.sampler: Sampler | None = None
        self.attached: Attached | None = None
        self._interval = sample_interval
        self.metrics.collect_stats(self._worker_stats, self._sample)

    # -- wrappers for the pipeline ---------------------------------------------------------

    def wrap_broker(self, broker: Broker) -> Broker:
        """The broker, traced when tracing is on (its producers inject the trace context)."""
        if self.tracing is None:
            return broker
        return TracedBroker(broker, self.tracing)

    def wrap_handler(self, handler: Handler, config: WorkerConfig) -> Handler:
        """The worker's handler, counted (redeliveries) and traced."""
        return InstrumentedHandler(handler, config, self.metrics, self.tracing)

    def wrap_provider(self, provider: Provider) -> Provider:
        """The provider, timed and traced."""
        return InstrumentedProvider(provider, self.metrics, self.tracing)

    # -- lifecycle -------------------------------------------------------------------------

    def attach(self, worker: Worker, store: StateStore, broker: Broker, clock: Clock) -> None:
        """Watch a started worker: its decisions, its relay's outcomes, its store and broker."""
        if self.attached is not None:
            raise RuntimeError("Observability is already attached to a worker")
        self.attached = Attached(worker, store, broker, clock)
        worker.handler.add_observer(self.metrics.observe)
        worker.handler.add_observer(self.decisions.observe)
        if self.tracing is not None:
            worker.handler.add_observer(annotate_decision)
        if worker.relay is not None:
            worker.relay.on_delivered.append(self.metrics.delivered)
            worker.relay.on_delivered.append(self.decisions.delivered)
            if self.tracing is not None:
                worker.relay.on_delivered.append(outbox_span_hook(self.tracing))
        self.sampler = Sampler(
            worker,
            store,
            broker,
            clock,
            durations=self.decisions.take_durations,
            interval=self._interval,
        )

    async def start(self) -> None:
        """Start sampling (after :meth:`attach`)."""
        if self.sampler is not None:
            await self.sampler.start()

    async def stop(self) -> None:
        """Stop sampling and flush the traces."""
        if self.sampler is not None:
            await self.sampler.stop()
        if self.tracing is not None:
            self.tracing.provider.force_flush()

    # -- what the collector reads ----------------------------------------------------------

    def _worker_stats(self) -> WorkerStats | None:
        return None if self.attached is None else self.attached.worker.stats()

    def _sample(self) -> Sample | None:
        return None if self.sampler is None else self.sampler.latest
