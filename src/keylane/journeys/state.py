"""Per-subscriber state: its profile, consent, active runs, timers, pending sends and caps.

The state is what the runtime stores per key and hands back to the next decision. It is an
immutable msgspec struct, encoded as MessagePack (array-like, field order = schema) by
:func:`encode_state` and read back by :func:`decode_state`, which refuses a newer schema
version with :class:`StateVersionError`.

It stays bounded however long the subscriber lives (docs/journeys.md, "State"):

- finished runs are dropped (only each journey's last start time is kept, for re-entry);
- send times are pruned past the longest cap window and capped at ``caps.MAX_KEPT``;
- pending sends are dropped once they expire; at most :data:`MAX_PENDING` are kept (the
  decision cancels the earliest-expiring beyond it: ``cancel_sends``, ``cancelled_pending_full``);
- the dedupe window holds the 8-byte hashes of the last :data:`DEDUPE_WINDOW` event ids
  (``seen``, concatenated) and when each was decided (``seen_at``, 4-byte epoch seconds), none
  older than :data:`DEDUPE_MAX_AGE_MS`.

Times are epoch milliseconds (UTC). Imports msgspec and the domain's errors only.
"""

from __future__ import annotations

from typing import Any

import msgspec

from keylane.journeys.errors import StateError, StateVersionError

__all__ = [
    "DEDUPE_MAX_AGE_MS",
    "DEDUPE_WINDOW",
    "MAX_PENDING",
    "STATE_VERSION",
    "Pending",
    "Run",
    "SubscriberState",
    "Timer",
    "decode_state",
    "encode_state",
    "new_state",
    "remember",
    "seen_before",
]

#: The state schema version this keylane writes (and the newest it reads). Version 2 added
#: ``opted_out_at`` (last, with a default), so version 1 states still decode (as ``None``).
STATE_VERSION = 2
#: How many recent event ids are remembered for dedupe.
DEDUPE_WINDOW = 64
#: Remembered event ids older than this (by decision time) are forgotten.
DEDUPE_MAX_AGE_MS = 7 * 86_400_000
#: The most pending sends kept (the earliest-expiring beyond it are cancelled).
MAX_PENDING = 32


class Run(msgspec.Struct, frozen=True, array_like=True):
    """An active run of one journey.

    Attributes:
        journey: the journey's name.
        run_id: derived from the triggering event's id (deterministic).
        step: the step the run is at (a wait or wait-for while idle).
        seq: how many steps the run has entered (the occurrence in ids and keys).
        started_ms: when it started.
        trigger: the trigger's properties that the journey's templates and conditions name.
    """

    journey: str
    run_id: str
    step: str
    seq: int
    started_ms: int
    trigger: dict[str, Any] = {}


class Timer(msgspec.Struct, frozen=True, array_like=True):
    """An armed timer: ``timer_id`` fires ``step`` of run ``run_id`` at ``due_ms``."""

    timer_id: str
    journey: str
    run_id: str
    step: str
    due_ms: int


class Pending(msgspec.Struct, frozen=True, array_like=True):
    """A send intent not yet known to be dispatched; the relay sends only what is listed."""

    idempotency_key: str
    journey: str
    run_id: str
    channel: str
    expires_ms: int


class SubscriberState(msgspec.Struct, frozen=True, array_like=True):
    """Everything the engine remembers about one subscriber of one brand.

    Build a fresh one with :func:`new_state`; never edit one in place (it is frozen).
    New fields go last, with a default, so states of older versions still decode.

    ``opted_out_at`` is when the opt-out happened in *event* time (the latest STOP's
    ``occurred_at``, epoch ms) while ``opted_out``; ``None`` when not opted out, or for an
    opt-out recorded by a version 1 state (time unknown).
    """

    version: int
    brand_id: str
    subscriber_id: str
    phone: str | None = None
    email: str | None = None
    timezone: str | None = None
    phone_zones: tuple[str, ...] = ()
    phone_state: str | None = None
    sms_consent: bool = False
    email_consent: bool = False
    sms_consent_ever: bool = False
    opted_out: bool = False
    attributes: dict[str, Any] = {}
    orders: int = 0
    clicks: int = 0
    runs: tuple[Run, ...] = ()
    timers: tuple[Timer, ...] = ()
    pending: tuple[Pending, ...] = ()
    sms_sends: tuple[int, ...] = ()
    email_sends: tuple[int, ...] = ()
    last_started: dict[str, int] = {}
    seen: bytes = b""
    seen_at: bytes = b""
    opted_out_at: int | None = None

    @property
    def key(self) -> str:
        """``"<brand_id>:<subscriber_id>"``."""
        return f"{self.brand_id}:{self.subscriber_id}"

    def run_of(self, journey: str) -> Run | None:
        """The active run of ``journey``, if any."""
        for run in self.runs:
            if run.journey == journey:
                return run
        return None


def seen_before(state: SubscriberState, digest: bytes) -> bool:
    """True when the event with this 8-byte digest is in the dedupe window."""
    seen = state.seen
    index = seen.find(digest)
    while index != -1 and index % 8:
        index = seen.find(digest, index + 1)
    return index != -1


def remember(state: SubscriberState, digest: bytes, now_ms: int) -> tuple[bytes, bytes]:
    """``(seen, seen_at)`` with this event added, the oldest and the too old dropped."""
    seen, seen_at = state.seen, state.seen_at
    drop = len(seen) // 8 - DEDUPE_WINDOW + 1
    now_s = now_ms // 1000
    horizon = now_s - DEDUPE_MAX_AGE_MS // 1000
    if drop > 0 or (seen_at and int.from_bytes(seen_at[:4], "big") < horizon):
        start = max(drop, 0)
        count = len(seen_at) // 4
        while start < count and int.from_bytes(seen_at[4 * start : 4 * start + 4], "big") < horizon:
            start += 1
        seen, seen_at = seen[8 * start :], seen_at[4 * start :]
    return seen + digest, seen_at + max(now_s, 0).to_bytes(4, "big")


def new_state(brand_id: str, subscriber_id: str) -> SubscriberState:
    """The state of a subscriber the engine has never seen."""
    return SubscriberState(STATE_VERSION, brand_id, subscriber_id)


class _Header(msgspec.Struct, array_like=True):
    version: int


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(SubscriberState)
_header_decoder = msgspec.msgpack.Decoder(_Header)


def encode_state(state: SubscriberState) -> bytes:
    """``state`` as MessagePack bytes (schema version first)."""
    return _encoder.encode(state)


def decode_state(data: bytes | bytearray | memoryview) -> SubscriberState:
    """Read state written by :func:`encode_state`.

    Raises:
        StateVersionError: it was written by a newer schema version.
        StateError: it is not keylane subscriber state.
    """
    try:
        state = _decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        try:
            version = _header_decoder.decode(data).version
        except (msgspec.ValidationError, msgspec.DecodeError):
            raise StateError(f"state: not keylane subscriber state ({exc})") from None
        if version > STATE_VERSION:
            raise _newer(version) from None
        raise StateError(f"state: cannot be decoded: {exc}") from None
    if state.version > STATE_VERSION:
        raise _newer(state.version)
    if state.version < 1:
        raise StateError(f"state: version {state.version} is not valid")
    return state


def _newer(version: int) -> StateVersionError:
    return StateVersionError(
        f"state: version {version} was written by a newer keylane; this one reads up to "
        f"version {STATE_VERSION}. Upgrade keylane before reading this state."
    )
