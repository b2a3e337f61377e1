"""Per-key state of the lanes scheduler: one :class:`Lane` per key that has buffered messages.

Responsible only for the data a key carries (its FIFO of messages and where its head message
stands); the scheduler owns every transition. Imports no backend.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque

from keylane.brokers.base import Message

__all__ = ["Lane", "LaneState"]


class LaneState(enum.Enum):
    """Where a key's head message stands."""

    #: Runnable, waiting for a free ``max_in_flight`` slot (or left behind by a stop).
    WAITING = "waiting"
    #: A worker owns the key: its handler runs, or its ack / dead-letter is under way.
    RUNNING = "running"
    #: The head failed and waits for its retry backoff.
    RETRY = "retry"
    #: The head exhausted its attempts under ``ExhaustedPolicy.PARK``; waits for ``resume``.
    PARKED = "parked"


class Lane:
    """The buffered messages of one key, in receive order; ``queue[0]`` is the head.

    Only the head is ever processed, and only by the one worker that owns the lane while it is
    RUNNING: that is what makes a key serial and ordered.
    """

    __slots__ = ("attempt", "first_start", "key", "last_error", "queue", "retry_handle", "state")

    def __init__(self, key: str) -> None:
        self.key = key
        self.queue: deque[Message] = deque()
        self.state = LaneState.WAITING
        #: Attempts made on the head message so far (0 = not started).
        self.attempt = 0
        #: Loop time the head's first attempt started.
        self.first_start = 0.0
        #: Text of the head's last error (shown for parked keys).
        self.last_error = ""
        self.retry_handle: asyncio.TimerHandle | None = None
