"""The audit's rules, each re-derived from the delivery log alone.

Every check here is written from the rule, not from the engine's code: the engine's decision
functions are never called, so a bug in them cannot hide here. Only data is shared with the
journeys domain (the federal window, the state hour rules and area-code table, the legal cap,
the brand's windows and caps from the journeys file, and the name of the STOP confirmation).

- :func:`quiet_hours`: a marketing message's ``sent_at`` must be inside the allowed window in
  **every** candidate zone of its recipient: the delivery's ``subscriber_timezone`` if set, else
  every zone phonenumbers gives the recipient's number, else the brand's default zones. SMS:
  federal [08:00, 21:00) ∩ the state's rule (from the area code) ∩ the brand's ``sms_window``;
  email: the brand's ``email_window``. Windows are half-open local wall-clock times (zoneinfo,
  so DST days are exact).
- :func:`frequency_caps`: per (brand, recipient, channel), marketing only, no rolling window of
  any of the brand's cap rules, nor the legal 3 per 24 h for FL/OK numbers, may hold more than
  its limit of ``sent_at`` times; half-open ``[s, s + window)``.
- :func:`after_opt_out`: a delivery whose subscriber's latest consent change at ``sent_at`` is an
  opt-out is a violation, except one STOP confirmation per opt-out.
- :func:`duplicates`: an idempotency key delivered more than once.

Imports phonenumbers, zoneinfo and the journeys' data tables; no backend.
"""

from __future__ import annotations

import bisect
import functools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_timezone

from keylane.audit.report import ConsentChange
from keylane.journeys import JourneySet
from keylane.journeys.decision import SYSTEM_JOURNEY
from keylane.journeys.model import BrandConfig
from keylane.journeys.policies.caps import LEGAL_CAP_STATES, LEGAL_RULE, CapRule
from keylane.journeys.policies.quiet_hours import FEDERAL, STATE_WINDOWS, Window
from keylane.journeys.policies.zones import AREA_CODE_STATES
from keylane.journeys.sending import STOP_CONFIRMATION
from keylane.providers.base import Delivery

__all__ = [
    "Finding",
    "Row",
    "after_opt_out",
    "duplicates",
    "frequency_caps",
    "number_state",
    "number_zones",
    "quiet_hours",
]

_MICROS_PER_MINUTE = 60_000_000


@dataclass(frozen=True, slots=True)
class Row:
    """One delivery record: its place in the log and what was delivered."""

    index: int
    delivery: Delivery

    @property
    def key(self) -> str:
        """The subscriber key."""
        return f"{self.delivery.brand_id}:{self.delivery.subscriber_id}"

    @property
    def marketing(self) -> bool:
        """True for a marketing message."""
        return self.delivery.message_class == "marketing"


#: A rule broken by one row, and how.
Finding = tuple[Row, str]


