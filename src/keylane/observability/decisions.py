"""Recent decisions and deliveries of this process: per-subscriber rings and a live feed.

A :class:`DecisionLog` is a :class:`~keylane.runtime.JourneyHandler` observer and a relay
``on_delivered`` hook. It keeps, bounded:

- per subscriber key, its last ``per_key`` decision attempts (:class:`DecisionEntry`, with the
  reasons) and its last ``per_key`` relay outcomes (:class:`DeliveryEntry`); at most ``max_keys``
  keys, the least recently active forgotten first;
- the last ``recent`` attempts of all keys, and the poison events (dead-lettered at once);
- live subscribers (the SSE stream): each gets every new entry on a bounded queue; a slow one
  loses entries (counted) rather than slowing the handler down.

It covers the decisions **of this process** only: another worker's decisions of the same
subscriber are in that worker's log (the state and the delivery ledger, read from the store, are
the whole truth). Recipients are masked (:func:`keylane.providers.mask_recipient`).

Imports the runtime's records, the journeys' reasons and the state's claims; no backend.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keylane.journeys import Decision
from keylane.providers.base import mask_recipient
from keylane.runtime import DecisionOutcome, DecisionRecord
from keylane.state import ClaimedSend

__all__ = ["DecisionEntry", "DecisionLog", "DeliveryEntry", "Feed"]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class DecisionEntry:
    """One handler attempt, as the API shows it.

    Attributes:
        key: the subscriber key.
        consumer: the consumer that ran it.
        message_id: the broker message id.
        event_id, event_type: the event's id and type (None when it did not parse).
        outcome: ``ok``, ``dedupe``, ``fenced``, ``poison`` or ``unavailable``.
        attempt: lanes' attempt number.
        decided_at: the engine's clock at the decision (ISO 8601), if it got that far.
        wall_time: the real time the attempt ended (epoch seconds).
        duration: real seconds of the attempt.
        version: the state version written (``ok`` only).
        reasons: ``(code, journey, step, detail)`` of each reason.
        sends: the send intents it created: idempotency key, channel, journey, step,
            ``not_before``, and the recipient masked.
        detail: the error of a poison or unavailable attempt.
    """

    key: str
    consumer: str
    message_id: str
    event_id: str | None
    event_type: str | None
    outcome: str
    attempt: int
    decided_at: str | None
    wall_time: float
    duration: float
    version: int | None
    reasons: tuple[tuple[str, str | None, str | None, str], ...]
    sends: tuple[dict[str, Any], ...]
    detail: str

    @classmethod
    def of(cls, record: DecisionRecord, wall_time: float) -> DecisionEntry:
        """The entry of one :class:`DecisionRecord`."""
        decision: Decision | None = record.decision
        reasons = () if decision is None else decision.reasons
        sends: tuple[dict[str, Any], ...] = ()
        if decision is not None and record.outcome is DecisionOutcome.COMMITTED:
            sends = tuple(
                {
                    "idempotency_key": s.idempotency_key,
                    "channel": s.channel.value,
                    "journey": s.journey,
                    "step": s.step,
                    "message_class": s.message_class.value,
                    "to": mask_recipient(s.to),
                    "not_before": _iso(s.not_before),
                }
                for s in decision.sends
            )
        return cls(
            key=record.key,
            consumer=record.consumer,
            message_id=record.message_id,
            event_id=record.event_id,
            event_type=None if record.event_type is None else record.event_type.value,
            outcome=record.outcome.value,
            attempt=record.attempt,
            decided_at=_iso(record.now),
            wall_time=wall_time,
            duration=max(0.0, record.end - record.start),
            version=record.version,
            reasons=tuple((r.code.value, r.journey, r.step, r.detail) for r in reasons),
            sends=sends,
            detail=record.detail,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "kind": "decision",
            "key": self.key,
            "consumer": self.consumer,
            "message_id": self.message_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "outcome": self.outcome,
            "attempt": self.attempt,
            "decided_at": self.decided_at,
            "wall_time": self.wall_time,
            "duration_seconds": self.duration,
            "version": self.version,
            "reasons": [
                {"code": c, "journey": j, "step": s, "detail": d} for c, j, s, d in self.reasons
            ],
            "sends": list(self.sends),
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class DeliveryEntry:
    """One outcome the relay recorded for one outbox row (a send, a deferral, a skip)."""

    key: str
    idempotency_key: str
    channel: str
    outcome: str
    attempt: int
    sent_at: str | None
    wall_time: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "kind": "delivery",
            "key": self.key,
            "idempotency_key": self.idempotency_key,
            "channel": self.channel,
            "outcome": self.outcome,
            "attempt": self.attempt,
            "sent_at": self.sent_at,
            "wall_time": self.wall_time,
        }


Entry = DecisionEntry | DeliveryEntry


@dataclass(eq=False)
class Feed:
    """One live subscriber's queue (``key`` set: that subscriber's entries only)."""

    queue: asyncio.Queue[Entry]
    key: str | None = None
    lost: int = 0


@dataclass(slots=True)
class _Ring:
    decisions: deque[DecisionEntry]
    deliveries: deque[DeliveryEntry]


@dataclass
class DecisionLog:
    """Bounded memory of recent decisions and deliveries, and the live feed.

    Args:
        per_key: entries kept per subscriber (decisions and deliveries each).
        max_keys: subscribers remembered.
        recent: attempts of all keys kept for the stream's first screen.
        feed_queue: entries a live subscriber may have waiting before it loses some.
    """

    per_key: int = 32
    max_keys: int = 10_000
    recent: int = 500
    feed_queue: int = 1000
    _keys: OrderedDict[str, _Ring] = field(default_factory=OrderedDict, init=False)
    _recent: deque[DecisionEntry] = field(init=False)
    _poison: deque[DecisionEntry] = field(init=False)
    _feeds: set[Feed] = field(default_factory=set, init=False)
    _durations: list[float] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._recent = deque(maxlen=self.recent)
        self._poison = deque(maxlen=self.recent)

    # -- feeding ---------------------------------------------------------------------------

    def observe(self, record: DecisionRecord) -> None:
        """A :data:`~keylane.runtime.handler.DecisionObserver`: remember one attempt."""
        entry = DecisionEntry.of(record, time.time())
        self._ring(entry.key).decisions.append(entry)
        self._recent.append(entry)
        if record.outcome is DecisionOutcome.POISON:
            self._poison.append(entry)
        if record.outcome is DecisionOutcome.COMMITTED:
            self._durations.append(entry.duration)
        self._publish(entry)

    def delivered(self, claim: ClaimedSend, sent_at: datetime | None, word: str) -> None:
        """A relay ``on_delivered`` hook: remember one recorded outcome."""
        entry = DeliveryEntry(
            key=claim.key,
            idempotency_key=claim.idempotency_key,
            channel=claim.channel,
            outcome=word,
            attempt=claim.attempt,
            sent_at=_iso(sent_at),
            wall_time=time.time(),
        )
        self._ring(entry.key).deliveries.append(entry)
        self._publish(entry)

    def _ring(self, key: str) -> _Ring:
        ring = self._keys.get(key)
        if ring is None:
            ring = self._keys[key] = _Ring(deque(maxlen=self.per_key), deque(maxlen=self.per_key))
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key)
        return ring

    def _publish(self, entry: Entry) -> None:
        for feed in self._feeds:
            if feed.key is not None and feed.key != entry.key:
                continue
            try:
                feed.queue.put_nowait(entry)
            except asyncio.QueueFull:
                feed.lost += 1

    # -- reading ---------------------------------------------------------------------------

    def decisions_of(self, key: str) -> list[DecisionEntry]:
        """``key``'s remembered attempts, oldest first."""
        ring = self._keys.get(key)
        return [] if ring is None else list(ring.decisions)

    def deliveries_of(self, key: str) -> list[DeliveryEntry]:
        """``key``'s remembered relay outcomes, oldest first."""
        ring = self._keys.get(key)
        return [] if ring is None else list(ring.deliveries)

    def recent_decisions(self, limit: int | None = None) -> list[DecisionEntry]:
        """The latest attempts of every key, oldest first."""
        items = list(self._recent)
        return items if limit is None else items[-limit:]

    def poison(self) -> list[DecisionEntry]:
        """The latest events dead-lettered at once as poison, oldest first."""
        return list(self._poison)

    def take_durations(self) -> list[float]:
        """Durations of the commits since the last call (the sampler's latency window)."""
        taken, self._durations = self._durations, []
        return taken

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    # -- live feed -------------------------------------------------------------------------

    def subscribe(self, key: str | None = None) -> Feed:
        """A new live feed (every key's entries, or ``key``'s only); :meth:`unsubscribe` it."""
        feed = Feed(asyncio.Queue(self.feed_queue), key)
        self._feeds.add(feed)
        return feed

    def unsubscribe(self, feed: Feed) -> None:
        """Stop feeding ``feed``."""
        self._feeds.discard(feed)

    @property
    def feeds(self) -> int:
        """Live feeds now."""
        return len(self._feeds)
