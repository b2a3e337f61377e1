"""The synthetic subscribers of the Black Friday workload: brands, phones, zones, consent.

Each subscriber belongs to one brand and has a phone (E.164, from a real US area code), an email
address, or both; consent per channel; and sometimes a profile ``timezone``. Area codes are drawn
with weights close to each zone's share of the US population, and the table below records the
zones phonenumbers gives for each (tests/unit/workload/test_population.py checks every generated
number against it), so the workload covers:

- every US zone: Eastern, Central, Mountain (with Arizona's ``America/Phoenix``), Pacific,
  Alaska and Hawaii;
- Florida and Oklahoma numbers (their 08:00-20:00 rule and 3-per-24 h cap), and numbers of the
  other states with hour rules (MA, MD, CT, MI, MN, NM, NV, KY);
- numbers with several zones (some 208, 907 exchanges) and area codes split between zones
  (850: Eastern or Central by exchange; 606), so a recipient without a profile zone must be
  resolved by the intersection of windows (fail closed).

Pure: imports the standard library only (numbers are built as text; their validity is a test).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AREA_CODES",
    "BRAND_NAMES",
    "US_ZONES",
    "AreaCode",
    "Subscriber",
    "brand_ids",
    "make_subscribers",
]

#: The brand ids of the first brands; more are ``brand-<n>``.
BRAND_NAMES = ("acme", "bluebird", "cedar", "dunmore", "evergreen", "foxglove", "granite")


@dataclass(frozen=True, slots=True)
class AreaCode:
    """A US area code: its weight in the draw, the zones phonenumbers gives its numbers, the
    zone most of its subscribers live in (``home``, for profile zones) and its state."""

    code: int
    weight: float
    zones: frozenset[str]
    home: str
    state: str


def _ac(code: int, weight: float, state: str, home: str, *others: str) -> AreaCode:
    return AreaCode(code, weight, frozenset((home, *others)), home, state)


_ET, _CT, _MT, _PT = "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"

#: The area codes drawn, with weights (percent of subscribers) and phonenumbers' zones.
AREA_CODES: tuple[AreaCode, ...] = (
    # Eastern (about 47%)
    _ac(212, 5.0, "NY", _ET), _ac(718, 4.0, "NY", _ET), _ac(617, 3.0, "MA", _ET),
    _ac(404, 4.0, "GA", _ET), _ac(305, 3.5, "FL", _ET), _ac(407, 3.0, "FL", _ET),
    _ac(813, 2.5, "FL", _ET), _ac(954, 2.0, "FL", _ET), _ac(904, 1.5, "FL", _ET),
    _ac(313, 2.0, "MI", _ET), _ac(704, 3.0, "NC", _ET), _ac(215, 3.0, "PA", _ET),
    _ac(410, 2.5, "MD", _ET), _ac(203, 2.0, "CT", _ET), _ac(614, 3.0, "OH", _ET),
    _ac(202, 1.5, "DC", _ET), _ac(606, 0.5, "KY", _ET, _CT),
    # Florida's panhandle: Eastern or Central by exchange
    _ac(850, 1.0, "FL", _ET, _CT),
    # Central (about 29%)
    _ac(312, 5.0, "IL", _CT), _ac(214, 4.0, "TX", _CT), _ac(713, 4.0, "TX", _CT),
    _ac(405, 2.0, "OK", _CT), _ac(918, 2.0, "OK", _CT), _ac(615, 2.5, "TN", _CT),
    _ac(612, 2.5, "MN", _CT), _ac(504, 2.0, "LA", _CT), _ac(314, 2.0, "MO", _CT),
    _ac(414, 2.0, "WI", _CT), _ac(316, 1.0, "KS", _CT),
    # Mountain (about 7%), Arizona without DST
    _ac(303, 2.5, "CO", _MT), _ac(602, 2.5, "AZ", "America/Phoenix"), _ac(505, 1.0, "NM", _MT),
    _ac(801, 1.0, "UT", _MT),
    # Idaho: Mountain, Pacific, or both (America/Boise + America/Los_Angeles) by exchange
    _ac(208, 0.5, "ID", _MT, _PT, "America/Boise"),
    # Pacific (about 16%)
    _ac(213, 4.0, "CA", _PT), _ac(310, 3.0, "CA", _PT), _ac(415, 3.0, "CA", _PT),
    _ac(206, 2.5, "WA", _PT), _ac(503, 2.0, "OR", _PT), _ac(702, 1.5, "NV", _PT),
    # Alaska: some exchanges map to Adak + Anchorage, some to Juneau (one to Honolulu)
    _ac(907, 0.4, "AK", "America/Anchorage", "America/Adak", "America/Juneau", "Pacific/Honolulu"),
    # Hawaii
    _ac(808, 0.5, "HI", "Pacific/Honolulu"),
)  # fmt: skip

_BY_CODE = {area.code: area for area in AREA_CODES}

#: The zones of a profile ``timezone`` when one is given (and for email-only subscribers).
US_ZONES: tuple[tuple[str, float], ...] = (
    (_ET, 47.0),
    (_CT, 29.0),
    (_MT, 5.0),
    ("America/Phoenix", 2.0),
    (_PT, 16.0),
    ("America/Anchorage", 0.4),
    ("Pacific/Honolulu", 0.5),
)

_FIRST_NAMES = (
    "Ava", "Ben", "Chloe", "Diego", "Emma", "Farah", "Grace", "Hiro", "Isla", "Jamal", "Kira",
    "Liam", "Maya", "Noah", "Olivia", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Vera",
    "Wei", "Xavier", "Yara", "Zoe",
)  # fmt: skip
_TIERS = ("bronze", "silver", "gold", "platinum")
_EMAIL_DOMAINS = ("example.com", "example.net", "example.org")


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One synthetic subscriber.

    Attributes:
        brand_id: the brand.
        subscriber_id: unique within the whole workload.
        phone: E.164, or None (email-only).
        email: the address, or None (SMS-only).
        timezone: the profile's IANA zone, or None (the engine must resolve it).
        sms_consent: consent for marketing SMS (only meaningful with a phone).
        email_consent: consent for marketing email (only meaningful with an email).
        first_name: a profile attribute the templates use.
        tier: a profile attribute.
        activity: relative shopping activity (heavy-tailed; sessions are drawn by it).
        new: subscribes during the day (``subscribed``) rather than being known already.
    """

    brand_id: str
    subscriber_id: str
    phone: str | None
    email: str | None
    timezone: str | None
    sms_consent: bool
    email_consent: bool
    first_name: str
    tier: str
    activity: float
    new: bool

    @property
    def key(self) -> str:
        """The engine's key, ``"<brand_id>:<subscriber_id>"``."""
        return f"{self.brand_id}:{self.subscriber_id}"


