"""keylane's keyed scheduler: one handler at a time per key, many keys at once, individual acks.

Public names only; the implementation lives in the role modules (``config``, ``handler``,
``scheduler``, ``receiver``, ``deadletter``, ``stats``, ``lane``, ``watchdog``). This package
imports no backend: only :mod:`keylane.brokers.base` (the contract) and :mod:`keylane.errors`.
See ``docs/lanes.md``.
"""

from __future__ import annotations

from keylane.lanes.config import ExhaustedPolicy, LaneConfig
from keylane.lanes.deadletter import (
    DEAD_LETTER_ATTEMPTS,
    DEAD_LETTER_ERROR,
    ORIGIN_MESSAGE_ID,
    REAL_TOPIC,
    DeadLetterSink,
    producer_dead_letter_sink,
)
from keylane.lanes.group import GroupStats, LaneGroup, merge_stats
from keylane.lanes.handler import (
    Handler,
    HandlerContext,
    HandlerResultError,
    HandlerTimeoutError,
    NoRetryError,
    RetryLater,
)
from keylane.lanes.scheduler import DropCallback, Lanes
from keylane.lanes.stats import LaneStats

__all__ = [
    "DEAD_LETTER_ATTEMPTS",
    "DEAD_LETTER_ERROR",
    "ORIGIN_MESSAGE_ID",
    "REAL_TOPIC",
    "DeadLetterSink",
    "DropCallback",
    "ExhaustedPolicy",
    "GroupStats",
    "Handler",
    "HandlerContext",
    "HandlerResultError",
    "HandlerTimeoutError",
    "LaneConfig",
    "LaneGroup",
    "LaneStats",
    "Lanes",
    "NoRetryError",
    "RetryLater",
    "merge_stats",
    "producer_dead_letter_sink",
]
