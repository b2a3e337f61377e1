"""Builders for the audit tests: deliveries, journeys with extra brands, consent changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from importlib.resources import files
from zoneinfo import ZoneInfo

from keylane.audit import ConsentChange
from keylane.journeys import JourneySet, parse_journeys
from keylane.providers import Delivery

NY_PHONE = "+12125550123"  # New York: America/New_York, no state rule
FL_PHONE = "+13055550123"  # Miami: America/New_York, Florida (08:00-20:00, 3 per 24 h)
OK_PHONE = "+14055550123"  # Oklahoma City: America/Chicago, Oklahoma
MA_PHONE = "+16175550123"  # Boston: Massachusetts (08:00-20:00)
CT_PHONE = "+12035550123"  # Connecticut (09:00-20:00)
LA_PHONE = "+12135550123"  # Los Angeles
AK_PHONE = "+19075550123"  # Alaska: America/Adak and America/Anchorage

_EXTRA = """
[brands.loose]
timezone = ["America/New_York", "America/Los_Angeles"]
sms_window = { open = "10:00", close = "18:00" }

[brands.loose.caps]
sms = [{ limit = 10, window = "24h" }]
email = [{ limit = 10, window = "24h" }]
"""


def journeys_with_extra_brand() -> JourneySet:
    """The default journeys plus brand ``loose``: zones NY and LA, SMS 10:00-18:00, 10 per 24 h."""
    text = files("keylane.journeys").joinpath("default.toml").read_text(encoding="utf-8")
    return parse_journeys(text + _EXTRA, "test-journeys")


def local(zone: str, year: int, month: int, day: int, *hms: int) -> datetime:
    """A local wall-clock time in ``zone`` (hour, minute, second optional), as UTC."""
    hour, minute, second = (*hms, 0, 0, 0)[:3]
    wall = datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(zone))
    return wall.astimezone(UTC)


_keys = itertools.count(1)


def delivery(
    sent_at: datetime,
    *,
    to: str = NY_PHONE,
    channel: str = "sms",
    message_class: str = "marketing",
    timezone: str | None = None,
    brand: str = "acme",
    subscriber: str = "u1",
    journey: str = "cart_abandonment",
    step: str = "cart_sms",
    key: str | None = None,
) -> Delivery:
    """One delivered message (a fresh idempotency key unless ``key`` is given)."""
    return Delivery(
        idempotency_key=key or f"k{next(_keys):06d}",
        channel=channel,  # type: ignore[arg-type]
        to=to,
        brand_id=brand,
        subscriber_id=subscriber,
        journey=journey,
        step=step,
        body="hello",
        message_class=message_class,  # type: ignore[arg-type]
        sent_at=sent_at.astimezone(UTC),
        subscriber_timezone=timezone,
    )


def stop(at: datetime, key: str = "acme:u1") -> ConsentChange:
    """An opt-out."""
    return ConsentChange(key, at, opted_in=False)


def start(at: datetime, key: str = "acme:u1") -> ConsentChange:
    """An opt-in."""
    return ConsentChange(key, at, opted_in=True)
