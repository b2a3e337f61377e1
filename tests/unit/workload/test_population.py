"""The synthetic subscribers: real area codes in every US zone, FL/OK numbers, mixed profiles."""

from __future__ import annotations

import random
from collections import Counter

import phonenumbers
from phonenumbers import timezone as phone_timezone

from keylane.journeys.policies.zones import AREA_CODE_STATES
from keylane.workload.population import AREA_CODES, Subscriber, brand_ids, make_subscribers


def _people(count: int = 4_000, seed: int = 3) -> list[Subscriber]:
    return make_subscribers(
        random.Random(seed),
        brands=brand_ids(5),
        count=count,
        new_share=0.05,
        timezone_share=0.4,
        email_only_share=0.05,
        sms_only_share=0.05,
        sms_consent_share=0.9,
        email_consent_share=0.8,
    )


def test_every_number_is_valid_and_in_the_zones_the_table_expects() -> None:
    # Given a population
    by_code = {a.code: a for a in AREA_CODES}
    for who in _people():
        if who.phone is None:
            continue
        # Then phonenumbers accepts the number and places it in its area code's zones
        number = phonenumbers.parse(who.phone, None)
        assert phonenumbers.is_valid_number(number), who.phone
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == who.phone
        zones = set(phone_timezone.time_zones_for_number(number))
        assert zones <= by_code[int(who.phone[2:5])].zones, (who.phone, zones)


def test_the_table_agrees_with_the_engines_state_table() -> None:
    for area in AREA_CODES:
        if area.code in AREA_CODE_STATES:
            assert AREA_CODE_STATES[area.code] == area.state, area.code
    states = {a.state for a in AREA_CODES}
    assert {"FL", "OK"} <= states


def test_numbers_cover_every_us_zone_and_florida_and_oklahoma() -> None:
    zones: Counter[str] = Counter()
    states: Counter[str] = Counter()
    multi = 0
    for who in _people():
        if who.phone is None:
            continue
        found = phone_timezone.time_zones_for_number(phonenumbers.parse(who.phone, None))
        zones.update(found)
        multi += len(found) > 1
        states[AREA_CODE_STATES.get(int(who.phone[2:5]), "other")] += 1
    expected = {
        "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
        "America/Los_Angeles", "America/Anchorage", "Pacific/Honolulu",
    }  # fmt: skip
    assert expected <= set(zones)
    assert states["FL"] > 0
    assert states["OK"] > 0
    assert multi > 0  # some numbers have several zones (fail-closed resolution)
    # Eastern is the largest zone, then Central, as in the US population
    assert zones["America/New_York"] > zones["America/Chicago"] > zones["America/Los_Angeles"]


def test_profiles_mix_zones_channels_and_consent() -> None:
    people = _people()
    assert len({p.phone for p in people if p.phone}) == sum(1 for p in people if p.phone)
    assert len({p.subscriber_id for p in people}) == len(people)
    with_zone = sum(p.timezone is not None for p in people) / len(people)
    assert 0.35 < with_zone < 0.45
    email_only = sum(p.phone is None for p in people)
    sms_only = sum(p.email is None for p in people)
    assert email_only > 0
    assert sms_only > 0
    assert all(p.phone or p.email for p in people)
    assert {p.sms_consent for p in people if p.phone} == {True, False}
    assert {p.email_consent for p in people if p.email} == {True, False}
    assert not any(p.sms_consent for p in people if p.phone is None)
    assert 0.03 < sum(p.new for p in people) / len(people) < 0.07
    # The first brand is the largest
    sizes = Counter(p.brand_id for p in people)
    assert sizes.most_common(1)[0][0] == brand_ids(5)[0]


def test_same_seed_same_people() -> None:
    assert _people(500, 9) == _people(500, 9)
    assert _people(500, 9) != _people(500, 10)


def test_brand_ids_are_valid_and_unique() -> None:
    ids = brand_ids(12)
    assert len(set(ids)) == 12
    assert ids[0] == "acme"
    assert ids[-1] == "brand-12"


def test_profile_zones_are_mostly_the_area_codes_home() -> None:
    from zoneinfo import ZoneInfo

    by_code = {a.code: a for a in AREA_CODES}
    zoned = [p for p in _people() if p.phone and p.timezone]
    home = sum(p.timezone == by_code[int(p.phone[2:5])].home for p in zoned)  # type: ignore[index]
    assert 0.9 < home / len(zoned) < 1.0  # about 5% moved elsewhere
    for p in _people():
        if p.timezone:
            ZoneInfo(p.timezone)