@functools.lru_cache(maxsize=65_536)
def number_zones(e164: str) -> tuple[str, ...]:
    """Every IANA zone phonenumbers gives ``e164`` (empty when it cannot place the number)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    zones = phone_timezone.time_zones_for_number(number)
    return tuple(sorted(z for z in zones if z != "Etc/Unknown"))


def number_state(e164: str) -> str | None:
    """The US state a NANP number is presumed in, from its area code (states with rules)."""
    if not (e164.startswith("+1") and len(e164) == 12 and e164[2:].isdigit()):
        return None
    return AREA_CODE_STATES.get(int(e164[2:5]))


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _intersect(*windows: Window) -> Window:
    return Window(max(w.open for w in windows), min(w.close for w in windows))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _inside(moment: datetime, zone: str, window: Window) -> tuple[bool, datetime]:
    local = moment.astimezone(_zone(zone))
    micros = ((local.hour * 60 + local.minute) * 60 + local.second) * 1_000_000
    micros += local.microsecond
    ok = window.open * _MICROS_PER_MINUTE <= micros < window.close * _MICROS_PER_MINUTE
    return ok, local


def _candidate_zones(row: Row, phone: str | None, brand: BrandConfig) -> tuple[str, ...]:
    d = row.delivery
    if d.subscriber_timezone:
        return (d.subscriber_timezone,)
    zones = number_zones(phone) if phone else ()
    return zones or brand.timezones


def quiet_hours(
    rows: Iterable[Row], journeys: JourneySet, phones: Mapping[str, str]
) -> list[Finding]:
    """Marketing messages sent outside the allowed window in some candidate zone.

    Args:
        rows: the deliveries.
        journeys: the brands' windows and default zones.
        phones: a subscriber key's phone, for email (whose ``to`` is an address).
    """
    found: list[Finding] = []
    for row in rows:
        if not row.marketing:
            continue
        d = row.delivery
        brand = journeys.brand(d.brand_id)
        if d.channel == "sms":
            phone: str | None = d.to
            state = number_state(d.to)
            rule = STATE_WINDOWS.get(state) if state else None
            parts = (FEDERAL, brand.sms_window, *((rule,) if rule else ()))
            window = _intersect(*parts)
            label = f"federal ∩ {state} ∩ brand" if rule else "federal ∩ brand"
        else:
            phone = phones.get(row.key)
            window = brand.email_window
            label = "brand email window"
        for zone in _candidate_zones(row, phone, brand):
            ok, local = _inside(d.sent_at, zone, window)
            if not ok:
                found.append(
                    (
                        row,
                        f"{local:%Y-%m-%d %H:%M:%S} in {zone} is outside "
                        f"[{_hhmm(window.open)}, {_hhmm(window.close)}) ({label})",
                    )
                )
                break
    return found


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _rules(channel: str, to: str, brand: BrandConfig) -> tuple[tuple[CapRule, str], ...]:
    if channel == "email":
        return tuple((rule, "brand") for rule in brand.email_caps)
    rules = tuple((rule, "brand") for rule in brand.sms_caps)
    state = number_state(to)
    if state in LEGAL_CAP_STATES:
        rules += ((LEGAL_RULE, f"{state} law"),)
    return rules


def frequency_caps(rows: Iterable[Row], journeys: JourneySet) -> list[Finding]:
    """Marketing messages over a cap: the ``limit + 1``-th within one rolling window."""
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for row in rows:
        if row.marketing:
            d = row.delivery
            groups[(d.brand_id, d.to, d.channel)].append(row)
    found: list[Finding] = []
    for (brand_id, to, channel), group in groups.items():
        group.sort(key=lambda r: (r.delivery.sent_at, r.index))
        times = [r.delivery.sent_at for r in group]
        flagged: dict[int, str] = {}
        for rule, source in _rules(channel, to, journeys.brand(brand_id)):
            window = timedelta(milliseconds=rule.window_ms)
            for i in range(rule.limit, len(times)):
                # limit + 1 messages fit in one half-open window [s, s + window) exactly when
                # the first and the last of them are less than a window apart.
                if i not in flagged and times[i] - times[i - rule.limit] < window:
                    span = times[i] - times[i - rule.limit]
                    flagged[i] = (
                        f"{rule.limit + 1} marketing {channel} messages in {_span(span)} "
                        f"(from {times[i - rule.limit].isoformat()}); the {source} cap is {rule}"
                    )
        found.extend((group[i], detail) for i, detail in sorted(flagged.items()))
    return found


def after_opt_out(rows: Sequence[Row], changes: Iterable[ConsentChange]) -> list[Finding]:
    """Messages to a subscriber whose latest consent change at ``sent_at`` is an opt-out.

    One STOP confirmation (journey ``_system``, step ``stop_confirmation``) per opt-out is
    allowed; a second one for the same opt-out is a violation too. A change at the very instant
    of ``sent_at`` counts as already made (fail closed).
    """
    by_key: dict[str, list[ConsentChange]] = defaultdict(list)
    for change in changes:
        by_key[change.key].append(change)
    times: dict[str, list[datetime]] = {}
    for key, items in by_key.items():
        items.sort(key=lambda c: c.at)
        times[key] = [c.at for c in items]
    confirmed: set[tuple[str, int]] = set()
    found: list[Finding] = []
    for row in sorted(rows, key=lambda r: (r.delivery.sent_at, r.index)):
        key = row.key
        if key not in times:
            continue
        d = row.delivery
        at = bisect.bisect_right(times[key], d.sent_at) - 1
        if at < 0 or by_key[key][at].opted_in:
            continue
        since = by_key[key][at].at.isoformat()
        if d.journey == SYSTEM_JOURNEY and d.step == STOP_CONFIRMATION:
            if (key, at) not in confirmed:
                confirmed.add((key, at))
                continue
            found.append((row, f"a second STOP confirmation for the opt-out at {since}"))
        else:
            found.append((row, f"sent while opted out (opt-out at {since})"))
    return found


def duplicates(rows: Iterable[Row]) -> list[Finding]:
    """Every delivery of an idempotency key after its first."""
    seen: Counter[str] = Counter()
    found: list[Finding] = []
    for row in sorted(rows, key=lambda r: r.index):
        key = row.delivery.idempotency_key
        seen[key] += 1
        if seen[key] > 1:
            found.append((row, f"idempotency key delivered {seen[key]} times"))
    return found
