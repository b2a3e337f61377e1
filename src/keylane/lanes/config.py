"""Configuration of :class:`~keylane.lanes.Lanes`: the frozen, validated :class:`LaneConfig`.

Responsible for the meaning of every knob and for rejecting bad values with a clear
:class:`~keylane.errors.InvalidArgumentError`. Imports no backend and nothing from the rest of
keylane except the error hierarchy and the ground-floor rules (:mod:`keylane._validate`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from keylane._validate import check_bool, check_int, check_seconds
from keylane.errors import InvalidArgumentError

__all__ = ["ExhaustedPolicy", "LaneConfig"]


class ExhaustedPolicy(enum.Enum):
    """What happens to a message whose handler failed ``max_attempts`` times."""

    #: Hand the message to the dead-letter sink, ack it and go on with the key's next message.
    DEAD_LETTER = "dead-letter"
    #: Stop the key: the failed message and everything after it stay buffered, unacked and in
    #: order until :meth:`Lanes.resume` retries the failed message.
    PARK = "park"


@dataclass(frozen=True, slots=True)
class LaneConfig:
    """Knobs of a :class:`~keylane.lanes.Lanes` instance (see ``docs/lanes.md``).

    Args:
        max_in_flight: handlers running at once across all keys (>= 1).
        handler_timeout: seconds one handler attempt may take before it is cancelled and counted
            as failed (> 0), or None for no limit.
        max_attempts: attempts per message, the first one included (>= 1; 1 means no retry).
        retry_backoff: delay before the first retry (>= 0); doubled for every further retry.
        retry_backoff_max: upper bound of the retry delay (>= retry_backoff).
        on_exhausted: what happens after the last failed attempt.
        max_buffered_per_key: a key holding this many messages is *full*; further messages of
            the key are still taken (never nacked, which would break order) but reported as
            overflow. See ``docs/lanes.md``, "Backpressure".
        max_buffered_total: hard limit of messages received and not yet finished (acked or
            dead-lettered). At the limit the receive loop stops calling ``receive()``.
        stall_threshold: a key whose current message has been in progress (running or waiting
            for a retry) longer than this many seconds is reported as stalled (>= 0).
        shutdown_grace: default seconds :meth:`Lanes.stop` lets running handlers finish (>= 0).
        redeliver_on_stop: after stopping, call ``consumer.redeliver_unacknowledged_messages()``
            if messages were left unacked, so the broker hands them out again (to this consumer
            if it stays open and still owns the keys, else to the keys' new owners).
    """

    max_in_flight: int = 256
    handler_timeout: float | None = 30.0
    max_attempts: int = 3
    retry_backoff: float = 0.1
    retry_backoff_max: float = 10.0
    on_exhausted: ExhaustedPolicy = ExhaustedPolicy.DEAD_LETTER
    max_buffered_per_key: int = 100
    max_buffered_total: int = 10_000
    stall_threshold: float = 30.0
    shutdown_grace: float = 10.0
    redeliver_on_stop: bool = True

    def __post_init__(self) -> None:
        check_int("max_in_flight", self.max_in_flight, 1)
        if self.handler_timeout is not None:
            check_seconds("handler_timeout", self.handler_timeout, allow_zero=False)
        check_int("max_attempts", self.max_attempts, 1)
        check_seconds("retry_backoff", self.retry_backoff)
        check_seconds("retry_backoff_max", self.retry_backoff_max)
        if self.retry_backoff_max < self.retry_backoff:
            raise InvalidArgumentError(
                f"retry_backoff_max ({self.retry_backoff_max}) must be >= "
                f"retry_backoff ({self.retry_backoff})"
            )
        if not isinstance(self.on_exhausted, ExhaustedPolicy):
            raise InvalidArgumentError(
                f"on_exhausted must be an ExhaustedPolicy, not {self.on_exhausted!r}"
            )
        check_int("max_buffered_per_key", self.max_buffered_per_key, 1)
        check_int("max_buffered_total", self.max_buffered_total, 1)
        check_seconds("stall_threshold", self.stall_threshold)
        check_seconds("shutdown_grace", self.shutdown_grace)
        check_bool("redeliver_on_stop", self.redeliver_on_stop)

    def backoff(self, failed_attempt: int) -> float:
        """Delay before the retry after failed attempt number ``failed_attempt`` (1-based)."""
        if self.retry_backoff == 0:
            return 0.0
        # 2**60 already dwarfs any sane maximum; capping the exponent avoids huge ints.
        return min(self.retry_backoff * 2.0 ** min(failed_attempt - 1, 60), self.retry_backoff_max)
