"""Hypothesis properties of decide over random event streams for random subscribers.

Each stream: a random subscriber (phone in FL, OK, CA, NY, a two-zone area code, or none; an
optional profile zone; random consent), then random shopping events, replies (STOP, START, HELP,
chat), consent changes and duplicates at random gaps, with every armed timer delivered at (or
after) its due time as the runtime would. The oracles below are written independently of the
policy code they check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

import msgspec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keylane.journeys import (
    Channel,
    Decision,
    Event,
    JourneySet,
    MessageClass,
    ReasonCode,
    SendIntent,
    SubscriberState,
    VerdictAction,
    decode_state,
    encode_state,
    parse_journeys,
    recheck,
)
from keylane.journeys.engine import _decide, decide

from .helpers import AK_PHONE, CA_PHONE, FL_PHONE, NY_PHONE, OK_PHONE, event, subscribed

DEFAULT_TEXT = resources.files("keylane.journeys").joinpath("default.toml").read_text()
# An extra journey that tries a marketing SMS on every view, so caps and quiet hours are busy.
PING = """
[journeys.view_ping]
reentry = { min_interval = "0s" }
max_lateness = "20h"
[[journeys.view_ping.steps]]
id = "viewed"
kind = "trigger"
event = "product_viewed"
[[journeys.view_ping.steps]]
id = "ping"
kind = "send"
channel = "sms"
template = "New arrivals at {{ brand.name }}"
"""
BUSY = parse_journeys(DEFAULT_TEXT + PING, source="busy.toml")
# The same with loose brand caps, so the FL/OK legal cap (3 per 24 h) is what binds.
LOOSE = parse_journeys(
    DEFAULT_TEXT.replace('limit = 2, window = "24h"', 'limit = 10, window = "24h"').replace(
        'limit = 5, window = "7d"', 'limit = 20, window = "7d"'
    )
    + PING,
    source="loose.toml",
)
DAY = timedelta(days=1)
STATE_BOUND = 4096

PHONES = {FL_PHONE: "FL", OK_PHONE: "OK", CA_PHONE: None, NY_PHONE: None, AK_PHONE: None}
STARTS = [
    datetime(2026, 3, 7, 20, 0, tzinfo=UTC),  # before the spring-forward night
    datetime(2026, 10, 31, 22, 0, tzinfo=UTC),  # before the fall-back night
    datetime(2026, 6, 10, 3, 0, tzinfo=UTC),
]
ACTIONS = [
    "product_viewed",
    "product_viewed",
    "product_viewed",
    "added_to_cart",
    "added_to_cart",
    "order_placed",
    "checkout_started",
    "message_clicked",
    "STOP",
    "stop all",
    "Opt-Out",
    "START",
    "yes",
    "HELP",
    "hello",
    "consent_off",
    "resubscribe",
    "duplicate",
]


@dataclass
class Profile:
    phone: str | None
    timezone: str | None
    sms: bool
    email: bool


@dataclass
class Log:
    """What happened, decision by decision."""

    events: list[Event] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    states: list[SubscriberState] = field(default_factory=list)


profiles = st.builds(
    Profile,
    phone=st.sampled_from([*PHONES, None]),
    timezone=st.sampled_from([None, None, "America/Chicago", "Pacific/Honolulu"]),
    sms=st.booleans(),
    email=st.booleans(),
)
gaps = st.one_of(st.integers(0, 30), st.integers(0, 16 * 60))  # bursts and long pauses
streams = st.lists(st.tuples(st.sampled_from(ACTIONS), gaps), min_size=1, max_size=40)


def run(
    profile: Profile,
    stream: list[tuple[str, int]],
    start: datetime,
    lateness: int,
    journeys: JourneySet,
) -> Log:
    """Decide the stream; deliver each timer ``lateness`` minutes after it is due."""
    log = Log()
    state: SubscriberState | None = None
    timers: dict[str, datetime] = {}
    now = start

    def feed(ev: Event, at: datetime) -> None:
        nonlocal state
        decision = decide(state, ev, at, journeys)
        if state is not None:  # the fast path and the full path agree
            slow = _decide(state, ev, at, journeys, fast=False)
            assert msgspec.json.encode(slow) == msgspec.json.encode(decision)
        state = decode_state(encode_state(decision.new_state))
        assert state == decision.new_state
        for spec in decision.timers_to_arm:
            timers[spec.timer_id] = spec.due_at
        for timer_id in decision.timers_to_disarm:
            timers.pop(timer_id, None)
        log.events.append(ev)
        log.decisions.append(decision)
        log.states.append(state)

    def fire_until(until: datetime) -> None:
        while True:
            due = sorted(
                (at, tid) for tid, at in timers.items() if at + timedelta(minutes=lateness) <= until
            )
            if not due:
                return
            at, timer_id = due[0]
            timers.pop(timer_id)
            fired = at + timedelta(minutes=lateness)
            feed(event("timer_fired", fired, event_id=f"fire-{timer_id}", timer_id=timer_id), fired)

    feed(
        subscribed(
            start,
            profile.phone,
            sms=profile.sms,
            email_ok=profile.email,
            timezone=profile.timezone,
            event_id="first",
        ),
        start,
    )
    for counter, (action, gap) in enumerate(stream):
        now += timedelta(minutes=gap)
        fire_until(now)
        eid = f"ev-{counter}"
        if action == "duplicate":
            ev = log.events[-1]
        elif action == "consent_off":
            ev = event("profile_updated", now, event_id=eid, consent={"sms": False})
        elif action == "resubscribe":
            ev = subscribed(
                now,
                profile.phone,
                sms=True,
                email_ok=profile.email,
                timezone=profile.timezone,
                event_id=eid,
            )
        elif action.islower() and "_" in action:
            ev = event(action, now, event_id=eid, product_name="Tent", order_id=f"o{counter}")
        else:
            ev = event("sms_received", now, event_id=eid, text=action)
        feed(ev, now)
    fire_until(now + 3 * DAY)
    return log


def sends(log: Log) -> list[tuple[int, SendIntent]]:
    return [(i, s) for i, d in enumerate(log.decisions) for s in d.sends]


def zones_of(state: SubscriberState, journeys: JourneySet) -> list[str]:
    if state.timezone:
        return [state.timezone]
    return list(state.phone_zones) or list(journeys.default_brand.timezones)


common = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
inputs = (profiles, streams, st.sampled_from(STARTS), st.sampled_from([0, 0, 7, 180]))


@common
@given(*inputs)
def test_no_marketing_message_in_the_recipients_quiet_hours(profile, stream, start, lateness):
    log = run(profile, stream, start, lateness, BUSY)
    for index, send in sends(log):
        if send.message_class is not MessageClass.MARKETING:
            continue
        state = log.states[index]
        if send.channel is Channel.SMS:
            close = 20 if PHONES.get(state.phone or "") in ("FL", "OK") else 21
            opening = 8
        else:
            opening, close = 7, 22
        for name in zones_of(state, BUSY):
            local = send.not_before.astimezone(ZoneInfo(name))
            assert opening <= local.hour < close, (name, local, send.step)


@common
@given(*inputs)
def test_caps_are_never_exceeded_in_any_rolling_window(profile, stream, start, lateness):
    for journeys, per_day, per_week in ((BUSY, 2, 5), (LOOSE, 10, 20)):
        log = run(profile, stream, start, lateness, journeys)
        times = sorted(
            s.not_before
            for _, s in sends(log)
            if s.channel is Channel.SMS and s.message_class is MessageClass.MARKETING
        )
        if PHONES.get(profile.phone or "") in ("FL", "OK"):
            per_day = min(per_day, 3)
        for first in times:
            assert sum(first <= t < first + DAY for t in times) <= per_day
            assert sum(first <= t < first + 7 * DAY for t in times) <= per_week


@common
@given(*inputs)
def test_after_an_opt_out_only_the_one_confirmation_until_an_opt_in(
    profile, stream, start, lateness
):
    log = run(profile, stream, start, lateness, BUSY)
    opted_out = False
    earlier: list[SendIntent] = []
    for decision, state in zip(log.decisions, log.states, strict=True):
        codes = [r.code for r in decision.reasons]
        if ReasonCode.OPTED_OUT in codes:
            assert not opted_out
            opted_out = True
            assert [s.step for s in decision.sends] == (
                ["stop_confirmation"] if state.phone else []
            )
            # The STOP ends every run, disarms every timer and cancels every pending send...
            assert (state.runs, state.timers) == ((), ())
            assert all(p.journey == "_system" for p in state.pending)
            before = log.states[log.decisions.index(decision) - 1]
            assert {p.idempotency_key for p in before.pending} <= set(decision.cancel_sends)
            # ...and sends made before it can no longer go out, whenever the relay tries them.
            for send in earlier:
                if send.journey != "_system":
                    at = max(send.not_before, log.events[log.decisions.index(decision)].occurred_at)
                    assert recheck(state, send, at, BUSY).action is not VerdictAction.SEND
            continue
        if ReasonCode.OPTED_IN in codes:
            opted_out = False
        if opted_out:
            assert decision.sends == (), codes
        earlier.extend(decision.sends)


@common
@given(*inputs)
@example(
    Profile(FL_PHONE, None, True, True), [("product_viewed", 0), ("order_placed", 10)], STARTS[2], 0
)
def test_a_goal_event_ends_the_run(profile, stream, start, lateness):
    log = run(profile, stream, start, lateness, BUSY)
    ended: set[str] = set()
    previous: SubscriberState | None = None
    for ev, decision, state in zip(log.events, log.decisions, log.states, strict=True):
        if ev.type.value == "order_placed" and not decision.duplicate:
            assert state.run_of("cart_abandonment") is None
            assert state.run_of("browse_abandonment") is None
            if previous is not None:
                ended |= {
                    r.run_id
                    for r in previous.runs
                    if r.journey in ("cart_abandonment", "browse_abandonment")
                }
        for send in decision.sends:
            assert send.run_id not in ended or send.journey not in (
                "cart_abandonment",
                "browse_abandonment",
            )
        previous = state


@common
@given(*inputs)
def test_the_same_stream_gives_the_same_decisions(profile, stream, start, lateness):
    first = run(profile, stream, start, lateness, BUSY)
    # A freshly loaded copy of the journeys: nothing hides in the JourneySet either.
    again = parse_journeys(DEFAULT_TEXT + PING, source="busy.toml")
    second = run(profile, stream, start, lateness, again)
    assert msgspec.json.encode(first.decisions) == msgspec.json.encode(second.decisions)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    profiles,
    st.lists(
        st.tuples(st.sampled_from(ACTIONS), st.integers(0, 6 * 60)), min_size=150, max_size=300
    ),
    st.sampled_from(STARTS),
)
def test_state_size_stays_bounded_over_long_streams(profile, stream, start):
    log = run(profile, stream, start, 0, BUSY)
    sizes = [len(encode_state(state)) for state in log.states]
    assert max(sizes) <= STATE_BOUND
    final = log.states[-1]
    assert len(final.seen) <= 8 * 64
    assert len(final.sms_sends) <= 64
    assert len(final.runs) <= len(BUSY.journeys)
