"""The runtime: binds the journeys domain to lanes, durable state, the outbox and providers.

- :class:`JourneyHandler`: a lanes handler; load, ``decide``, commit (compare-and-set), then
  lanes ack.
- :class:`OutboxRelay`: the only sender; claim, re-check, ``Provider.send``, record the outcome.
- :class:`TimerService`: wake-up hints and the overdue sweeper; timers themselves are state.
- :class:`Worker`: a LaneGroup with all three, started and drained together.

The guarantees and the fault scenarios are in ``docs/runtime.md``. Imports contracts only.
"""

from __future__ import annotations

from keylane.runtime.codec import encode_event
from keylane.runtime.handler import (
    DecisionOutcome,
    DecisionRecord,
    JourneyHandler,
    PoisonEventError,
)
from keylane.runtime.relay import OutboxRelay, RelayConfig, RelayStats
from keylane.runtime.timers import TimerService
from keylane.runtime.worker import (
    DEFAULT_SUBSCRIPTION,
    DEFAULT_TOPIC,
    Worker,
    WorkerConfig,
    WorkerStats,
)

__all__ = [
    "DEFAULT_SUBSCRIPTION",
    "DEFAULT_TOPIC",
    "DecisionOutcome",
    "DecisionRecord",
    "JourneyHandler",
    "OutboxRelay",
    "PoisonEventError",
    "RelayConfig",
    "RelayStats",
    "TimerService",
    "Worker",
    "WorkerConfig",
    "WorkerStats",
    "encode_event",
]
