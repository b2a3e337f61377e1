"""keylane.clock: every clock returns aware UTC; the manual and scaled clocks move as told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from keylane.clock import Clock, ManualClock, ScaledClock, SystemClock, as_utc
from keylane.errors import InvalidArgumentError

T0 = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


def test_system_clock_is_aware_utc_and_near_the_wall_clock():
    # Given the system clock, When read, Then it is UTC and between two reads of datetime.now
    before = datetime.now(UTC)
    now = SystemClock().now()
    after = datetime.now(UTC)
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= after
    assert isinstance(SystemClock(), Clock)


def test_manual_clock_converts_to_utc_and_advances():
    plus_two = timezone(timedelta(hours=2))
    clock = ManualClock(datetime(2026, 3, 8, 14, 0, tzinfo=plus_two))
    assert clock.now() == T0
    assert clock.now().tzinfo is UTC
    assert clock.advance(90) == T0 + timedelta(seconds=90)
    assert clock.advance(timedelta(minutes=1)) == T0 + timedelta(seconds=150)
    clock.set(T0 - timedelta(days=1))
    assert clock.now() == T0 - timedelta(days=1)


@pytest.mark.parametrize("bad", [-1, timedelta(seconds=-1), "5", True])
def test_manual_clock_rejects_negative_or_non_numeric_steps(bad):
    clock = ManualClock(T0)
    with pytest.raises(InvalidArgumentError, match="delta"):
        clock.advance(bad)
    assert clock.now() == T0


def test_naive_datetimes_are_rejected_with_the_field_name():
    with pytest.raises(InvalidArgumentError, match="start: must be timezone-aware"):
        ManualClock(datetime(2026, 1, 1))
    with pytest.raises(InvalidArgumentError, match="value: must be timezone-aware"):
        ManualClock(T0).set(datetime(2026, 1, 1))
    with pytest.raises(InvalidArgumentError, match="when: must be a datetime"):
        as_utc("2026-01-01", "when")  # type: ignore[arg-type]


def test_scaled_clock_runs_speed_times_faster_than_its_monotonic_source():
    # Given a fake monotonic source, When it advances 10 s at speed 60, Then 10 min pass
    ticks = [100.0]
    clock = ScaledClock(T0, 60, monotonic=lambda: ticks[0])
    assert clock.now() == T0
    ticks[0] = 110.0
    assert clock.now() == T0 + timedelta(minutes=10)
    assert clock.speed == 60.0


@pytest.mark.parametrize("speed", [0, -2, float("inf"), float("nan"), "fast", True])
def test_scaled_clock_rejects_bad_speeds(speed):
    with pytest.raises(InvalidArgumentError, match="speed"):
        ScaledClock(T0, speed)
