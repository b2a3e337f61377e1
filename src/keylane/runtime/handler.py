"""The :class:`JourneyHandler`: a lanes handler that decides one event and commits it, fenced.

For each message: parse the event, load the subscriber's state, ``decide``, and commit the new
state with the decision's sends, cancellations, timers, the event's dedupe mark and its broker
position in one compare-and-set transaction. Lanes ack the message only when the handler
returns, so nothing is acked that was not committed.

- A duplicate (the event id is marked, or the position is at or below the subscriber's
  high-water mark) commits nothing and returns: lanes ack it as a no-op.
- A :class:`~keylane.state.FencedError` (someone committed this subscriber since the load: a
  zombie, or the key's new owner) writes nothing; the handler reloads and decides again (see
  ``docs/runtime.md``, "Fencing": dropping the key's lane instead could strand its messages at a
  consumer that still owns them).
- An unreachable store raises :class:`~keylane.lanes.RetryLater`: no ack, no attempt used,
  retried with backoff for as long as the outage lasts. So does a store that does not answer
  within ``attempt_timeout`` (a stalled server): kept below lanes' ``handler_timeout``, a stall
  never becomes failed attempts and a dead letter.
- A message that is not a valid event, or whose key is not its subscriber's, raises
  :class:`PoisonEventError` (a :class:`~keylane.lanes.NoRetryError`): dead-lettered at once
  with the reason; the subscriber's later events still flow.

Imports the lanes, state and journeys contracts; no backend.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from keylane._validate import check_seconds
from keylane.brokers.base import Message
from keylane.clock import Clock
from keylane.errors import InvalidArgumentError
from keylane.journeys import (
    Decision,
    Event,
    EventError,
    EventType,
    JourneySet,
    StateError,
    decide,
    decode_state,
    encode_state,
    parse_event,
)
from keylane.lanes import HandlerContext, NoRetryError, RetryLater
from keylane.runtime.codec import commit_of, seq_of_position
from keylane.state import (
    FencedError,
    GroupCommitter,
    Outcome,
    Position,
    StateStore,
    StoreUnavailableError,
)

__all__ = ["DecisionOutcome", "DecisionRecord", "JourneyHandler", "PoisonEventError"]

logger = logging.getLogger("keylane.runtime")

#: Fenced commits in a row before the handler gives the key back to lanes for a short pause.
MAX_FENCED_IN_A_ROW = 8
#: Backoff while the store is unreachable: first delay and maximum, real seconds.
OUTAGE_BACKOFF_MIN = 0.05
OUTAGE_BACKOFF_MAX = 2.0


class PoisonEventError(NoRetryError):
    """The message cannot be decided: not a valid event, or filed under another key."""


class DecisionOutcome(enum.StrEnum):
    """What one handler attempt did (the history's outcome word)."""

    COMMITTED = "ok"
    DEDUPE = "dedupe"
    FENCED = "fenced"
    POISON = "poison"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One attempt of the handler at one message, for the history, metrics and the API.

    Attributes:
        key: the subscriber key.
        consumer: the consumer that ran it.
        message_id: the broker message id, as a string.
        seq: the message's order within its key (from its broker position).
        event_id: the event's id, when it parsed.
        attempt: lanes' attempt number.
        outcome: what happened.
        start, end: when the attempt started and ended (the handler's ``monotonic`` clock).
        loaded, committed: when the state was loaded and the commit returned (same clock;
            ``committed`` is None unless the outcome is COMMITTED); ``commit_started`` when
            the commit was handed to the store (so ``committed - commit_started`` is its
            latency, group commit included).
        read_version: the version the decision read; ``version`` the one it wrote (COMMITTED).
        event_type: the event's type, when it parsed; ``occurred_at`` its time.
        decision: the decision (COMMITTED, DEDUPE from the engine), for reasons and effects.
        now: the decision's time on the engine's clock.
        committed_at: the engine's clock when the commit returned (COMMITTED only): from then
            on the decision is visible to every load, e.g. the relay's re-check of a STOP.
        detail: an error text for POISON and UNAVAILABLE.
    """

    key: str
    consumer: str
    message_id: str
    seq: int
    event_id: str | None
    attempt: int
    outcome: DecisionOutcome
    start: float
    end: float
    loaded: float | None
    committed: float | None
    read_version: int | None
    version: int | None
    event_type: EventType | None
    occurred_at: datetime | None
    decision: Decision | None
    now: datetime | None
    committed_at: datetime | None = None
    commit_started: float | None = None
    detail: str = ""


DecisionObserver = Callable[[DecisionRecord], None]


class JourneyHandler:
    """``async (message, context)``: decide one event of one subscriber and commit it.

    Args:
        store: an open state store.
        journeys: the journeys to run.
        clock: the engine's clock (decision times, send and timer times).
        committer: batches commits of concurrent handlers (group commit); None commits each
            decision in its own transaction.
        observers: each is told about every attempt (history, metrics, wake-ups, the relay).
        monotonic: the real-time clock of the records' ``start``/``end`` (shared by every
            process whose histories are checked together).
        attempt_timeout: real seconds one load-decide-commit may take before it counts as the
            store being unavailable (no ack, retried later); None waits as long as the store's
            own timeouts. Keep it below lanes' ``handler_timeout``.
    """

    def __init__(
        self,
        store: StateStore,
        journeys: JourneySet,
        clock: Clock,
        *,
        committer: GroupCommitter | None = None,
        observers: tuple[DecisionObserver, ...] = (),
        monotonic: Callable[[], float] | None = None,
        attempt_timeout: float | None = None,
    ) -> None:
        if not isinstance(store, StateStore):
            raise InvalidArgumentError(f"store must be a StateStore, not {store!r}")
        if not isinstance(journeys, JourneySet):
            raise InvalidArgumentError(f"journeys must be a JourneySet, not {journeys!r}")
        self._store = store
        self._journeys = journeys
        self._clock = clock
        self._committer = committer
        self._observers = tuple(observers)
        self._monotonic = monotonic or time.monotonic
        self._outages = 0  # consecutive store failures, for the backoff
        self._attempt_timeout = (
            None
            if attempt_timeout is None
            else check_seconds("attempt_timeout", attempt_timeout, allow_zero=False)
        )

    def add_observer(self, observer: DecisionObserver) -> None:
        """Tell ``observer`` about every attempt from now on."""
        self._observers = (*self._observers, observer)

    async def __call__(self, message: Message, context: HandlerContext) -> None:
        start = self._monotonic()
        position = Position.of(message.message_id)
        record = _Draft(context, str(message.message_id), seq_of_position(position), start)
        try:
            event = parse_event(message.data)
        except EventError as exc:
            self._emit(record.done(DecisionOutcome.POISON, self._monotonic(), detail=str(exc)))
            raise PoisonEventError(f"not a valid event: {exc}") from None
        if event.key != context.key:
            detail = f"event of {event.key!r} published under key {context.key!r}"
            self._emit(record.done(DecisionOutcome.POISON, self._monotonic(), detail=detail))
            raise PoisonEventError(detail)
        record.event_type = event.type
        record.event_id = event.event_id
        record.occurred_at = event.occurred_at
        # Wake-ups and swept timers are published after later events of the key: they are
        # deduplicated by event id only, never by the position mark.
        mark = None if event.type is EventType.TIMER_FIRED else position
        for _ in range(MAX_FENCED_IN_A_ROW):
            try:
                async with asyncio.timeout(self._attempt_timeout):
                    outcome = await self._decide_once(event, mark, record)
            except (StoreUnavailableError, TimeoutError) as exc:
                # A commit cut short here may still land: its retry then sees a duplicate.
                self._outages += 1
                delay = min(
                    OUTAGE_BACKOFF_MIN * 2 ** min(self._outages - 1, 16), OUTAGE_BACKOFF_MAX
                )
                why = str(exc) or "the state store did not answer in time"
                self._emit(record.done(DecisionOutcome.UNAVAILABLE, self._monotonic(), why))
                raise RetryLater(delay, f"state store unavailable: {why}") from None
            self._outages = 0
            if outcome is not DecisionOutcome.FENCED:
                return
        raise RetryLater(0.01, "fenced repeatedly: another consumer is deciding this subscriber")

    async def _decide_once(
        self, event: Event, mark: Position | None, record: _Draft
    ) -> DecisionOutcome:
        snapshot = await self._store.load(event.key)
        record.loaded = self._monotonic()
        record.read_version = snapshot.version
        try:
            state = None if snapshot.state is None else decode_state(snapshot.state)
        except StateError as exc:
            # Unreadable stored state is not this event's fault; keep it and alert loudly.
            logger.error("subscriber %s: stored state unreadable: %s", event.key, exc)
            raise StoreUnavailableError(f"stored state of {event.key!r} unreadable: {exc}") from exc
        now = self._clock.now()
        decision = decide(state, event, now, self._journeys)
        record.now = now
        record.decision = decision
        if decision.duplicate:
            self._emit(record.done(DecisionOutcome.DEDUPE, self._monotonic()))
            return DecisionOutcome.DEDUPE
        commit = commit_of(
            event, decision, snapshot.version, encode_state(decision.new_state), mark
        )
        record.commit_started = self._monotonic()
        try:
            if self._committer is not None:
                result = await self._committer.commit(commit)
            else:
                result = await self._store.commit(commit)
        except FencedError:
            self._emit(record.done(DecisionOutcome.FENCED, self._monotonic()))
            return DecisionOutcome.FENCED
        if result.outcome is Outcome.DUPLICATE:
            self._emit(record.done(DecisionOutcome.DEDUPE, self._monotonic()))
            return DecisionOutcome.DEDUPE
        end = self._monotonic()
        record.committed = end
        record.committed_at = self._clock.now()
        record.version = result.version
        self._emit(record.done(DecisionOutcome.COMMITTED, end))
        return DecisionOutcome.COMMITTED

    def _emit(self, record: DecisionRecord) -> None:
        for observer in self._observers:
            try:
                observer(record)
            except Exception:
                logger.exception("a decision observer raised")


class _Draft:
    """The fields of a :class:`DecisionRecord` gathered during one attempt."""

    __slots__ = (
        "commit_started",
        "committed",
        "committed_at",
        "context",
        "decision",
        "event_id",
        "event_type",
        "loaded",
        "message_id",
        "now",
        "occurred_at",
        "read_version",
        "seq",
        "start",
        "version",
    )

    def __init__(self, context: HandlerContext, message_id: str, seq: int, start: float) -> None:
        self.context = context
        self.message_id = message_id
        self.seq = seq
        self.start = start
        self.loaded: float | None = None
        self.committed: float | None = None
        self.committed_at: datetime | None = None
        self.commit_started: float | None = None
        self.read_version: int | None = None
        self.version: int | None = None
        self.event_id: str | None = None
        self.event_type: EventType | None = None
        self.occurred_at: datetime | None = None
        self.decision: Decision | None = None
        self.now: datetime | None = None

    def done(self, outcome: DecisionOutcome, end: float, detail: str = "") -> DecisionRecord:
        record = DecisionRecord(
            key=self.context.key,
            consumer=self.context.consumer_name,
            message_id=self.message_id,
            seq=self.seq,
            event_id=self.event_id,
            attempt=self.context.attempt,
            outcome=outcome,
            start=self.start,
            end=end,
            loaded=self.loaded,
            committed=self.committed if outcome is DecisionOutcome.COMMITTED else None,
            read_version=self.read_version,
            version=self.version if outcome is DecisionOutcome.COMMITTED else None,
            event_type=self.event_type,
            occurred_at=self.occurred_at,
            decision=self.decision,
            now=self.now,
            committed_at=self.committed_at if outcome is DecisionOutcome.COMMITTED else None,
            commit_started=self.commit_started,
            detail=detail,
        )
        # A fenced attempt is followed by a fresh load in the same handler call.
        self.start = end
        self.loaded = self.committed = self.read_version = self.version = None
        self.committed_at = self.commit_started = None
        self.decision = None
        return record
