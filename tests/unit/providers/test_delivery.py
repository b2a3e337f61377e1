"""Delivery: the webhook body's fields, validation naming the field, the JSON codec."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import pytest

from keylane.errors import InvalidArgumentError
from keylane.providers import Delivery, DeliveryFieldError, mask_recipient
from keylane.providers.base import CONTENT_FIELDS
from tests.unit.providers.deliveries import SENT_AT, make_delivery

CONTRACT_FIELDS = [
    "idempotency_key",
    "channel",
    "to",
    "brand_id",
    "subscriber_id",
    "journey",
    "step",
    "body",
    "message_class",
    "sent_at",
    "subscriber_timezone",
]


def test_json_has_exactly_the_contract_fields_in_order():
    body = json.loads(make_delivery().to_json())
    assert list(body) == CONTRACT_FIELDS


def test_sent_at_is_iso_utc_with_z_and_round_trips():
    delivery = make_delivery(sent_at=dt.datetime(2026, 11, 27, 5, 6, 7, 890, tzinfo=dt.UTC))
    body = json.loads(delivery.to_json())
    assert body["sent_at"] == "2026-11-27T05:06:07.000890Z"
    assert Delivery.from_json(delivery.to_json()) == delivery


def test_utc_zoneinfo_is_accepted_and_serialised_with_z():
    delivery = make_delivery(sent_at=SENT_AT.replace(tzinfo=zoneinfo.ZoneInfo("UTC")))
    assert json.loads(delivery.to_json())["sent_at"] == "2026-11-27T14:30:00Z"


def test_dict_round_trip_and_null_timezone():
    delivery = make_delivery(subscriber_timezone=None)
    data = delivery.to_dict()
    assert data["subscriber_timezone"] is None
    assert data["sent_at"] == "2026-11-27T14:30:00Z"
    assert Delivery.from_dict(data) == delivery


def test_email_delivery():
    delivery = make_delivery(channel="email", to="shopper@example.com")
    assert Delivery.from_json(delivery.to_json()).to == "shopper@example.com"


@pytest.mark.parametrize(
    ("field", "value", "reason_part"),
    [
        ("idempotency_key", "", "must not be empty"),
        ("idempotency_key", "has space", "visible ASCII"),
        ("idempotency_key", "k" * 256, "at most 255"),
        ("channel", "fax", "must be one of sms, email"),
        ("to", "5551234567", "E.164"),
        ("to", "+0123456789", "E.164"),
        ("brand_id", "  ", "must not be empty"),
        ("subscriber_id", 7, "must be a string"),
        ("journey", "j" * 257, "at most 256"),
        ("step", "", "must not be empty"),
        ("body", "", "must not be empty"),
        ("message_class", "promo", "marketing, transactional"),
        ("sent_at", dt.datetime(2026, 11, 27, 14, 30), "must be in UTC"),
        ("sent_at", "2026-11-27T14:30:00Z", "must be a datetime"),
        ("subscriber_timezone", "Mars/Olympus", "IANA"),
        ("subscriber_timezone", "../etc", "IANA"),
    ],
)
def test_construction_names_the_bad_field(field, value, reason_part):
    with pytest.raises(DeliveryFieldError) as info:
        make_delivery(**{field: value})
    assert info.value.field == field
    assert reason_part in info.value.reason
    assert isinstance(info.value, InvalidArgumentError)


def test_email_recipient_must_be_an_address():
    with pytest.raises(DeliveryFieldError, match="email recipient") as info:
        make_delivery(channel="email", to="+15551234567")
    assert info.value.field == "to"


def _body(**changes: object) -> bytes:
    data = make_delivery().to_dict()
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v != "<drop>"}).encode()


@pytest.mark.parametrize(
    ("body", "field", "reason_part"),
    [
        (_body(channel=3), "channel", "Expected `str`, got `int`"),
        (_body(channel="fax"), "channel", "Invalid enum value 'fax'"),
        (_body(to="<drop>"), "to", "missing required field"),
        (_body(extra=1), "extra", "unknown field"),
        (_body(sent_at="yesterday"), "sent_at", "Invalid RFC3339"),
        (_body(sent_at="2026-11-27T14:30:00+02:00"), "sent_at", "must be in UTC"),
        (_body(sent_at="2026-11-27T14:30:00"), "sent_at", "must be in UTC"),
        (_body(to="555"), "to", "E.164"),
        (b"[1, 2]", "", "Expected `object`"),
        (b'{"idempotency_key": ', "", "malformed JSON"),
        (b"\xff\xfe", "", "malformed JSON"),
    ],
)
def test_from_json_names_the_bad_field(body, field, reason_part):
    with pytest.raises(DeliveryFieldError) as info:
        Delivery.from_json(body)
    assert info.value.field == field
    assert reason_part in info.value.reason


def test_content_leaves_out_sent_at_only():
    assert "sent_at" not in CONTENT_FIELDS
    assert set(CONTENT_FIELDS) == set(CONTRACT_FIELDS) - {"sent_at"}
    first = make_delivery()
    retried = make_delivery(sent_at=SENT_AT + dt.timedelta(minutes=5))
    assert first.content() == retried.content()
    assert first.differing_fields(retried) == ()
    changed = make_delivery(body="other", to="+15550000000")
    assert first.differing_fields(changed) == ("to", "body")


def test_delivery_is_frozen():
    delivery = make_delivery()
    with pytest.raises(AttributeError):
        delivery.body = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("to", "masked"),
    [
        ("+14055551234", "********1234"),
        ("+4912345", "******45"),
        ("shopper@example.com", "s***@example.com"),
    ],
)
def test_mask_recipient(to, masked):
    assert mask_recipient(to) == masked
