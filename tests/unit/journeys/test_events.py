"""parse_event: valid events normalise; every malformed event is an EventError naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from keylane.errors import InvalidArgumentError
from keylane.journeys import Event, EventError, EventType, parse_event, subscriber_key
from keylane.journeys.events import MAX_PROPERTIES_BYTES


def body(**overrides: Any) -> dict[str, Any]:
    base = {
        "event_id": "e-1",
        "brand_id": "acme",
        "subscriber_id": "u1",
        "type": "product_viewed",
        "occurred_at": "2026-06-10T12:00:00-04:00",
        "properties": {"product_id": "p1"},
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_json_bytes_str_and_mapping_give_the_same_event_in_utc():
    raw = body()
    from_dict = parse_event(raw)
    assert parse_event(json.dumps(raw)) == from_dict
    assert parse_event(json.dumps(raw).encode()) == from_dict
    assert from_dict.occurred_at == datetime(2026, 6, 10, 16, 0, tzinfo=UTC)
    assert from_dict.occurred_at.tzinfo is UTC
    assert from_dict.type is EventType.PRODUCT_VIEWED
    assert from_dict.key == "acme:u1" == subscriber_key("acme", "u1")


def test_a_mapping_may_carry_an_aware_datetime():
    at = datetime(2026, 6, 10, 18, 0, tzinfo=timezone(timedelta(hours=2)))
    assert parse_event(body(occurred_at=at)).occurred_at == datetime(2026, 6, 10, 16, tzinfo=UTC)


def test_subscribed_normalises_phone_email_and_keeps_consent():
    event = parse_event(
        body(
            type="subscribed",
            properties={
                "phone": "+1 (305) 555-0123",
                "email": "Ann@Example.COM",
                "timezone": "America/Chicago",
                "consent": {"sms": True},
                "source": "popup",
                "attributes": {"first_name": "Ann"},
            },
        )
    )
    assert event.properties["phone"] == "+13055550123"
    assert event.properties["email"] == "Ann@example.com"
    assert event.properties["consent"] == {"sms": True}
    assert event.properties["timezone"] == "America/Chicago"


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"type": "page_scrolled"}, "type", "invalid enum value"),
        ({"event_id": None}, "event_id", "is required"),
        ({"brand_id": None}, "brand_id", "is required"),
        ({"occurred_at": None}, "occurred_at", "is required"),
        ({"occurred_at": "2026-06-10T12:00:00"}, "occurred_at", "must be timezone-aware"),
        ({"occurred_at": "yesterday"}, "occurred_at", "invalid rfc3339"),
        ({"event_id": ""}, "event_id", "length >= 1"),
        ({"event_id": "has space"}, "event_id", "printable"),
        ({"brand_id": "acme:eu"}, "brand_id", "letters, digits"),
        ({"subscriber_id": "a b"}, "subscriber_id", "printable"),
        ({"subscriber_id": "x" * 129}, "subscriber_id", "printable"),
        ({"schema_version": 2}, "schema_version", "not supported"),
        ({"colour": "red"}, "colour", "unknown field"),
        ({"properties": ["a"]}, "properties", "expected `object`"),
    ],
)
def test_bad_envelopes_name_the_field(overrides, field, fragment):
    with pytest.raises(EventError) as caught:
        parse_event(body(**overrides))
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert fragment in str(caught.value).lower()
    assert isinstance(caught.value, InvalidArgumentError)


@pytest.mark.parametrize(
    ("properties", "field", "fragment"),
    [
        ({"phone": "3055550123"}, "properties.phone", "e.164"),
        ({"phone": "+1305"}, "properties.phone", "not a valid phone number"),
        ({"phone": "+1 555 555 5555"}, "properties.phone", "not a valid phone number"),
        ({"phone": "+abc"}, "properties.phone", "not a phone number"),
        ({"email": "not-an-email"}, "properties.email", "not a valid email"),
        ({"phone": "+13055550123", "timezone": "Mars/Base"}, "properties.timezone", "unknown"),
        ({"phone": "+13055550123", "timezone": ""}, "properties.timezone", "unknown"),
        ({"phone": "+13055550123", "consent": {"sms": "yes"}}, "properties.consent.sms",
         "expected `bool"),
        ({"phone": "+13055550123", "consents": {}}, "properties.consents", "unknown field"),
        ({"consent": {"sms": True}}, "properties", "needs a phone or an email"),
        ({"phone": "+13055550123", "attributes": {"x": [1]}}, "properties.attributes[...]",
         "expected"),
    ],
)  # fmt: skip
def test_bad_subscribed_properties_name_the_field(properties, field, fragment):
    with pytest.raises(EventError) as caught:
        parse_event(body(type="subscribed", properties=properties))
    assert caught.value.field == field
    assert fragment in str(caught.value).lower()


def test_sms_received_needs_text_and_timer_fired_a_timer_id():
    with pytest.raises(EventError, match=r"^properties.text: is required"):
        parse_event(body(type="sms_received", properties={}))
    with pytest.raises(EventError, match=r"^properties.timer_id: is required"):
        parse_event(body(type="timer_fired", properties={}))
    with pytest.raises(EventError, match=r"^properties.text: expected `str` of length <= 1600"):
        parse_event(body(type="sms_received", properties={"text": "x" * 1601}))


def test_oversized_properties_are_rejected_by_size_and_by_key_count():
    big = {"blob": "x" * MAX_PROPERTIES_BYTES}
    with pytest.raises(EventError, match=r"^properties: is \d+ bytes as JSON; at most 8192"):
        parse_event(body(properties=big))
    many = {f"k{i}": i for i in range(65)}
    with pytest.raises(EventError, match=r"^properties: has 65 keys; at most 64"):
        parse_event(body(properties=many))
    just_fits = {"blob": "x" * (MAX_PROPERTIES_BYTES - 20)}
    assert parse_event(body(properties=just_fits)).properties == just_fits


@pytest.mark.parametrize("raw", [b"{not json", "[1, 2]", 42, None])
def test_unparseable_inputs_are_event_errors(raw):
    with pytest.raises(EventError):
        parse_event(raw)


def test_events_are_immutable_values():
    event = parse_event(body())
    with pytest.raises(AttributeError):
        event.brand_id = "other"  # type: ignore[misc]
    assert isinstance(event, Event)
