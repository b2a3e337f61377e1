"""Quiet hours in the recipient's zones: edges, state rules, DST, several zones, email."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from keylane.audit import audit
from keylane.journeys import JourneySet, load_default_journeys
from tests.unit.audit.helpers import (
    AK_PHONE,
    CT_PHONE,
    FL_PHONE,
    LA_PHONE,
    MA_PHONE,
    NY_PHONE,
    OK_PHONE,
    delivery,
    journeys_with_extra_brand,
    local,
)

JOURNEYS: JourneySet = load_default_journeys()
NY, CHI, LA = "America/New_York", "America/Chicago", "America/Los_Angeles"


def _quiet(*deliveries: object, journeys: JourneySet = JOURNEYS, **kwargs: object) -> int:
    report = audit(deliveries, journeys, **kwargs)  # type: ignore[arg-type]
    return report.counts["quiet_hours"]


@pytest.mark.parametrize(
    ("phone", "zone", "hms", "violations"),
    [
        # federal [08:00, 21:00), half-open
        (NY_PHONE, NY, (7, 59, 59), 1),
        (NY_PHONE, NY, (8, 0, 0), 0),
        (NY_PHONE, NY, (20, 59, 59), 0),
        (NY_PHONE, NY, (21, 0, 0), 1),
        # Florida and Oklahoma [08:00, 20:00)
        (FL_PHONE, NY, (20, 30, 0), 1),
        (FL_PHONE, NY, (19, 59, 59), 0),
        (FL_PHONE, NY, (8, 0, 0), 0),
        (OK_PHONE, CHI, (20, 0, 0), 1),
        (OK_PHONE, CHI, (19, 59, 59), 0),
        (OK_PHONE, CHI, (7, 59, 59), 1),
        # Massachusetts [08:00, 20:00), Connecticut [09:00, 20:00)
        (MA_PHONE, NY, (20, 30, 0), 1),
        (CT_PHONE, NY, (8, 30, 0), 1),
        (CT_PHONE, NY, (9, 0, 0), 0),
    ],
)
def test_sms_window_edges_and_state_rules(
    phone: str, zone: str, hms: tuple[int, int, int], violations: int
) -> None:
    at = local(zone, 2026, 11, 27, *hms)
    assert _quiet(delivery(at, to=phone)) == violations


def test_a_microsecond_before_close_is_inside() -> None:
    at = local(NY, 2026, 11, 27, 20, 59, 59).replace(microsecond=999_999)
    assert _quiet(delivery(at)) == 0


@pytest.mark.parametrize(
    ("utc", "violations"),
    [
        # 2026-03-08: New York springs forward at 07:00 UTC; 08:00 EDT is 12:00 UTC
        (datetime(2026, 3, 8, 11, 59, 59, tzinfo=UTC), 1),
        (datetime(2026, 3, 8, 12, 0, 0, tzinfo=UTC), 0),
        # the day before, 08:00 EST is 13:00 UTC
        (datetime(2026, 3, 7, 12, 30, 0, tzinfo=UTC), 1),
        # 2026-11-01: falls back at 06:00 UTC; 08:00 EST is 13:00 UTC
        (datetime(2026, 11, 1, 12, 30, 0, tzinfo=UTC), 1),
        (datetime(2026, 11, 1, 13, 0, 0, tzinfo=UTC), 0),
        # 21:00 EST on the fall-back day is 02:00 UTC the next day
        (datetime(2026, 11, 2, 1, 59, 59, tzinfo=UTC), 0),
        (datetime(2026, 11, 2, 2, 0, 0, tzinfo=UTC), 1),
    ],
)
def test_dst_days_use_the_wall_clock(utc: datetime, violations: int) -> None:
    assert _quiet(delivery(utc)) == violations


def test_the_deliverys_zone_wins_over_the_numbers() -> None:
    # A New York number living in Los Angeles: 07:30 in LA is 10:30 in New York
    early = local(LA, 2026, 11, 27, 7, 30)
    assert _quiet(delivery(early, to=NY_PHONE, timezone=LA)) == 1
    assert _quiet(delivery(early, to=NY_PHONE)) == 0
    # 20:30 in LA is 23:30 in New York
    late = local(LA, 2026, 11, 27, 20, 30)
    assert _quiet(delivery(late, to=NY_PHONE, timezone=LA)) == 0


def test_a_number_with_several_zones_must_be_inside_in_all_of_them() -> None:
    # Adak is one hour behind Anchorage (UTC-10 and UTC-9 in November)
    assert _quiet(delivery(local("America/Anchorage", 2026, 11, 27, 8, 30), to=AK_PHONE)) == 1
    assert _quiet(delivery(local("America/Adak", 2026, 11, 27, 9, 0), to=AK_PHONE)) == 0
    assert _quiet(delivery(local("America/Adak", 2026, 11, 27, 20, 30), to=AK_PHONE)) == 1


def test_a_toll_free_number_without_a_zone_is_never_inside() -> None:
    # phonenumbers places toll-free numbers in every NANP zone; their windows never overlap
    assert _quiet(delivery(local(NY, 2026, 11, 27, 12, 0), to="+18005550123")) == 1
    assert _quiet(delivery(local(NY, 2026, 11, 27, 12, 0), to="+18005550123", timezone=NY)) == 0


@pytest.mark.parametrize(
    ("hms", "violations"),
    # the brand's four zones: 07:00 Los Angeles is 10:00 New York; 22:00 New York closes it
    [((9, 59, 59), 1), ((10, 0, 0), 0), ((21, 59, 59), 0), ((22, 0, 0), 1)],
)
def test_email_of_unknown_zone_uses_the_brand_email_window_in_all_default_zones(
    hms: tuple[int, int, int], violations: int
) -> None:
    at = local(NY, 2026, 11, 27, *hms)
    email = delivery(at, to="ann@example.com", channel="email", step="cart_email")
    assert _quiet(email) == violations


def test_email_zones_come_from_the_subscribers_phone_when_known() -> None:
    # 23:00 in New York is 20:00 in Los Angeles: outside in the brand's zone, inside in LA
    at = local(NY, 2026, 11, 27, 23, 0)
    email = delivery(at, to="ann@example.com", channel="email", step="cart_email")
    assert _quiet(email) == 1
    assert _quiet(email, phones={"acme:u1": LA_PHONE}) == 0
    # learnt from the subscriber's own SMS in the log (a transactional one, any time)
    sms = delivery(local(NY, 2026, 11, 27, 3, 0), to=LA_PHONE, message_class="transactional")
    assert _quiet(email, sms) == 0


def test_transactional_messages_ignore_quiet_hours() -> None:
    at = local(NY, 2026, 11, 27, 3, 0)
    assert _quiet(delivery(at, message_class="transactional", journey="welcome")) == 0


def test_the_brand_window_and_zones_narrow_the_law() -> None:
    journeys = journeys_with_extra_brand()
    # brand "loose": SMS 10:00-18:00
    at = local(NY, 2026, 11, 27, 9, 30)
    assert _quiet(delivery(at, brand="loose"), journeys=journeys) == 1
    assert _quiet(delivery(at, brand="acme"), journeys=journeys) == 0
    # its default zones are New York and Los Angeles: an email at 07:30 in New York is 04:30 LA
    email = delivery(
        local(NY, 2026, 11, 27, 7, 30), to="b@example.com", channel="email", brand="loose"
    )
    assert _quiet(email, journeys=journeys) == 1
    email = delivery(
        local(NY, 2026, 11, 27, 11, 0), to="b@example.com", channel="email", brand="loose"
    )
    assert _quiet(email, journeys=journeys) == 0


def test_the_example_says_where_and_why() -> None:
    report = audit([delivery(local(NY, 2026, 11, 27, 20, 30), to=FL_PHONE)], JOURNEYS)
    (example,) = report.examples["quiet_hours"]
    assert example.detail == (
        "2026-11-27 20:30:00 in America/New_York is outside [08:00, 20:00) (federal ∩ FL ∩ brand)"
    )
    assert example.to.endswith("0123")
    assert FL_PHONE not in example.to
