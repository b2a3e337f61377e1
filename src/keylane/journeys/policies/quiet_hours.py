"""Quiet hours: when a marketing message may reach a recipient, in the recipient's local time.

Semantics (docs/journeys.md, "Quiet hours"):

- A :class:`Window` is a half-open range of local wall-clock time ``[open, close)``: 08:00 is
  inside, 21:00 is not (20:59:59 is the last allowed second).
- The SMS window for a number is :data:`FEDERAL` (08:00-21:00) ∩ the state's rule in
  :data:`STATE_WINDOWS` ∩ the brand's window.
- With several candidate zones (a multi-zone area code, or an unknown zone resolved to several),
  an instant is allowed only if it is inside the window in **every** zone (fail closed).
- :func:`next_allowed` finds the first allowed instant at or after ``t``; ``None`` when the
  window never opens in all zones at once (e.g. zones 20 h apart).
- :func:`defer` is what a send does: ``t`` itself if allowed, else the next opening plus a
  deterministic per-key jitter that stays inside the allowed span.
- Local times are computed with ``zoneinfo``, so DST transitions are exact: the window is in
  wall-clock time, whatever the UTC offset that day.

Pure: imports the standard library and :mod:`.zones` only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import NamedTuple

from keylane.journeys.policies.zones import zone

__all__ = [
    "FEDERAL",
    "STATE_WINDOWS",
    "Window",
    "allowed_until",
    "defer",
    "is_allowed",
    "jitter_seconds",
    "local_time_after",
    "next_allowed",
    "parse_hhmm",
    "sms_window",
]

#: How far ahead :func:`next_allowed` searches before it concludes the window never opens.
SEARCH_HORIZON = timedelta(days=8)


class Window(NamedTuple):
    """Allowed local time ``[open, close)`` in minutes after midnight (``close`` may be 1440)."""

    open: int
    close: int

    @property
    def empty(self) -> bool:
        """True when nothing is allowed."""
        return self.close <= self.open

    def __and__(self, other: object) -> Window:
        if not isinstance(other, Window):
            return NotImplemented
        return Window(max(self.open, other.open), min(self.close, other.close))

    def __str__(self) -> str:
        return f"[{_hhmm(self.open)}, {_hhmm(self.close)})"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


#: 47 CFR § 64.1200(c)(1): no solicitation before 8 a.m. or after 9 p.m. local time.
FEDERAL = Window(8 * 60, 21 * 60)

#: Stricter state hour rules (journeys.md §2.1; engineering guidance, not legal advice). Day-of-
#: week and holiday rules (AL, LA, MS Sundays; PA Saturdays; RI weekends) are not modelled.
STATE_WINDOWS: dict[str, Window] = {
    "FL": Window(8 * 60, 20 * 60),
    "OK": Window(8 * 60, 20 * 60),
    "MD": Window(8 * 60, 20 * 60),
    "MA": Window(8 * 60, 20 * 60),
    "CT": Window(9 * 60, 20 * 60),
    "NV": Window(9 * 60, 20 * 60),
    "MI": Window(9 * 60, 21 * 60),
    "MN": Window(9 * 60, 21 * 60),
    "NM": Window(9 * 60, 21 * 60),
    "KY": Window(10 * 60, 21 * 60),
}


def sms_window(state: str | None, brand: Window) -> Window:
    """The SMS marketing window: federal ∩ the state's rule (if any) ∩ the brand's window."""
    window = FEDERAL & brand
    rule = STATE_WINDOWS.get(state) if state else None
    return window & rule if rule is not None else window


def _second_of_day(local: datetime) -> int:
    return local.hour * 3600 + local.minute * 60 + local.second


def _inside(local: datetime, window: Window) -> bool:
    second = _second_of_day(local)
    return window.open * 60 <= second < window.close * 60


def _at(day: datetime, minutes: int, name: str) -> datetime:
    """The UTC instant of local ``minutes`` on ``day``'s date in zone ``name``."""
    base = day.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    wall = base + timedelta(minutes=minutes)
    return wall.replace(tzinfo=zone(name)).astimezone(UTC)


def is_allowed(zones: Sequence[str], window: Window, t: datetime) -> bool:
    """True when ``t`` is inside ``window`` in every zone of ``zones``."""
    if window.empty or not zones:
        return False
    return all(_inside(t.astimezone(zone(name)), window) for name in zones)


def _next_open(name: str, window: Window, t: datetime) -> datetime:
    local = t.astimezone(zone(name))
    if _inside(local, window):
        return t
    if _second_of_day(local) < window.open * 60:
        return max(t, _at(local, window.open, name))
    return max(t, _at(local + timedelta(days=1), window.open, name))


def next_allowed(zones: Sequence[str], window: Window, t: datetime) -> datetime | None:
    """The first instant at or after ``t`` allowed in every zone; ``None`` if there is none."""
    if window.empty or not zones:
        return None
    candidate = t
    limit = t + SEARCH_HORIZON
    while candidate <= limit:
        moved = False
        for name in zones:
            opening = _next_open(name, window, candidate)
            if opening > candidate:
                candidate, moved = opening, True
        if not moved:
            return candidate
    return None


def allowed_until(zones: Sequence[str], window: Window, t: datetime) -> datetime:
    """The end of the allowed span that contains ``t`` (``t`` must be allowed)."""
    ends = [_at(t.astimezone(zone(name)), window.close, name) for name in zones]
    return min(ends)


def jitter_seconds(key: str, limit: int) -> int:
    """A deterministic offset in ``[0, limit)`` seconds derived from ``key``."""
    if limit <= 1:
        return 0
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % limit


def defer(
    zones: Sequence[str], window: Window, t: datetime, key: str, jitter: int
) -> datetime | None:
    """When a message due at ``t`` may go: ``t`` if allowed, else the next opening + jitter.

    The jitter (``[0, jitter)`` seconds, from ``key``) is bounded by the allowed span, so the
    deferred time is always inside the window. ``None``: the window never opens in all zones.
    """
    if is_allowed(zones, window, t):
        return t
    opening = next_allowed(zones, window, t)
    if opening is None:
        return None
    span = int((allowed_until(zones, window, opening) - opening).total_seconds())
    return opening + timedelta(seconds=jitter_seconds(key, min(jitter, span)))


def local_time_after(zones: Sequence[str], minutes: int, t: datetime) -> datetime:
    """The first instant after ``t`` at local ``minutes`` (HH:MM) in every zone's wall clock.

    With several zones, the latest of their next HH:MM, so the wait ends at or after HH:MM
    everywhere.
    """
    latest = t
    for name in zones:
        local = t.astimezone(zone(name))
        at = _at(local, minutes, name)
        if at <= t:
            at = _at(local + timedelta(days=1), minutes, name)
        latest = max(latest, at)
    return latest


def parse_hhmm(text: str, *, allow_24: bool = False) -> int:
    """``"HH:MM"`` as minutes after midnight (``"24:00"`` only when ``allow_24``).

    Raises:
        ValueError: the text is not a valid time of day.
    """
    if text == "24:00" and allow_24:
        return 1440
    try:
        parsed = time.fromisoformat(text) if len(text) == 5 and text[2] == ":" else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"expected HH:MM (00:00-23:59), got {text!r}")
    return parsed.hour * 60 + parsed.minute
