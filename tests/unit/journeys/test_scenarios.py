"""Each shipped journey, end to end: the expected sends, channels and times."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from keylane.journeys import Channel, MessageClass
from keylane.journeys.policies.quiet_hours import jitter_seconds

from .helpers import CA_PHONE, FL_PHONE, NOON_NY, Subscriber, event, subscribed

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
JITTER = timedelta(seconds=jitter_seconds("acme:u1", 1800))


def journey_sends(sub: Subscriber, journey: str):
    return [s for s in sub.sends if s.journey == journey]


def test_welcome_sends_an_sms_at_once_even_at_night(journeys):
    night = NOON_NY + timedelta(hours=11, minutes=30)  # 23:30 in New York
    sub = Subscriber(journeys)
    sub.feed(subscribed(night))
    (sms,) = sub.sends
    assert (sms.journey, sms.step, sms.channel) == ("welcome", "welcome_sms", Channel.SMS)
    assert sms.message_class is MessageClass.TRANSACTIONAL
    assert sms.not_before == night
    assert sms.expires_at == night + HOUR
    assert sms.to == FL_PHONE
    assert "welcome, Ann!" in sms.body
    assert sub.current.runs == ()


def test_welcome_falls_back_to_email_and_to_nothing(journeys):
    email_only = Subscriber(journeys)
    email_only.feed(subscribed(NOON_NY, phone=None))
    (mail,) = email_only.sends
    assert (mail.channel, mail.to, mail.subject) == (
        Channel.EMAIL,
        "ann@example.com",
        "Welcome to Keylane Outfitters",
    )
    nobody = Subscriber(journeys)
    nobody.feed(subscribed(NOON_NY, sms=False, email_ok=False))
    assert nobody.sends == []


def test_browse_abandonment_sends_one_sms_an_hour_after_the_view(journeys):
    sub = Subscriber(journeys)
    sub.feed(subscribed(NOON_NY))
    sub.feed(event("product_viewed", NOON_NY, product_name="Trail shoes"))
    sub.run_until(NOON_NY + 3 * HOUR)
    (sms,) = journey_sends(sub, "browse_abandonment")
    assert sms.not_before == NOON_NY + HOUR
    assert sms.expires_at == NOON_NY + 13 * HOUR
    assert sms.message_class is MessageClass.MARKETING
    assert "Trail shoes" in sms.body


def test_browse_abandonment_stops_when_the_shopper_adds_to_cart(journeys):
    sub = Subscriber(journeys)
    sub.feed(subscribed(NOON_NY))
    sub.feed(event("product_viewed", NOON_NY))
    sub.feed(event("added_to_cart", NOON_NY + 30 * MINUTE))
    sub.run_until(NOON_NY + 2 * HOUR)
    assert journey_sends(sub, "browse_abandonment") == []
    assert "exited_goal" in sub.codes()


def test_browse_sms_at_20_30_waits_for_the_morning_in_florida_not_in_california(journeys):
    # Florida closes at 20:00; the federal window (California) at 21:00.
    fl = Subscriber(journeys)
    fl.feed(subscribed(NOON_NY, phone=FL_PHONE))
    view_ny = NOON_NY + timedelta(hours=7, minutes=30)  # 19:30 in New York
    fl.feed(event("product_viewed", view_ny))
    fl.run_until(view_ny + 2 * HOUR)
    (fl_sms,) = journey_sends(fl, "browse_abandonment")
    morning = NOON_NY + timedelta(hours=20)  # 08:00 the next day in New York
    assert fl_sms.not_before == morning + JITTER
    assert fl_sms.not_before.astimezone(NY).hour == 8
    assert "deferred_quiet_hours" in fl.codes()

    ca = Subscriber(journeys)
    ca.feed(subscribed(NOON_NY, phone=CA_PHONE))
    view_la = NOON_NY + timedelta(hours=10, minutes=30)  # 19:30 in Los Angeles
    ca.feed(event("product_viewed", view_la))
    ca.run_until(view_la + 2 * HOUR)
    (ca_sms,) = journey_sends(ca, "browse_abandonment")
    assert ca_sms.not_before == view_la + HOUR
    assert ca_sms.not_before.astimezone(LA).hour == 20
    assert ca_sms.subscriber_timezone == "America/Los_Angeles"


def test_cart_abandonment_sms_after_30_minutes_then_email_after_a_day(journeys):
    sub = Subscriber(journeys)
    sub.feed(subscribed(NOON_NY))
    sub.feed(event("added_to_cart", NOON_NY, product_name="Tent", cart_url="https://s/c/1"))
    sub.run_until(NOON_NY + 2 * timedelta(days=1))
    sms, mail = journey_sends(sub, "cart_abandonment")
    assert (sms.channel, sms.not_before) == (Channel.SMS, NOON_NY + 30 * MINUTE)
    assert "Tent" in sms.body
    assert "https://s/c/1" in sms.body
    assert (mail.channel, mail.not_before) == (Channel.EMAIL, NOON_NY + 30 * MINUTE + 24 * HOUR)
    assert mail.subject == "Your cart at Keylane Outfitters"
    assert sms.idempotency_key != mail.idempotency_key
    assert sub.current.runs == ()


def test_cart_abandonment_order_before_the_sms_sends_nothing(journeys):
    sub = Subscriber(journeys)
    sub.feed(subscribed(NOON_NY))
    sub.feed(event("added_to_cart", NOON_NY))
    sub.feed(event("order_placed", NOON_NY + 10 * MINUTE))
    sub.run_until(NOON_NY + 2 * timedelta(days=1))
    assert journey_sends(sub, "cart_abandonment") == []


def test_cart_abandonment_order_after_the_sms_stops_the_email(journeys):
    sub = Subscriber(journeys)
    sub.feed(subscribed(NOON_NY))
    sub.feed(event("added_to_cart", NOON_NY))
    sub.run_until(NOON_NY + HOUR)
    sub.feed(event("order_placed", NOON_NY + 2 * HOUR))
    sub.run_until(NOON_NY + 2 * timedelta(days=1))
    assert [s.channel for s in journey_sends(sub, "cart_abandonment")] == [Channel.SMS]


def test_post_purchase_email_an_hour_after_the_order(journeys):
    sub = Subscriber(journeys)
    sub.feed(subscribed(NOON_NY))
    sub.feed(event("order_placed", NOON_NY, order_id="o-42"))
    sub.run_until(NOON_NY + 3 * HOUR)
    (mail,) = journey_sends(sub, "post_purchase")
    assert (mail.channel, mail.not_before) == (Channel.EMAIL, NOON_NY + HOUR)
    assert "o-42" in mail.body
    assert mail.expires_at == NOON_NY + 25 * HOUR


def test_post_purchase_late_order_waits_for_the_email_window(journeys):
    # An order at 21:30 New York time: the email is due at 22:30, after the 07:00-22:00 window.
    sub = Subscriber(journeys)
    sub.feed(subscribed(NOON_NY))
    late = NOON_NY + timedelta(hours=9, minutes=30)
    sub.feed(event("order_placed", late, order_id="o-43"))
    sub.run_until(late + 2 * HOUR)
    (mail,) = journey_sends(sub, "post_purchase")
    assert mail.not_before == NOON_NY + timedelta(hours=19) + JITTER  # 07:00 next day + jitter
    assert mail.not_before.astimezone(NY).hour == 7
