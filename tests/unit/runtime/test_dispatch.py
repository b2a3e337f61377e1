"""``caps_defer_until``: the relay's dispatch-time cap check against the delivery ledger.

Built on the real journeys (the packaged defaults: SMS 2 per 24 h and 5 per 7 d, email 3 per
24 h and 10 per 7 d) and on a small journeys file with a loose brand cap, so the Florida and
Oklahoma legal cap (3 per 24 h) can be seen on its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from keylane.journeys import (
    Channel,
    JourneySet,
    MessageClass,
    SendIntent,
    SubscriberState,
    load_default_journeys,
    new_state,
    parse_journeys,
)
from keylane.runtime.codec import encode_intent
from keylane.runtime.dispatch import caps_defer_until
from keylane.state import SendRecord, SendStatus

NOW = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MS = timedelta(milliseconds=1)

LOOSE = parse_journeys(
    """
version = 1
[brand]
name = "Loose"
timezone = "America/New_York"
[brand.caps]
sms = [{ limit = 10, window = "24h" }]
email = []
[journeys.one]
[[journeys.one.steps]]
id = "t"
kind = "trigger"
event = "subscribed"
"""
)


@pytest.fixture(scope="module")
def journeys() -> JourneySet:
    return load_default_journeys()


def _state(phone_state: str | None = "CA") -> SubscriberState:
    return msgspec.structs.replace(new_state("acme", "ann"), phone_state=phone_state)


def _intent(
    key: str = "new",
    *,
    channel: Channel = Channel.SMS,
    message_class: MessageClass = MessageClass.MARKETING,
) -> SendIntent:
    return SendIntent(
        idempotency_key=key,
        channel=channel,
        to="+14155551000" if channel is Channel.SMS else "ann@example.com",
        brand_id="acme",
        subscriber_id="ann",
        journey="cart_abandonment",
        run_id="r1",
        step="cart_sms",
        body="your cart",
        subject=None,
        message_class=message_class,
        not_before=NOW,
        expires_at=None,
        subscriber_timezone=None,
    )


def _sent(
    ago: timedelta,
    key: str,
    *,
    status: SendStatus = SendStatus.SENT,
    channel: Channel = Channel.SMS,
    message_class: MessageClass = MessageClass.MARKETING,
    payload: bytes | None = None,
    finished: bool = True,
) -> SendRecord:
    at = (NOW - ago).timestamp()
    body = payload
    if body is None:
        body = encode_intent(_intent(key, channel=channel, message_class=message_class))
    return SendRecord(
        idempotency_key=key,
        key="acme:ann",
        channel=channel.value,
        payload=body,
        status=status,
        attempts=1,
        created_at=at,
        not_before=at,
        expires_at=None,
        owner="relay",
        lease_until=None,
        retry_at=None,
        dispatched_at=at,
        finished_at=at if finished else None,
        detail="",
    )


def test_nothing_sent_yet_may_go(journeys: JourneySet) -> None:
    assert caps_defer_until(_state(), _intent(), [], NOW, journeys) is None


def test_transactional_sends_ignore_the_caps(journeys: JourneySet) -> None:
    ledger = [_sent(HOUR, "a"), _sent(2 * HOUR, "b"), _sent(3 * HOUR, "c")]
    intent = _intent(message_class=MessageClass.TRANSACTIONAL)
    assert caps_defer_until(_state(), intent, ledger, NOW, journeys) is None


def test_the_daily_cap_defers_until_the_oldest_send_leaves_the_window(
    journeys: JourneySet,
) -> None:
    # Given two marketing SMS in the last 24 h (the default cap: 2 per 24 h)
    ledger = [_sent(5 * HOUR, "a"), _sent(HOUR, "b")]
    # Then a third waits until 24 h after the older one (its recorded time, rounded up a ms)
    until = caps_defer_until(_state(), _intent(), ledger, NOW, journeys)
    assert until == NOW - 5 * HOUR + DAY + MS
    # And at that instant it may go, not a millisecond before
    assert caps_defer_until(_state(), _intent(), ledger, until, journeys) is None
    assert caps_defer_until(_state(), _intent(), ledger, until - MS, journeys) == until


def test_the_weekly_cap_counts_older_sends(journeys: JourneySet) -> None:
    # Given five marketing SMS over the last six days, one per day (5 per 7 d)
    ledger = [_sent(d * DAY + HOUR, f"s{d}") for d in range(1, 6)]
    until = caps_defer_until(_state(), _intent(), ledger, NOW, journeys)
    assert until == NOW - (5 * DAY + HOUR) + 7 * DAY + MS


@pytest.mark.parametrize(
    "record",
    [
        _sent(HOUR, "other-channel", channel=Channel.EMAIL),
        _sent(HOUR, "transactional", message_class=MessageClass.TRANSACTIONAL),
        _sent(HOUR, "new"),  # the intent itself (a retry of it)
        _sent(HOUR, "pending", status=SendStatus.PENDING, finished=False),
        _sent(HOUR, "skipped", status=SendStatus.SKIPPED),
        _sent(HOUR, "failed", status=SendStatus.FAILED_PERMANENT),
        _sent(HOUR, "cancelled", status=SendStatus.CANCELLED),
        _sent(HOUR, "unreadable", payload=b"\xc1 not msgpack"),
    ],
    ids=lambda r: r.idempotency_key,
)
def test_what_does_not_count(journeys: JourneySet, record: SendRecord) -> None:
    # Given one SMS that went out and one record that must not count
    ledger = [_sent(2 * HOUR, "a"), record]
    assert caps_defer_until(_state(), _intent(), ledger, NOW, journeys) is None


def test_an_unknown_outcome_counts_as_sent(journeys: JourneySet) -> None:
    ledger = [_sent(2 * HOUR, "a"), _sent(HOUR, "b", status=SendStatus.UNKNOWN)]
    assert caps_defer_until(_state(), _intent(), ledger, NOW, journeys) is not None


def test_email_has_its_own_caps(journeys: JourneySet) -> None:
    # Given two SMS today: an email may still go (email: 3 per 24 h)
    ledger = [_sent(2 * HOUR, "a"), _sent(HOUR, "b")]
    email = _intent(channel=Channel.EMAIL)
    assert caps_defer_until(_state(), email, ledger, NOW, journeys) is None
    emails = [_sent(h * HOUR, f"e{h}", channel=Channel.EMAIL) for h in (1, 2, 3)]
    assert caps_defer_until(_state(), email, emails, NOW, journeys) == NOW - 3 * HOUR + DAY + MS


@pytest.mark.parametrize(("phone_state", "capped"), [("FL", True), ("OK", True), ("CA", False)])
def test_the_legal_cap_of_florida_and_oklahoma(phone_state: str, capped: bool) -> None:
    # Given a brand that allows 10 SMS a day, and three sent in the last 24 h
    ledger = [_sent(h * HOUR, f"s{h}") for h in (1, 2, 3)]
    until = caps_defer_until(_state(phone_state), _intent(), ledger, NOW, LOOSE)
    # Then only Florida and Oklahoma numbers wait (3 per 24 h by law)
    assert (until is not None) is capped
    if capped:
        assert until == NOW - 3 * HOUR + DAY + MS


def test_a_brand_without_rules_never_defers() -> None:
    emails = [_sent(h * HOUR, f"e{h}", channel=Channel.EMAIL) for h in range(1, 20)]
    email = _intent(channel=Channel.EMAIL)
    assert caps_defer_until(_state(), email, emails, NOW, LOOSE) is None
