"""Introspection of lanes: the live counters and the frozen :class:`LaneStats` snapshot.

Responsible for the shape of the numbers and for building a snapshot from the per-key lanes; the
scheduler keeps them up to date. Imports no backend and nothing outside ``keylane.lanes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from keylane.lanes.config import LaneConfig
from keylane.lanes.lane import Lane, LaneState

__all__ = ["LaneCounters", "LaneStats", "snapshot"]


@dataclass(slots=True)
class LaneCounters:
    """Live event counters of one :class:`~keylane.lanes.Lanes` (internal, mutable).

    The meaning of each counter is documented on :class:`LaneStats`.
    """

    received: int = 0
    completed: int = 0
    failed: int = 0
    timed_out: int = 0
    retried: int = 0
    dead_lettered: int = 0
    dead_letter_failures: int = 0
    parked: int = 0
    acked: int = 0
    ack_failures: int = 0
    abandoned: int = 0
    receive_errors: int = 0
    dropped: int = 0
    postponed: int = 0


@dataclass(frozen=True, slots=True)
class LaneStats:
    """A point-in-time snapshot of a :class:`~keylane.lanes.Lanes`; ages use the loop clock.

    Attributes:
        time: ``loop.time()`` when the snapshot was taken.
        state: ``"new"``, ``"running"``, ``"stopping"`` or ``"stopped"``.
        receiving: whether the receive loop is active (False before start, once stopping, and
            after the consumer reported that it is closed).
        consumer_closed: whether the consumer closed while lanes were running: from then on no
            handler starts and buffered messages are dropped for redelivery.
        buffered: messages received and not yet finished, in-flight and parked ones included.
        in_flight_keys: keys whose handler is running right now.
        retrying_keys: keys waiting for a retry backoff to elapse.
        waiting_keys: keys with a runnable message but no free ``max_in_flight`` slot.
        queue_depths: buffered messages per key (the current message included); keys with no
            buffered message are absent.
        in_flight_age: for each key in ``in_flight_keys`` or ``retrying_keys``, seconds since the
            first attempt of its current message started (retries and backoffs included).
        stalled_keys: keys whose ``in_flight_age`` exceeds ``stall_threshold``.
        parked_keys: parked keys, each mapped to the last error of its stopped message.
        full_keys: keys holding at least ``max_buffered_per_key`` messages.
        overflow: messages held beyond ``max_buffered_per_key``, summed over keys.
        received: messages taken from the consumer.
        completed: messages whose handler succeeded.
        failed: failed attempts (exceptions, timeouts, non-awaitable results), retried or not.
        timed_out: failed attempts that hit ``handler_timeout`` (a subset of ``failed``).
        retried: retries scheduled.
        dead_lettered: messages stored by the dead-letter sink (and then acked).
        dead_letter_failures: sink calls that raised or timed out (the key was parked).
        parked: times a key was parked.
        acked: successful acknowledgements (of completed and dead-lettered messages).
        ack_failures: acknowledgements that raised; those messages are left for redelivery.
        abandoned: messages left unacked by :meth:`~keylane.lanes.Lanes.stop`.
        receive_errors: ``receive()`` calls that raised.
        dropped: buffered messages given up without running because the consumer closed (left
            unacked, so the broker redelivers them to the keys' new owners).
        postponed: attempts that asked to run again later (``RetryLater``); not failures.
    """

    time: float
    state: str
    receiving: bool
    consumer_closed: bool
    buffered: int
    in_flight_keys: frozenset[str]
    retrying_keys: frozenset[str]
    waiting_keys: frozenset[str]
    queue_depths: Mapping[str, int]
    in_flight_age: Mapping[str, float]
    stalled_keys: frozenset[str]
    parked_keys: Mapping[str, str]
    full_keys: frozenset[str]
    overflow: int
    received: int
    completed: int
    failed: int
    timed_out: int
    retried: int
    dead_lettered: int
    dead_letter_failures: int
    parked: int
    acked: int
    ack_failures: int
    abandoned: int
    receive_errors: int
    dropped: int
    postponed: int

    @property
    def in_flight(self) -> int:
        """Number of handlers running right now."""
        return len(self.in_flight_keys)


def snapshot(
    *,
    now: float,
    state: str,
    receiving: bool,
    consumer_closed: bool,
    buffered: int,
    lanes: Iterable[Lane],
    config: LaneConfig,
    counters: LaneCounters,
) -> LaneStats:
    """Build a :class:`LaneStats` from the live lanes (O(number of buffered keys))."""
    per_key = config.max_buffered_per_key
    depths: dict[str, int] = {}
    ages: dict[str, float] = {}
    parked: dict[str, str] = {}
    in_flight: list[str] = []
    retrying: list[str] = []
    waiting: list[str] = []
    full: list[str] = []
    overflow = 0
    for lane in lanes:
        key = lane.key
        depth = len(lane.queue)
        depths[key] = depth
        if depth >= per_key:
            full.append(key)
            overflow += depth - per_key
        lane_state = lane.state
        if lane_state is LaneState.RUNNING or lane_state is LaneState.RETRY:
            (in_flight if lane_state is LaneState.RUNNING else retrying).append(key)
            ages[key] = now - lane.first_start if lane.attempt else 0.0
        elif lane_state is LaneState.WAITING:
            waiting.append(key)
        else:
            parked[key] = lane.last_error
    c = counters
    return LaneStats(
        time=now,
        state=state,
        receiving=receiving,
        consumer_closed=consumer_closed,
        buffered=buffered,
        in_flight_keys=frozenset(in_flight),
        retrying_keys=frozenset(retrying),
        waiting_keys=frozenset(waiting),
        queue_depths=MappingProxyType(depths),
        in_flight_age=MappingProxyType(ages),
        stalled_keys=frozenset(k for k, age in ages.items() if age > config.stall_threshold),
        parked_keys=MappingProxyType(parked),
        full_keys=frozenset(full),
        overflow=overflow,
        received=c.received,
        completed=c.completed,
        failed=c.failed,
        timed_out=c.timed_out,
        retried=c.retried,
        dead_lettered=c.dead_lettered,
        dead_letter_failures=c.dead_letter_failures,
        parked=c.parked,
        acked=c.acked,
        ack_failures=c.ack_failures,
        abandoned=c.abandoned,
        receive_errors=c.receive_errors,
        dropped=c.dropped,
        postponed=c.postponed,
    )