def brand_ids(count: int) -> tuple[str, ...]:
    """The ids of ``count`` brands."""
    return tuple(BRAND_NAMES[i] if i < len(BRAND_NAMES) else f"brand-{i + 1}" for i in range(count))


def _phone(rng: random.Random, codes: Sequence[AreaCode], weights: Sequence[float]) -> str:
    code = rng.choices(codes, cum_weights=weights)[0].code
    while True:
        exchange = rng.randint(200, 999)
        if exchange % 100 != 11 and exchange != 555:  # no N11 service codes, no 555
            return f"+1{code}{exchange}{rng.randint(0, 9999):04d}"


def _zone_of(phone: str | None, rng: random.Random) -> str:
    """A plausible profile zone: usually the area code's, sometimes elsewhere (moved)."""
    if phone is not None and rng.random() >= 0.05:
        return _BY_CODE[int(phone[2:5])].home
    zones = [name for name, _ in US_ZONES]
    return rng.choices(zones, weights=[weight for _, weight in US_ZONES])[0]


def make_subscribers(
    rng: random.Random,
    *,
    brands: Sequence[str],
    count: int,
    new_share: float,
    timezone_share: float,
    email_only_share: float,
    sms_only_share: float,
    sms_consent_share: float,
    email_consent_share: float,
    activity_sigma: float = 1.0,
) -> list[Subscriber]:
    """``count`` subscribers spread over ``brands`` (the first brands are the largest).

    Phones are unique across the workload. ``activity`` is lognormal (median 1), so a few
    subscribers shop much more than most.
    """
    brand_weights = _cumulative([1.0 / (i + 1) ** 0.7 for i in range(len(brands))])
    code_weights = _cumulative([a.weight for a in AREA_CODES])
    phones: set[str] = set()
    out: list[Subscriber] = []
    for index in range(count):
        subscriber_id = f"u{index + 1:07d}"
        roll = rng.random()
        has_phone = roll >= email_only_share
        has_email = roll < 1.0 - sms_only_share
        phone = None
        if has_phone:
            phone = _phone(rng, AREA_CODES, code_weights)
            while phone in phones:
                phone = _phone(rng, AREA_CODES, code_weights)
            phones.add(phone)
        domain = rng.choice(_EMAIL_DOMAINS)
        email = f"{subscriber_id}@{domain}" if has_email else None
        zone = _zone_of(phone, rng) if rng.random() < timezone_share else None
        out.append(
            Subscriber(
                brand_id=rng.choices(brands, cum_weights=brand_weights)[0],
                subscriber_id=subscriber_id,
                phone=phone,
                email=email,
                timezone=zone,
                sms_consent=phone is not None and rng.random() < sms_consent_share,
                email_consent=email is not None and rng.random() < email_consent_share,
                first_name=rng.choice(_FIRST_NAMES),
                tier=rng.choice(_TIERS),
                activity=rng.lognormvariate(0.0, activity_sigma),
                new=rng.random() < new_share,
            )
        )
    return out


def _cumulative(weights: Sequence[float]) -> list[float]:
    total = 0.0
    out = []
    for weight in weights:
        total += weight
        out.append(total)
    return out
