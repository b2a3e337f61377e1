"""Where a recipient is: the time zones and the US state of a phone number, and zone resolution.

- :func:`phone_location` is called once per phone number (on ``subscribed`` or
  ``profile_updated``); its result is stored in the subscriber's state, so no decision parses a
  number again.
- The zones come from ``phonenumbers.timezone`` (its IANA names). A number it cannot place
  (``Etc/Unknown``) has no zones.
- The US state comes from :data:`AREA_CODE_STATES`, a small table of the area codes of the states
  whose rules keylane applies (quiet hours in :mod:`.quiet_hours`, the legal cap in :mod:`.caps`).
  ``phonenumbers``' geocoder text is not a stable key, so it is not read at run time; a unit test
  checks that the table agrees with it.
- :func:`candidate_zones` picks the zones a send must respect: the profile's zone, else the
  number's zones, else the brand's default zones.

Pure: imports the standard library and phonenumbers only.
"""

from __future__ import annotations

import functools
import zoneinfo

import phonenumbers
from phonenumbers import timezone as phone_timezone

__all__ = ["AREA_CODE_STATES", "PhoneLocation", "candidate_zones", "phone_location", "zone"]

_STATE_AREA_CODES: dict[str, tuple[int, ...]] = {
    "FL": (239, 305, 321, 324, 352, 386, 407, 448, 561, 645, 656, 689, 727, 728, 754, 772, 786,
           813, 850, 863, 904, 941, 954),
    "OK": (405, 539, 572, 580, 918),
    "MD": (227, 240, 301, 410, 443, 667),
    "MA": (339, 351, 413, 508, 617, 774, 781, 857, 978),
    "CT": (203, 475, 860, 959),
    "NV": (702, 725, 775),
    "MI": (231, 248, 269, 313, 517, 586, 616, 734, 810, 906, 947, 989),
    "MN": (218, 320, 507, 612, 651, 763, 952),
    "NM": (505, 575),
    "KY": (270, 364, 502, 606, 859),
}  # fmt: skip

#: US area code -> the state it is presumed to be in, for the states with rules in keylane.
#: Checked against phonenumbers 9.0.43's geocoder (tests/unit/journeys/test_zones.py).
AREA_CODE_STATES: dict[int, str] = {
    code: state for state, codes in _STATE_AREA_CODES.items() for code in codes
}


class PhoneLocation(tuple[tuple[str, ...], str | None]):
    """``(zones, state)`` of a phone number: its IANA zones (empty if unknown) and US state."""

    __slots__ = ()

    @property
    def zones(self) -> tuple[str, ...]:
        """The number's possible IANA time zones; empty when phonenumbers cannot tell."""
        return self[0]

    @property
    def state(self) -> str | None:
        """The presumed US state (two letters) if it has a rule in keylane, else ``None``."""
        return self[1]


@functools.lru_cache(maxsize=4096)
def phone_location(e164: str) -> PhoneLocation:
    """The zones and state of an E.164 number (already validated by the event schema).

    An unparseable number gives no zones and no state, so sends to it fall back to the brand's
    default zones (fail closed through the intersection rule).
    """
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return PhoneLocation(((), None))
    zones = tuple(
        sorted(z for z in phone_timezone.time_zones_for_number(number) if z != "Etc/Unknown")
    )
    state = None
    if number.country_code == 1:
        national = str(number.national_number)
        if len(national) == 10:
            state = AREA_CODE_STATES.get(int(national[:3]))
    return PhoneLocation((zones, state))


def candidate_zones(
    profile_zone: str | None, phone_zones: tuple[str, ...], brand_zones: tuple[str, ...]
) -> tuple[str, ...]:
    """The zones whose windows a send must respect, in resolution order.

    The profile's zone wins; else the phone number's zones (all of them: the caller intersects
    their windows); else the brand's default zones.
    """
    if profile_zone:
        return (profile_zone,)
    if phone_zones:
        return phone_zones
    return brand_zones


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> zoneinfo.ZoneInfo:
    """The ``ZoneInfo`` for an IANA name (cached)."""
    return zoneinfo.ZoneInfo(name)
