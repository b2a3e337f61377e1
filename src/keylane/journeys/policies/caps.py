"""Frequency caps over rolling windows, kept in the subscriber's own state.

Semantics (docs/journeys.md, "Frequency caps"):

- A :class:`CapRule` ``(limit, window)`` allows at most ``limit`` messages in **any** half-open
  interval ``[s, s + window)``: a message counts from its time until ``window`` later,
  exclusive. So after a send at 10:00, a 1-per-24 h cap allows the next one at 10:00 the next day
  exactly, not a millisecond earlier.
- Times are the messages' planned dispatch times (``not_before``), in epoch milliseconds; a
  deferred send reserves its slot at the time it will go out, so sends planned in the future
  count too.
- :func:`allows` checks every window that would contain the new time, so a send planned between
  two others is checked on both sides.
- :data:`LEGAL_RULE` (3 per rolling 24 h) applies to marketing SMS to numbers presumed in
  :data:`LEGAL_CAP_STATES` (Florida, Oklahoma), whatever the brand configures.

Pure: imports the standard library only.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["LEGAL_CAP_STATES", "LEGAL_RULE", "MAX_KEPT", "CapRule", "allows", "prune", "reserve"]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
#: The most send times kept per channel, whatever the rules (a hard bound on state size).
MAX_KEPT = 64


class CapRule(NamedTuple):
    """At most ``limit`` messages in any rolling ``window_ms`` milliseconds."""

    limit: int
    window_ms: int

    def __str__(self) -> str:
        window = self.window_ms
        unit = f"{window // DAY_MS}d" if window % DAY_MS == 0 else f"{window / HOUR_MS:g}h"
        return f"{self.limit} per {unit}"


#: Florida (Fla. Stat. § 501.059) and Oklahoma (15 O.S. § 775C): 3 per 24 h.
LEGAL_RULE = CapRule(3, DAY_MS)
#: States whose numbers get :data:`LEGAL_RULE`.
LEGAL_CAP_STATES = frozenset({"FL", "OK"})


def allows(sent: Sequence[int], t: int, rules: Sequence[CapRule]) -> bool:
    """True when one more message at ``t`` keeps every rule.

    Args:
        sent: the planned times already reserved (epoch ms), sorted ascending.
        t: the new message's planned time (epoch ms).
        rules: the rules to keep.
    """
    if not rules:
        return True
    times = list(sent)
    index = bisect.bisect_right(times, t)
    times.insert(index, t)
    last = len(times) - 1
    for limit, window in rules:
        # limit + 1 consecutive times that fit in one window [a, a + window) break the rule;
        # only runs that contain the new time can be new violations.
        for start in range(max(0, index - limit), min(index, last - limit) + 1):
            if times[start + limit] - times[start] < window:
                return False
    return True


def prune(sent: Sequence[int], now: int, horizon: int) -> tuple[int, ...]:
    """``sent`` without the times that no rule can see any more (before ``now - horizon``)."""
    cut = bisect.bisect_left(sent, now - horizon)
    kept = tuple(sent[cut:])
    return kept[-MAX_KEPT:]


def reserve(sent: Sequence[int], t: int) -> tuple[int, ...]:
    """``sent`` with ``t`` inserted in order."""
    times = list(sent)
    bisect.insort(times, t)
    return tuple(times[-MAX_KEPT:])
