"""zones: a number's zones and state; the resolution order profile -> phone -> brand."""

from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import geocoder

from keylane.journeys.policies.zones import AREA_CODE_STATES, candidate_zones, phone_location

from .helpers import AK_PHONE, CA_PHONE, FL_PHONE, OK_PHONE

STATE_NAMES = {"FL": "Florida", "OK": "Oklahoma", "MD": "Maryland", "MA": "Massachusetts",
               "CT": "Connecticut", "NV": "Nevada", "MI": "Michigan", "MN": "Minnesota",
               "NM": "New Mexico", "KY": "Kentucky"}  # fmt: skip


@pytest.mark.parametrize(("code", "state"), sorted(AREA_CODE_STATES.items()))
def test_the_area_code_table_agrees_with_the_phonenumbers_geocoder(code, state):
    # The geocoder's text is not a stable key (so it is not used at run time), but it should
    # place every number of the table's area codes in the table's state.
    number = phonenumbers.parse(f"+1{code}2345678", None)
    description = geocoder.description_for_number(number, "en")
    assert description == STATE_NAMES[state] or description.endswith(f", {state}")


def test_florida_oklahoma_and_california_numbers():
    assert phone_location(FL_PHONE) == (("America/New_York",), "FL")
    assert phone_location(OK_PHONE) == (("America/Chicago",), "OK")
    assert phone_location(CA_PHONE) == (("America/Los_Angeles",), None)
    assert phone_location(FL_PHONE).state == "FL"


def test_a_number_with_several_zones_keeps_all_of_them():
    assert phone_location(AK_PHONE).zones == ("America/Adak", "America/Anchorage")


def test_a_non_us_number_has_zones_but_no_state():
    location = phone_location("+447911123456")
    assert "Europe/London" in location.zones
    assert location.state is None


def test_resolution_order_profile_then_phone_then_brand():
    brand = ("America/New_York",)
    assert candidate_zones("Europe/Paris", ("America/Chicago",), brand) == ("Europe/Paris",)
    assert candidate_zones(None, ("America/Adak", "America/Anchorage"), brand) == (
        "America/Adak",
        "America/Anchorage",
    )
    assert candidate_zones(None, (), brand) == brand
