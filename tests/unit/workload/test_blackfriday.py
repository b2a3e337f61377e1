"""The generated Black Friday day: size, mix, order, validity and every pattern it promises."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import timezone as phone_timezone

from keylane.journeys import Event, EventType, parse_event
from keylane.journeys.policies.consent import Keyword, classify
from keylane.journeys.policies.zones import AREA_CODE_STATES
from keylane.runtime.codec import encode_event
from keylane.workload import BlackFridaySpec, generate, summarize
from keylane.workload.blackfriday import CART_SMS_DELAY_MS, STOP_TEXTS
from tests.unit.workload.conftest import SMALL

_INTRODUCTIONS = (EventType.SUBSCRIBED, EventType.PROFILE_UPDATED)


def _by_key(events: list[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        out[event.key].append(event)
    return out


def test_default_day_is_150k_to_250k_events_in_the_target_mix(default_day: list[Event]) -> None:
    # Given the default day
    spec = BlackFridaySpec()
    summary = summarize(default_day)
    # Then its size is in the promised range
    assert 150_000 <= summary.events <= 250_000
    # And each shopping type is within tolerance of its target share
    target = spec.mix.shares()
    shares = summary.shopping_shares
    assert shares["product_viewed"] == pytest.approx(target["product_viewed"], abs=0.005)
    assert shares["added_to_cart"] == pytest.approx(target["added_to_cart"], rel=0.10)
    assert shares["checkout_started"] == pytest.approx(target["checkout_started"], rel=0.15)
    assert shares["order_placed"] == pytest.approx(target["order_placed"], rel=0.15)
    assert shares["message_clicked"] == pytest.approx(target["message_clicked"], rel=0.30)
    assert summary.brands == spec.brands


def test_events_are_sorted_unique_and_inside_the_day(small_day: list[Event]) -> None:
    times = [e.occurred_at for e in small_day]
    assert times == sorted(times)
    assert len({e.event_id for e in small_day}) == len(small_day)
    assert SMALL.start <= times[0]
    assert times[-1] < SMALL.end


def test_every_event_is_valid_and_survives_the_wire(small_day: list[Event]) -> None:
    for event in small_day:
        assert parse_event(encode_event(event)) == event


def test_the_same_spec_gives_the_same_day() -> None:
    spec = BlackFridaySpec(subscribers=400, bot_views=50, seed=5)
    assert generate(spec) == generate(spec)
    assert generate(spec) != generate(BlackFridaySpec(subscribers=400, bot_views=50, seed=6))


def test_each_subscriber_is_introduced_once_before_anything_else(small_day: list[Event]) -> None:
    for key, events in _by_key(small_day).items():
        # The first event tells the engine the phone, email and consent
        assert events[0].type in _INTRODUCTIONS, key
        assert sum(e.type in _INTRODUCTIONS for e in events) == 1, key
        assert all(e.occurred_at > events[0].occurred_at for e in events[1:]), key


def test_new_subscriptions_are_a_share_of_subscribers(small_day: list[Event]) -> None:
    subscribed = sum(e.type is EventType.SUBSCRIBED for e in small_day)
    expected = SMALL.subscribers * SMALL.new_subscriber_share
    assert 0.7 * expected < subscribed < 1.3 * expected
    crm = [e for e in small_day if e.type is EventType.PROFILE_UPDATED]
    assert crm
    assert {e.properties["source"] for e in crm} == {"crm_sync"}


def test_profiles_span_zones_states_channels_and_consent(small_day: list[Event]) -> None:
    profiles = [e.properties for e in small_day if e.type in _INTRODUCTIONS]
    zones: set[str] = set()
    states: Counter[str] = Counter()
    for p in profiles:
        if "phone" in p:
            number = phonenumbers.parse(p["phone"], None)
            zones.update(phone_timezone.time_zones_for_number(number))
            states[AREA_CODE_STATES.get(int(p["phone"][2:5]), "-")] += 1
    assert {
        "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
        "Pacific/Honolulu",
    } <= zones  # fmt: skip
    assert states["FL"] > 0
    assert states["OK"] > 0
    assert any("timezone" in p for p in profiles)
    assert any("timezone" not in p for p in profiles)
    assert any("phone" not in p for p in profiles)  # email-only
    assert any("email" not in p for p in profiles)  # SMS-only
    assert {p["consent"].get("sms") for p in profiles if "phone" in p} == {True, False}
    assert {p["consent"].get("email") for p in profiles if "email" in p} == {True, False}


def test_the_day_peaks_around_noon_eastern_and_is_quiet_at_night(default_day: list[Event]) -> None:
    # Given the hour (Eastern) each session starts
    eastern = ZoneInfo("America/New_York")
    starts: dict[str, int] = {}
    for e in default_day:
        session = e.properties.get("session_id")
        if isinstance(session, str) and e.subscriber_id != "bot-0001":
            starts.setdefault(session, e.occurred_at.astimezone(eastern).hour)
    hours = Counter(starts.values())
    # Then the busiest hour is around noon and the small hours are quiet
    assert 11 <= max(hours, key=lambda h: hours[h]) <= 13
    assert hours[11] + hours[12] + hours[13] > hours[16] + hours[17] + hours[18]
    assert hours[12] > 5 * hours[4]


def test_sessions_are_geometric_with_gaps_of_seconds_to_minutes(small_day: list[Event]) -> None:
    sessions: dict[str, list[Event]] = defaultdict(list)
    for e in small_day:
        if e.type is EventType.PRODUCT_VIEWED and e.subscriber_id != "bot-0001":
            sessions[e.properties["session_id"]].append(e)
    sizes = [len(v) for v in sessions.values()]
    assert sum(sizes) / len(sizes) == pytest.approx(SMALL.mean_views_per_session, rel=0.1)
    assert Counter(sizes).most_common(1)[0][0] == 1  # geometric: one view is the commonest
    gaps = [
        (b.occurred_at - a.occurred_at).total_seconds()
        for views in sessions.values()
        for a, b in itertools.pairwise(views)
    ]
    assert min(gaps) >= 1.0
    assert max(gaps) <= 600.0
    assert 10 < sorted(gaps)[len(gaps) // 2] < 40  # median about 20 s


def test_shopping_events_carry_realistic_properties(small_day: list[Event]) -> None:
    for e in small_day:
        p = e.properties
        if e.type is EventType.PRODUCT_VIEWED:
            assert p["sku"].startswith("SKU-")
            assert p["product_name"]
            assert p["price"] > 0
        elif e.type is EventType.ADDED_TO_CART:
            assert p["cart_id"] in p["cart_url"]
            assert p["sku"].startswith("SKU-")
        elif e.type is EventType.ORDER_PLACED:
            assert p["order_id"].startswith("order-")
            assert p["value"] > 0


def test_orders_follow_a_checkout_which_follows_a_cart(small_day: list[Event]) -> None:
    for events in _by_key(small_day).values():
        carts: set[str] = set()
        checkouts: set[str] = set()
        for e in events:
            if e.type is EventType.ADDED_TO_CART:
                carts.add(e.properties["cart_id"])
            elif e.type is EventType.CHECKOUT_STARTED:
                assert e.properties["cart_id"] in carts
                checkouts.add(e.properties["cart_id"])
            elif e.type is EventType.ORDER_PLACED:
                assert e.properties["cart_id"] in checkouts


def test_replies_include_stop_variants_start_after_stop_and_help(small_day: list[Event]) -> None:
    texts = [e for e in small_day if e.type is EventType.SMS_RECEIVED]
    kinds = Counter(classify(e.properties["text"]) for e in texts)
    assert kinds[Keyword.OPT_OUT] > 0
    assert kinds[Keyword.OPT_IN] > 0
    assert kinds[Keyword.HELP] > 0
    assert kinds[Keyword.NONE] > 0
    stops = {
        e.properties["text"] for e in texts if classify(e.properties["text"]) is Keyword.OPT_OUT
    }
    assert len(stops) >= 4  # "STOP", "stop", "Stop.", "UNSUBSCRIBE", "opt out", ...
    # Every START comes after a STOP of the same subscriber
    for events in _by_key(small_day).values():
        stopped = False
        for e in events:
            if e.type is EventType.SMS_RECEIVED:
                kind = classify(e.properties["text"])
                stopped = stopped or kind is Keyword.OPT_OUT
                if kind is Keyword.OPT_IN:
                    assert stopped


def test_every_stop_text_is_an_opt_out_keyword() -> None:
    for text, _ in STOP_TEXTS:
        assert classify(text) is Keyword.OPT_OUT, text


def test_adversarial_fast_checkout_hot_key_and_stop_races(small_day: list[Event]) -> None:
    summary = summarize(small_day)
    # Cart and purchase within one second
    assert summary.fast_orders > 0
    # One hot key with the bot's views
    assert summary.hottest_key == "acme:bot-0001"
    assert summary.hottest_key_events == SMALL.bot_views + 1  # + its profile
    # STOPs seconds after a cart abandonment SMS falls due (no order in between)
    races = 0
    for events in _by_key(small_day).values():
        carts = [e for e in events if e.type is EventType.ADDED_TO_CART]
        for e in events:
            if e.type is not EventType.SMS_RECEIVED:
                continue
            for cart in carts:
                due = cart.occurred_at + timedelta(milliseconds=CART_SMS_DELAY_MS)
                if due < e.occurred_at <= due + timedelta(seconds=5):
                    races += 1
    assert races >= SMALL.stop_races * 0.8
