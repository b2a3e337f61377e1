"""Properties: a log built only of compliant sends is clean; one late send makes it dirty.

The compliant sends are built from hand-written windows (not from the audit's code): for each
recipient the local window it may receive marketing in, in a zone where that window holds in
every candidate zone; marketing to one recipient on one channel at most once every other day;
nothing between a STOP and its START but one confirmation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from keylane.audit import ConsentChange, audit
from keylane.journeys import load_default_journeys
from keylane.providers import Delivery
from tests.unit.audit.helpers import AK_PHONE, CT_PHONE, FL_PHONE, LA_PHONE, NY_PHONE, OK_PHONE

JOURNEYS = load_default_journeys()  # brand SMS 08:00-21:00, email 07:00-22:00, New York


@dataclass(frozen=True)
class Recipient:
    """Where a subscriber is and when marketing may reach them (by hand, from the rules)."""

    subscriber: str
    channel: str
    to: str
    timezone: str | None
    zone: str  # the zone the window below is written in
    open_minute: int
    close_minute: int


RECIPIENTS = (
    Recipient("ny", "sms", NY_PHONE, None, "America/New_York", 8 * 60, 21 * 60),
    Recipient("fl", "sms", FL_PHONE, None, "America/New_York", 8 * 60, 20 * 60),
    Recipient("ok", "sms", OK_PHONE, None, "America/Chicago", 8 * 60, 20 * 60),
    Recipient("ct", "sms", CT_PHONE, None, "America/New_York", 9 * 60, 20 * 60),
    Recipient("la", "sms", LA_PHONE, "America/Los_Angeles", "America/Los_Angeles", 480, 1260),
    # Adak is always one hour behind Anchorage: 08:00 Adak is 09:00 Anchorage
    Recipient("ak", "sms", AK_PHONE, None, "America/Anchorage", 9 * 60, 21 * 60),
    Recipient("hi", "sms", NY_PHONE[:-1] + "9", "Pacific/Honolulu", "Pacific/Honolulu", 480, 1260),
    # no zone known: the brand's four zones, so 07:00 in Los Angeles (10:00 New York) to 22:00
    # New York
    Recipient("em", "email", "em@example.com", None, "America/New_York", 10 * 60, 22 * 60),
    Recipient("el", "email", "el@example.com", "America/Los_Angeles", "America/Los_Angeles",
              7 * 60, 22 * 60),
)  # fmt: skip
#: First days around both 2026 DST changes and Black Friday.
BASES = (datetime(2026, 3, 1), datetime(2026, 10, 25), datetime(2026, 11, 20))

_keys = itertools.count()


def _send(r: Recipient, at: datetime, message_class: str = "marketing", **kw: str) -> Delivery:
    return Delivery(
        idempotency_key=f"p{next(_keys)}",
        channel=r.channel,  # type: ignore[arg-type]
        to=r.to,
        brand_id="acme",
        subscriber_id=r.subscriber,
        journey=kw.get("journey", "browse_abandonment"),
        step=kw.get("step", "browse_sms"),
        body="hi",
        message_class=message_class,  # type: ignore[arg-type]
        sent_at=at,
        subscriber_timezone=r.timezone,
    )


def _local(r: Recipient, base: datetime, day: int, second: int) -> datetime:
    wall = base + timedelta(days=day, seconds=second)
    return wall.replace(tzinfo=ZoneInfo(r.zone)).astimezone(UTC)


@st.composite
def compliant_logs(draw: st.DrawFn) -> tuple[list[Delivery], list[ConsentChange]]:
    base = draw(st.sampled_from(BASES))
    log: list[Delivery] = []
    changes: list[ConsentChange] = []
    for r in draw(st.lists(st.sampled_from(RECIPIENTS), min_size=1, max_size=6, unique=True)):
        days = draw(st.lists(st.integers(0, 10), max_size=8, unique=True))
        sends = []
        for day in sorted(days):
            second = draw(st.integers(r.open_minute * 60, r.close_minute * 60 - 1))
            sends.append(_send(r, _local(r, base, 2 * day, second)))
        for _ in range(draw(st.integers(0, 3))):  # transactional: any time
            at = _local(r, base, draw(st.integers(0, 20)), draw(st.integers(0, 86_399)))
            sends.append(_send(r, at, "transactional", journey="welcome", step="welcome_sms"))
        if draw(st.booleans()):
            stop_at = _local(r, base, draw(st.integers(0, 20)), draw(st.integers(0, 86_399)))
            start_at = stop_at + timedelta(hours=draw(st.integers(1, 200)))
            key = f"acme:{r.subscriber}"
            changes.append(ConsentChange(key, stop_at, opted_in=False))
            if draw(st.booleans()):
                changes.append(ConsentChange(key, start_at, opted_in=True))
            else:
                start_at = datetime.max.replace(tzinfo=UTC)
            sends = [s for s in sends if not stop_at <= s.sent_at < start_at]
            confirm = stop_at + timedelta(seconds=1)
            sends.append(
                _send(r, confirm, "transactional", journey="_system", step="stop_confirmation")
            )
        log.extend(sends)
    order = draw(st.permutations(range(len(log))))
    return [log[i] for i in order], changes


@settings(max_examples=80, deadline=None)
@given(compliant_logs())
def test_a_log_of_compliant_sends_is_clean(
    case: tuple[list[Delivery], list[ConsentChange]],
) -> None:
    log, changes = case
    report = audit(log, JOURNEYS, changes)
    assert report.clean, report.to_json()
    assert report.deliveries == len(log)


@settings(max_examples=40, deadline=None)
@given(compliant_logs(), st.data())
def test_one_send_at_closing_time_is_found(
    case: tuple[list[Delivery], list[ConsentChange]], data: st.DataObject
) -> None:
    # Given a compliant log and one more marketing SMS at its window's closing minute
    log, changes = case
    r = data.draw(st.sampled_from([r for r in RECIPIENTS if r.channel == "sms"]))
    base = data.draw(st.sampled_from(BASES))
    late = _send(r, _local(r, base, 41, r.close_minute * 60))
    # Then the audit finds it (and only quiet hours can be broken by it: day 41 is alone)
    report = audit([*log, late], JOURNEYS, changes)
    assert report.counts["quiet_hours"] >= 1
    assert any(v.idempotency_key == late.idempotency_key for v in report.examples["quiet_hours"])
