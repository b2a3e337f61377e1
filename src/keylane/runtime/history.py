"""Decision attempts as history records, for the checker (``keylane check``).

Each :class:`~keylane.runtime.handler.DecisionRecord` becomes one attempt record whose outcome is
``ok`` (committed), ``dedupe``, ``fenced``, ``poison`` or ``unavailable``, with the commit's
versions and its load and commit times, so the checker can judge committed decisions on their own
(one committed decision per event, committed read-modify-write windows that never overlap, a
version chain without gaps). Timer events are internal (published after later events of their
key, by design) and are not recorded.

Imports the check package and the runtime's handler; no backend.
"""

from __future__ import annotations

from keylane.check import Attempt, HistoryRecorder
from keylane.journeys import EventType
from keylane.runtime.handler import DecisionObserver, DecisionRecord

__all__ = ["decision_history"]


def decision_history(recorder: HistoryRecorder) -> DecisionObserver:
    """An observer that records every decision attempt in ``recorder``."""

    def observe(record: DecisionRecord) -> None:
        if record.event_type is EventType.TIMER_FIRED:
            return
        recorder.attempt(
            Attempt(
                key=record.key,
                consumer=record.consumer,
                message_id=record.message_id,
                seq=record.seq,
                attempt=record.attempt,
                start=record.start,
                end=record.end,
                outcome=record.outcome.value,
                event_id=record.event_id,
                read_version=record.read_version,
                version=record.version,
                loaded=record.loaded,
                committed=record.committed,
                commit_started=record.commit_started,
            )
        )

    return observe
