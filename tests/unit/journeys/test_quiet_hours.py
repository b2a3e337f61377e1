"""quiet_hours: half-open local windows, the state table, multi-zone intersection, DST, jitter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from keylane.journeys.policies.quiet_hours import (
    FEDERAL,
    STATE_WINDOWS,
    Window,
    defer,
    is_allowed,
    jitter_seconds,
    local_time_after,
    next_allowed,
    parse_hhmm,
    sms_window,
)

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
OPEN_ALL_DAY = Window(0, 1440)


def local(zone: ZoneInfo, *fields: int) -> datetime:
    """The UTC instant of a wall-clock time in ``zone``."""
    year, month, day, hour, minute, second = (*fields, 0, 0, 0)[:6]
    return datetime(year, month, day, hour, minute, second, tzinfo=zone).astimezone(UTC)


@pytest.mark.parametrize(
    ("hms", "allowed"),
    [((7, 59, 59), False), ((8, 0, 0), True), ((20, 59, 59), True), ((21, 0, 0), False)],
)
def test_the_federal_window_is_half_open_at_08_00_and_21_00(hms, allowed):
    t = local(NY, 2026, 6, 10, *hms)
    assert is_allowed(["America/New_York"], FEDERAL, t) is allowed


def test_florida_closes_at_20_00_but_california_at_21_00():
    florida = sms_window("FL", OPEN_ALL_DAY)
    california = sms_window(None, OPEN_ALL_DAY)
    assert florida == Window(480, 1200)
    assert california == FEDERAL
    assert not is_allowed(["America/New_York"], florida, local(NY, 2026, 6, 10, 20, 30))
    assert is_allowed(["America/Los_Angeles"], california, local(LA, 2026, 6, 10, 20, 30))


def test_the_window_is_federal_and_state_and_brand():
    assert sms_window("KY", Window(9 * 60, 22 * 60)) == Window(600, 1260)
    assert sms_window("CT", Window(8 * 60, 19 * 60)) == Window(540, 1140)
    assert set(STATE_WINDOWS) >= {"FL", "OK", "MD", "MA", "CT", "NV", "MI", "MN", "NM", "KY"}


def test_07_59_defers_to_08_00_the_same_day_and_21_00_to_the_next_morning():
    zones = ["America/New_York"]
    assert next_allowed(zones, FEDERAL, local(NY, 2026, 6, 10, 7, 59)) == local(
        NY, 2026, 6, 10, 8, 0
    )
    assert next_allowed(zones, FEDERAL, local(NY, 2026, 6, 10, 21, 0)) == local(
        NY, 2026, 6, 11, 8, 0
    )
    inside = local(NY, 2026, 6, 10, 12, 0)
    assert next_allowed(zones, FEDERAL, inside) == inside


def test_several_zones_allow_only_the_intersection():
    # 08:00 in Los Angeles is 11:00 in New York; 21:00 in New York is 18:00 in Los Angeles.
    zones = ["America/New_York", "America/Los_Angeles"]
    assert not is_allowed(zones, FEDERAL, local(NY, 2026, 6, 10, 10, 59))
    assert is_allowed(zones, FEDERAL, local(NY, 2026, 6, 10, 11, 0))
    assert not is_allowed(zones, FEDERAL, local(NY, 2026, 6, 10, 21, 0))
    assert next_allowed(zones, FEDERAL, local(NY, 2026, 6, 10, 21, 30)) == local(
        NY, 2026, 6, 11, 11, 0
    )


def test_zones_that_never_share_an_allowed_hour_never_open():
    # New York (UTC-4) and Shanghai (UTC+8) are 12 h apart: their 08:00-20:00 windows only touch.
    zones = ["America/New_York", "Asia/Shanghai"]
    florida = Window(480, 1200)
    t = local(NY, 2026, 6, 10, 12)
    assert next_allowed(zones, florida, t) is None
    assert defer(zones, florida, t, "k", 600) is None
    assert next_allowed([], FEDERAL, t) is None
    # With the federal 13 h window they share exactly 20:00-21:00 New York time.
    assert next_allowed(zones, FEDERAL, t) == local(NY, 2026, 6, 10, 20, 0)


def test_spring_forward_keeps_local_08_00():
    # 2026-03-08: New York jumps from 02:00 EST to 03:00 EDT. 08:00 EDT is 12:00 UTC (not 13:00).
    saturday_night = local(NY, 2026, 3, 7, 22, 0)
    opening = next_allowed(["America/New_York"], FEDERAL, saturday_night)
    assert opening == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    assert opening.astimezone(NY).hour == 8
    assert not is_allowed(["America/New_York"], FEDERAL, datetime(2026, 3, 8, 11, 59, tzinfo=UTC))


def test_fall_back_keeps_local_08_00():
    # 2026-11-01: back from 02:00 EDT to 01:00 EST. 08:00 EST is 13:00 UTC (not 12:00).
    saturday_night = local(NY, 2026, 10, 31, 22, 0)
    opening = next_allowed(["America/New_York"], FEDERAL, saturday_night)
    assert opening == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    assert not is_allowed(["America/New_York"], FEDERAL, datetime(2026, 11, 1, 12, 30, tzinfo=UTC))
    # ...and 21:00 EST that evening is 02:00 UTC the next day.
    assert is_allowed(["America/New_York"], FEDERAL, datetime(2026, 11, 2, 1, 59, tzinfo=UTC))
    assert not is_allowed(["America/New_York"], FEDERAL, datetime(2026, 11, 2, 2, 0, tzinfo=UTC))


def test_deferral_adds_a_deterministic_jitter_inside_the_window():
    zones = ["America/New_York"]
    night = local(NY, 2026, 6, 10, 23, 0)
    opening = local(NY, 2026, 6, 11, 8, 0)
    times = {key: defer(zones, FEDERAL, night, key, 1800) for key in ("a", "b", "c", "d")}
    for key, at in times.items():
        assert at is not None
        assert opening <= at < opening + timedelta(seconds=1800)
        assert at == defer(zones, FEDERAL, night, key, 1800)  # deterministic
    assert len(set(times.values())) > 1  # spread, not a herd at 08:00
    assert defer(zones, FEDERAL, local(NY, 2026, 6, 10, 12), "a", 1800) == local(
        NY, 2026, 6, 10, 12
    )


def test_jitter_is_bounded_by_a_short_intersection():
    # Zones 12 h apart share one hour (20:00-21:00 in A is 08:00-09:00 in B).
    zones = ["America/New_York", "Asia/Shanghai"]
    t = local(NY, 2026, 6, 10, 12, 0)
    at = defer(zones, FEDERAL, t, "key", 4 * 3600)
    assert at is not None
    assert is_allowed(zones, FEDERAL, at)
    assert jitter_seconds("key", 1) == 0


def test_local_time_after_is_the_next_wall_clock_time_in_every_zone():
    # Across the spring-forward night: 10:00 EDT on 03-08 is 14:00 UTC.
    t = local(NY, 2026, 3, 7, 12, 0)
    assert local_time_after(["America/New_York"], 10 * 60, t) == datetime(
        2026, 3, 8, 14, 0, tzinfo=UTC
    )
    # Several zones: the latest of their next 10:00s (here Los Angeles', 3 h after New York's).
    t = local(LA, 2026, 3, 7, 11, 0)
    both = local_time_after(["America/New_York", "America/Los_Angeles"], 10 * 60, t)
    assert both == local(LA, 2026, 3, 8, 10, 0)


@pytest.mark.parametrize("text", ["8:00", "25:00", "08-00", "24:00", ""])
def test_parse_hhmm_rejects_bad_times(text):
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm(text)
    assert parse_hhmm("24:00", allow_24=True) == 1440
