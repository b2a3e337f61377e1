"""The values a state store takes and returns: positions, snapshots, commits, sends, timers.

All are frozen, slotted dataclasses that check their fields on construction and raise
:class:`~keylane.errors.InvalidArgumentError` naming the field, so a bad value never reaches a
database. State and payloads are opaque ``bytes`` owned by the domain; times are epoch seconds
(UTC) on the caller's clock.

Imports :mod:`keylane.errors` and the standard library only.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from keylane.errors import InvalidArgumentError

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "ClaimedSend",
    "Commit",
    "CommitResult",
    "MessageIdLike",
    "OutboxStats",
    "Outcome",
    "Position",
    "SendIntent",
    "SendRecord",
    "SendStatus",
    "Snapshot",
    "Timer",
    "check_text",
    "check_time",
]

_INT64_MAX = 2**63 - 1
_MAX_TEXT = 1024  # characters of a key, event id, idempotency key, channel, timer id or owner


def check_text(name: str, value: object) -> str:
    """``value`` if it is a non-empty, NUL-free UTF-8 str of at most 1024 characters."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidArgumentError(f"{name} must not be empty")
    if len(value) > _MAX_TEXT:
        raise InvalidArgumentError(f"{name} must be at most {_MAX_TEXT} characters")
    if "\x00" in value:
        raise InvalidArgumentError(f"{name} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(f"{name} is not valid UTF-8 text: {exc.reason}") from None
    return value


def _int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an int, not {type(value).__name__}")
    if not minimum <= value <= _INT64_MAX:
        raise InvalidArgumentError(f"{name} must be in [{minimum}, 2**63-1], got {value}")
    return value


def check_time(name: str, value: object) -> float:
    """``value`` as float epoch seconds; rejects bools, non-numbers, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"{name} must be epoch seconds (float), not {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise InvalidArgumentError(f"{name} must be finite, got {value!r}")
    return seconds


def _bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes):
        raise InvalidArgumentError(f"{name} must be bytes, not {type(value).__name__}")
    return value


def _tuple(name: str, value: object) -> tuple[object, ...]:
    if type(value) is tuple:
        return value
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidArgumentError(f"{name} must be a sequence, not {type(value).__name__}")
    return tuple(value)


class MessageIdLike(Protocol):
    """Anything with a broker position's four attributes (``keylane.brokers.base.MessageId``)."""

    @property
    def partition(self) -> int: ...
    @property
    def ledger_id(self) -> int: ...
    @property
    def entry_id(self) -> int: ...
    @property
    def batch_index(self) -> int: ...


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A broker position: ordered by partition, then ledger, entry and batch index.

    A key always lives on one partition of one topic, so within a key positions order by
    publication. ``partition`` and ``batch`` are -1 for a non-partitioned topic and an unbatched
    message, as in :class:`keylane.brokers.base.MessageId`.
    """

    partition: int
    ledger: int
    entry: int
    batch: int = -1

    def __post_init__(self) -> None:
        _int("position.partition", self.partition, -1)
        _int("position.ledger", self.ledger, -1)
        _int("position.entry", self.entry, -1)
        _int("position.batch", self.batch, -1)

    @classmethod
    def of(cls, message_id: MessageIdLike) -> Position:
        """The position of a broker message id (``partition, ledger_id, entry_id, batch_index``).

        Raises:
            InvalidArgumentError: ``message_id`` lacks one of the four attributes.
        """
        try:
            return cls(
                message_id.partition,
                message_id.ledger_id,
                message_id.entry_id,
                message_id.batch_index,
            )
        except AttributeError as exc:
            raise InvalidArgumentError(
                f"message_id must have partition, ledger_id, entry_id and batch_index: {exc}"
            ) from None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A key's committed state.

    Attributes:
        key: the key.
        version: the committed version; 0 means never committed (``state`` is then ``None``).
        state: the domain's state bytes.
        position: the key's high-water broker position (the highest committed), if any.
    """

    key: str
    version: int
    state: bytes | None
    position: Position | None


@dataclass(frozen=True, slots=True)
class SendIntent:
    """A send decided by a commit: one outbox row, unique by ``idempotency_key`` store-wide.

    Attributes:
        idempotency_key: derived from the journey position (never the attempt or the time);
            inserting an existing key again is a no-op.
        key: the key (subscriber) whose commit decides it; must be the commit's key.
        channel: the provider channel (``"sms"``, ``"email"``, ...).
        payload: the domain's delivery bytes.
        not_before: not dispatched before this time.
        expires_at: stale after this time (the relay skips it), or ``None``.
    """

    idempotency_key: str
    key: str
    channel: str
    payload: bytes
    not_before: float
    expires_at: float | None = None

    def __post_init__(self) -> None:
        check_text("send.idempotency_key", self.idempotency_key)
        check_text("send.key", self.key)
        check_text("send.channel", self.channel)
        _bytes("send.payload", self.payload)
        nb = check_time("send.not_before", self.not_before)
        object.__setattr__(self, "not_before", nb)
        if self.expires_at is not None:
            exp = check_time("send.expires_at", self.expires_at)
            if exp < nb:
                raise InvalidArgumentError(
                    f"send.expires_at ({exp}) must not be before send.not_before ({nb})"
                )
            object.__setattr__(self, "expires_at", exp)


@dataclass(frozen=True, slots=True)
class Timer:
    """An armed timer of a key; ``(key, timer_id)`` is unique."""

    key: str
    timer_id: str
    due_at: float

    def __post_init__(self) -> None:
        check_text("timer.key", self.key)
        check_text("timer.timer_id", self.timer_id)
        object.__setattr__(self, "due_at", check_time("timer.due_at", self.due_at))


@dataclass(frozen=True, slots=True)
class Commit:
    """One decision of one key, committed atomically under a compare-and-set on its version.

    Attributes:
        key: the key.
        expected_version: the version the decision read (0 for a key never committed).
        state: the new state, stored at ``expected_version + 1``.
        event_id: the event's id; a commit of an already marked id is a duplicate.
        position: the event's broker position; one at or below the key's high-water mark is
            a duplicate. ``None`` for decisions that do not come from the key's topic in
            publication order (an API call, a timer sweep, a delayed wake-up message).
        sends: send intents to insert (an existing idempotency key is a no-op).
        cancel_sends: idempotency keys of this key's not yet dispatched sends (PENDING or
            RETRY) to cancel; other keys' rows and rows in any other status are left alone.
        cancel_all_sends: also cancel every not yet dispatched send of this key (e.g. STOP).
            Cancels apply before ``sends`` are inserted.
        arm: timers to arm (upsert by ``(key, timer_id)``); each ``timer.key`` must be ``key``.
        disarm: timer ids of this key to disarm (absent ones are ignored).
    """

    key: str
    expected_version: int
    state: bytes
    event_id: str | None = None
    position: Position | None = None
    sends: tuple[SendIntent, ...] = ()
    cancel_sends: tuple[str, ...] = ()
    cancel_all_sends: bool = False
    arm: tuple[Timer, ...] = ()
    disarm: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_text("commit.key", self.key)
        _int("commit.expected_version", self.expected_version, 0)
        _bytes("commit.state", self.state)
        if self.event_id is not None:
            check_text("commit.event_id", self.event_id)
        if self.position is not None and not isinstance(self.position, Position):
            raise InvalidArgumentError(
                f"commit.position must be a Position, not {type(self.position).__name__}"
            )
        if not isinstance(self.cancel_all_sends, bool):
            raise InvalidArgumentError("commit.cancel_all_sends must be a bool")
        sends = _sends(self.key, self.sends) if self.sends != () else ()
        cancels = _texts("commit.cancel_sends", self.cancel_sends)
        if sends and cancels:
            clash = {s.idempotency_key for s in sends}.intersection(cancels)
            if clash:
                raise InvalidArgumentError(
                    f"commit.cancel_sends must not name a send this commit inserts: {sorted(clash)}"
                )
        arm = _timers(self.key, self.arm) if self.arm != () else ()
        disarm = _texts("commit.disarm", self.disarm)
        if arm and disarm:
            both = {t.timer_id for t in arm}.intersection(disarm)
            if both:
                raise InvalidArgumentError(
                    f"commit: timers both armed and disarmed: {sorted(both)}"
                )
        object.__setattr__(self, "sends", sends)
        object.__setattr__(self, "cancel_sends", cancels)
        object.__setattr__(self, "arm", arm)
        object.__setattr__(self, "disarm", disarm)


def _texts(name: str, value: object) -> tuple[str, ...]:
    if value == ():
        return ()
    return tuple(check_text(f"{name}[]", item) for item in _tuple(name, value))


def _sends(key: str, value: object) -> tuple[SendIntent, ...]:
    sends = _tuple("commit.sends", value)
    seen: set[str] = set()
    for send in sends:
        if not isinstance(send, SendIntent):
            raise InvalidArgumentError(
                f"commit.sends must hold SendIntent values, not {type(send).__name__}"
            )
        if send.key != key:
            raise InvalidArgumentError(
                f"commit.sends: send {send.idempotency_key!r} is for key {send.key!r}, "
                f"not the commit's key {key!r}"
            )
        if send.idempotency_key in seen:
            raise InvalidArgumentError(
                f"commit.sends: idempotency key {send.idempotency_key!r} appears twice"
            )
        seen.add(send.idempotency_key)
    return sends  # type: ignore[return-value]  # checked item by item above


def _timers(key: str, value: object) -> tuple[Timer, ...]:
    arm = _tuple("commit.arm", value)
    armed: set[str] = set()
    for timer in arm:
        if not isinstance(timer, Timer):
            raise InvalidArgumentError(
                f"commit.arm must hold Timer values, not {type(timer).__name__}"
            )
        if timer.key != key:
            raise InvalidArgumentError(
                f"commit.arm: timer {timer.timer_id!r} is for key {timer.key!r}, "
                f"not the commit's key {key!r}"
            )
        if timer.timer_id in armed:
            raise InvalidArgumentError(f"commit.arm: timer {timer.timer_id!r} appears twice")
        armed.add(timer.timer_id)
    return arm  # type: ignore[return-value]  # checked item by item above


class Outcome(enum.StrEnum):
    """What a commit did."""

    COMMITTED = "COMMITTED"
    DUPLICATE = "DUPLICATE"  # the event was already committed: nothing written; ack it


@dataclass(frozen=True, slots=True)
class CommitResult:
    """The outcome of a commit and the key's version after it (unchanged for a duplicate)."""

    outcome: Outcome
    version: int


class SendStatus(enum.StrEnum):
    """An outbox row's status.

    PENDING, RETRY and DISPATCHING rows are active (claimable when due); the others are final.
    DEFERRED is only an argument of ``finish_send``: it puts the row back to PENDING with a
    later ``not_before``. RETRY is the design's FAILED_RETRYABLE: retried from ``retry_at`` under
    the same idempotency key.
    """

    PENDING = "PENDING"
    DISPATCHING = "DISPATCHING"
    RETRY = "RETRY"
    DEFERRED = "DEFERRED"
    SENT = "SENT"
    FAILED_PERMANENT = "FAILED_PERMANENT"
    UNKNOWN = "UNKNOWN"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"


#: Statuses a row can be claimed from (DISPATCHING only once its lease expired).
ACTIVE_STATUSES = (SendStatus.PENDING, SendStatus.RETRY, SendStatus.DISPATCHING)
#: Final statuses.
TERMINAL_STATUSES = frozenset(
    {
        SendStatus.SENT,
        SendStatus.FAILED_PERMANENT,
        SendStatus.UNKNOWN,
        SendStatus.SKIPPED,
        SendStatus.CANCELLED,
    }
)


@dataclass(frozen=True, slots=True)
class ClaimedSend:
    """A send claimed by a relay: DISPATCHING under ``owner`` until ``lease_until``.

    Pass ``owner`` and ``attempt`` back to ``finish_send``: a relay whose lease expired and
    whose row was claimed again (``attempt`` grew) is fenced.
    """

    idempotency_key: str
    key: str
    channel: str
    payload: bytes
    not_before: float
    expires_at: float | None
    created_at: float
    attempt: int
    owner: str
    lease_until: float


@dataclass(frozen=True, slots=True)
class SendRecord:
    """One row of a key's delivery ledger (``sends_for``).

    ``attempts`` counts claims; ``dispatched_at`` is the last claim's time; ``finished_at`` is
    set by a final status; ``detail`` is the last outcome's note (a skip reason, an error).
    """

    idempotency_key: str
    key: str
    channel: str
    payload: bytes
    status: SendStatus
    attempts: int
    created_at: float
    not_before: float
    expires_at: float | None
    owner: str | None
    lease_until: float | None
    retry_at: float | None
    dispatched_at: float | None
    finished_at: float | None
    detail: str


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """The outbox at a glance.

    Attributes:
        pending: rows waiting for dispatch (PENDING or RETRY, due or not).
        dispatching: rows claimed by a relay (DISPATCHING).
        oldest_pending_age: seconds the longest-waiting *due* PENDING or RETRY row has been
            due (``now - max(not_before, retry_at)``); 0 when none is due.
        by_status: row count per stored status (all but DEFERRED; zeros included).
    """

    pending: int
    dispatching: int
    oldest_pending_age: float
    by_status: Mapping[SendStatus, int]
