"""History recording and the exclusivity checker.

Record every handler attempt (:func:`recorded`, :class:`HistoryRecorder`), then :func:`check` the
merged history for exclusivity violations, order violations, lost messages, duplicates and lost
updates. ``docs/checker.md`` defines each anomaly and the history format.

This package imports no backend: only :mod:`keylane.brokers.base` types and :mod:`keylane.errors`.
"""

from __future__ import annotations

from keylane.check.checker import check
from keylane.check.decisions import DecisionAnomaly, DecisionReport
from keylane.check.recorder import (
    AttemptContext,
    HistoryRecorder,
    property_seq,
    recorded,
    recorded_drops,
)
from keylane.check.records import (
    CANCELLED,
    DEDUPE,
    DROPPED,
    ERROR,
    FENCED,
    OK,
    SEQ_PROPERTY,
    TIMEOUT,
    Attempt,
    History,
    HistoryFormatError,
    Published,
    read_counters,
    read_history,
    write_history,
)
from keylane.check.report import (
    Duplicate,
    ExclusivityViolation,
    LostMessage,
    LostUpdate,
    OrderViolation,
    Report,
    Totals,
)

__all__ = [
    "CANCELLED",
    "DEDUPE",
    "DROPPED",
    "ERROR",
    "FENCED",
    "OK",
    "SEQ_PROPERTY",
    "TIMEOUT",
    "Attempt",
    "AttemptContext",
    "DecisionAnomaly",
    "DecisionReport",
    "Duplicate",
    "ExclusivityViolation",
    "History",
    "HistoryFormatError",
    "HistoryRecorder",
    "LostMessage",
    "LostUpdate",
    "OrderViolation",
    "Published",
    "Report",
    "Totals",
    "check",
    "property_seq",
    "read_counters",
    "read_history",
    "recorded",
    "recorded_drops",
    "write_history",
]
