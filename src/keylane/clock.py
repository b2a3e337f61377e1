"""Clocks: the one place keylane reads "now".

Everything that needs the current time takes a :class:`Clock` (or a ``now`` value read from one),
so the domain never calls ``time.time()`` behind the caller's back and tests can drive time by
hand. Every clock returns timezone-aware UTC datetimes.

- :class:`SystemClock`: the wall clock.
- :class:`ManualClock`: set and advanced by the caller (tests, simulations).
- :class:`ScaledClock`: a simulated day: ``start`` plus the elapsed monotonic time times
  ``speed`` (``keylane run`` replays a day of shopping in minutes).

Ground floor: imports only the standard library and :mod:`keylane.errors`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from keylane.errors import InvalidArgumentError

__all__ = ["Clock", "ManualClock", "ScaledClock", "SystemClock", "as_utc"]


@runtime_checkable
class Clock(Protocol):
    """A source of the current time."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


def as_utc(value: datetime, name: str = "time") -> datetime:
    """``value`` converted to UTC.

    Raises:
        InvalidArgumentError: ``value`` is not a datetime or is naive (no time zone).
    """
    if not isinstance(value, datetime):
        raise InvalidArgumentError(f"{name}: must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgumentError(f"{name}: must be timezone-aware, got naive {value}")
    return value.astimezone(UTC)


class SystemClock:
    """The system's wall clock, in UTC."""

    def now(self) -> datetime:
        """The current wall-clock time."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to (tests and deterministic simulations).

    Args:
        start: the initial time; timezone-aware (converted to UTC).
    """

    __slots__ = ("_now",)

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start, "start")

    def now(self) -> datetime:
        """The time last set."""
        return self._now

    def set(self, value: datetime) -> None:
        """Jump to ``value`` (forwards or backwards; timezone-aware)."""
        self._now = as_utc(value, "value")

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forwards by ``delta`` (a timedelta or seconds) and return the new time.

        Raises:
            InvalidArgumentError: ``delta`` is negative or not a number.
        """
        if isinstance(delta, bool) or not isinstance(delta, timedelta | int | float):
            raise InvalidArgumentError(
                f"delta: must be a timedelta or seconds, got {type(delta).__name__}"
            )
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise InvalidArgumentError(f"delta: must not be negative, got {step}")
        self._now += step
        return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()})"


class ScaledClock:
    """Simulated time: ``start + (monotonic() - monotonic_at_creation) * speed``.

    Args:
        start: the simulated time at creation; timezone-aware (converted to UTC).
        speed: simulated seconds per real second; > 0 (e.g. 1440 plays a day in a minute).
        monotonic: the real-time source (seconds); injectable for tests.
    """

    __slots__ = ("_monotonic", "_origin", "_speed", "_start")

    def __init__(
        self,
        start: datetime,
        speed: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not speed > 0:
            raise InvalidArgumentError(f"speed: must be a number > 0, got {speed!r}")
        if speed == float("inf"):
            raise InvalidArgumentError("speed: must be finite")
        self._start = as_utc(start, "start")
        self._speed = float(speed)
        self._monotonic = monotonic
        self._origin = monotonic()

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return self._speed

    def now(self) -> datetime:
        """The simulated current time."""
        elapsed = self._monotonic() - self._origin
        return self._start + timedelta(seconds=elapsed * self._speed)

    def __repr__(self) -> str:
        return f"ScaledClock(start={self._start.isoformat()}, speed={self._speed})"
