"""Frequency caps over rolling windows: boundaries, scope, the FL/OK legal cap."""

from __future__ import annotations

from datetime import timedelta

from keylane.audit import audit
from keylane.journeys import load_default_journeys
from tests.unit.audit.helpers import (
    FL_PHONE,
    LA_PHONE,
    NY_PHONE,
    OK_PHONE,
    delivery,
    journeys_with_extra_brand,
    local,
)

JOURNEYS = load_default_journeys()  # SMS 2 per 24 h and 5 per 7 d; email 3 per 24 h
T0 = local("America/New_York", 2026, 11, 27, 10, 0)
H = timedelta(hours=1)


def _capped(*deliveries: object, journeys: object = JOURNEYS) -> int:
    return audit(deliveries, journeys).counts["frequency_cap"]  # type: ignore[arg-type]


def test_the_third_sms_inside_24h_breaks_the_cap_and_at_24h_it_does_not() -> None:
    # A cap counts [s, s + 24 h): after sends at 10:00 and 11:00, 10:00 tomorrow is allowed
    first, second = delivery(T0), delivery(T0 + H)
    assert _capped(first, second, delivery(T0 + 24 * H)) == 0
    assert _capped(first, second, delivery(T0 + 24 * H - timedelta(milliseconds=1))) == 1


def test_a_violation_is_found_whichever_window_holds_it() -> None:
    # Sends at 10:00, 20:00 (+10 h) and 09:00 next day (+23 h): the third is 23 h after the first
    assert _capped(delivery(T0), delivery(T0 + 10 * H), delivery(T0 + 23 * H)) == 1
    # The same three out of order in the log
    assert _capped(delivery(T0 + 23 * H), delivery(T0), delivery(T0 + 10 * H)) == 1


def test_the_seven_day_cap() -> None:
    # Six sends 1.2 days apart keep 2 per 24 h but break 5 per 7 d (the sixth is day 6)
    step = timedelta(days=1.2)
    assert _capped(*(delivery(T0 + i * step) for i in range(6))) == 1
    # 1.4 days apart, the sixth is at exactly 7 days: allowed
    step = timedelta(days=1.4)
    assert _capped(*(delivery(T0 + i * step) for i in range(6))) == 0


def test_each_message_counts_once_even_over_two_rules() -> None:
    # Seven sends within an hour: messages 3..7 break 2/24 h, 6 and 7 also break 5/7 d
    report = audit([delivery(T0 + i * timedelta(minutes=5)) for i in range(7)], JOURNEYS)
    assert report.counts["frequency_cap"] == 5
    assert "the brand cap is 2 per 1d" in report.examples["frequency_cap"][0].detail


def test_caps_are_per_brand_recipient_and_channel_marketing_only() -> None:
    same_time = [T0, T0 + H, T0 + 2 * H]
    journeys = journeys_with_extra_brand()
    assert _capped(*(delivery(t, to=NY_PHONE) for t in same_time[:2]),
                   delivery(same_time[2], to=LA_PHONE)) == 0  # fmt: skip
    assert _capped(*(delivery(t, brand="acme") for t in same_time[:2]),
                   delivery(same_time[2], brand="loose"), journeys=journeys) == 0  # fmt: skip
    emails = [delivery(t, to="a@example.com", channel="email") for t in same_time]
    assert _capped(delivery(T0), delivery(T0 + H), *emails) == 0  # email: 3 per 24 h
    welcome = delivery(T0 - H, message_class="transactional", journey="welcome")
    assert _capped(welcome, delivery(T0), delivery(T0 + H)) == 0


def test_the_legal_cap_applies_to_florida_and_oklahoma_numbers_whatever_the_brand() -> None:
    # Brand "loose" allows 10 SMS per 24 h; FL and OK law allow 3
    journeys = journeys_with_extra_brand()
    four = [T0 + i * H for i in range(4)]
    for phone, expected in ((FL_PHONE, 1), (OK_PHONE, 1), (NY_PHONE, 0)):
        sends = [delivery(t, to=phone, brand="loose") for t in four]
        report = audit(sends, journeys)
        assert report.counts["frequency_cap"] == expected, phone
    report = audit([delivery(t, to=FL_PHONE, brand="loose") for t in four], journeys)
    assert "the FL law cap is 3 per 1d" in report.examples["frequency_cap"][0].detail
