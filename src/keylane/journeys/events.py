"""The event schema (version 1) and its validation.

An event is one thing a brand's shopper did (or that the engine scheduled for itself,
``timer_fired``). :func:`parse_event` is the only way in from the outside: it takes JSON (bytes or
str) or a mapping, checks the envelope and the properties of the event's type, normalises phone
numbers to E.164 and time zones to their IANA name, and raises :class:`EventError` naming the
field on any problem.

Shopping events (``product_viewed``, ``added_to_cart``, ``checkout_started``, ``order_placed``,
``message_clicked``) keep free-form properties, bounded in size. The profile and control events
(``subscribed``, ``profile_updated``, ``sms_received``, ``timer_fired``) have a fixed property
schema and reject unknown keys, so a typo is an error rather than silently ignored data.

Imports msgspec and phonenumbers, nothing from keylane but the domain's errors.
"""

from __future__ import annotations

import enum
import re
import zoneinfo
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import phonenumbers

from keylane.journeys.errors import EventError

__all__ = [
    "EVENT_SCHEMA_VERSION",
    "MAX_PROPERTIES_BYTES",
    "Event",
    "EventType",
    "normalise_phone",
    "parse_event",
    "subscriber_key",
]

#: The event schema version this keylane reads and writes.
EVENT_SCHEMA_VERSION = 1
#: The largest accepted ``properties``, measured as compact JSON.
MAX_PROPERTIES_BYTES = 8192
#: The most top-level keys accepted in ``properties``.
MAX_PROPERTY_KEYS = 64
#: The longest inbound SMS text accepted (ten concatenated segments).
MAX_SMS_TEXT = 1600
#: The most profile attributes a subscriber may carry.
MAX_ATTRIBUTES = 32

_BRAND_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PRINTABLE_ID = re.compile(r"^[^\s\x00-\x1f\x7f]{1,128}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]+$")
_WHERE = re.compile(r"^(.*) - at `\$\.?([^`]*)`$")
_NAMED = re.compile(r"(missing required|contains unknown) field `([^`]+)`")


class EventType(enum.StrEnum):
    """The event types keylane understands."""

    SUBSCRIBED = "subscribed"
    PRODUCT_VIEWED = "product_viewed"
    ADDED_TO_CART = "added_to_cart"
    CHECKOUT_STARTED = "checkout_started"
    ORDER_PLACED = "order_placed"
    MESSAGE_CLICKED = "message_clicked"
    SMS_RECEIVED = "sms_received"
    PROFILE_UPDATED = "profile_updated"
    TIMER_FIRED = "timer_fired"


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One validated event. Build it with :func:`parse_event`.

    Attributes:
        event_id: the producer's id; the engine drops a repeated id as a duplicate.
        brand_id: the brand (letters, digits, ``_.-``; no ``:``).
        subscriber_id: the brand's shopper (1-128 printable characters).
        type: the event type.
        occurred_at: when it happened; timezone-aware, in UTC.
        properties: the type's properties, normalised (see the module docstring).
        schema_version: the event schema version (1).
    """

    event_id: str
    brand_id: str
    subscriber_id: str
    type: EventType
    occurred_at: datetime
    properties: dict[str, Any] = {}
    schema_version: int = EVENT_SCHEMA_VERSION

    @property
    def key(self) -> str:
        """The subscriber's key, ``"<brand_id>:<subscriber_id>"``: one key, one lane."""
        return subscriber_key(self.brand_id, self.subscriber_id)


def subscriber_key(brand_id: str, subscriber_id: str) -> str:
    """The key of one subscriber of one brand: ``"<brand_id>:<subscriber_id>"``.

    Brand ids cannot contain ``:``, so the first ``:`` separates the two parts.
    """
    return f"{brand_id}:{subscriber_id}"


class _Wire(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    brand_id: str
    subscriber_id: str
    type: EventType
    occurred_at: datetime
    properties: dict[str, Any] = {}
    schema_version: int = EVENT_SCHEMA_VERSION


_Scalar = str | int | float | bool


class _Consent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sms: bool | None = None
    email: bool | None = None


class _Profile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    phone: str | None = None
    email: str | None = None
    timezone: str | None = None
    consent: _Consent = _Consent()
    source: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    attributes: dict[Annotated[str, msgspec.Meta(max_length=64)], _Scalar] = {}


class _SmsReceived(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(max_length=MAX_SMS_TEXT)]


class _TimerFired(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    timer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


_json_decoder = msgspec.json.Decoder(_Wire)
_json_encoder = msgspec.json.Encoder()


def _validation_error(exc: msgspec.ValidationError, prefix: str = "") -> EventError:
    text = str(exc)
    match = _WHERE.match(text)
    field, message = (match.group(2), match.group(1)) if match else ("", text)
    named = _NAMED.search(message)
    if named:
        field = f"{field}.{named.group(2)}" if field else named.group(2)
        message = "is required" if named.group(1).startswith("missing") else "unknown field"
    field = f"{prefix}.{field}" if prefix and field else (prefix or field)
    return EventError(field, message[:1].lower() + message[1:])


def parse_event(raw: bytes | bytearray | memoryview | str | Mapping[str, Any]) -> Event:
    """Validate and normalise one event.

    Args:
        raw: a JSON object (bytes or str) or a mapping with the event's fields.

    Returns:
        the validated event, ``occurred_at`` in UTC.

    Raises:
        EventError: the event is malformed; the message starts with the field, e.g.
            ``occurred_at: must be timezone-aware``.
    """
    try:
        if isinstance(raw, bytes | bytearray | memoryview | str):
            wire = _json_decoder.decode(raw)
        elif isinstance(raw, Mapping):
            wire = msgspec.convert(dict(raw), _Wire)
        else:
            raise EventError("", f"an event must be JSON or a mapping, got {type(raw).__name__}")
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None
    except msgspec.DecodeError as exc:
        raise EventError("", f"not valid JSON: {exc}") from None
    if wire.schema_version != EVENT_SCHEMA_VERSION:
        raise EventError(
            "schema_version",
            f"{wire.schema_version} is not supported (this keylane reads {EVENT_SCHEMA_VERSION})",
        )
    if not _BRAND_ID.match(wire.brand_id):
        raise EventError(
            "brand_id", f"must be 1-64 letters, digits or '_.-', got {wire.brand_id!r}"
        )
    if not _PRINTABLE_ID.match(wire.subscriber_id):
        raise EventError("subscriber_id", "must be 1-128 printable characters without spaces")
    if not _PRINTABLE_ID.match(wire.event_id):
        raise EventError("event_id", "must be 1-128 printable characters without spaces")
    occurred_at = wire.occurred_at
    if occurred_at.tzinfo is None:
        raise EventError("occurred_at", "must be timezone-aware (e.g. end in Z or +00:00)")
    try:
        occurred_at = occurred_at.astimezone(UTC)
    except OverflowError:
        raise EventError("occurred_at", "is out of range in UTC (years 1 to 9999)") from None
    properties = _check_properties(wire.type, wire.properties)
    return Event(
        event_id=wire.event_id,
        brand_id=wire.brand_id,
        subscriber_id=wire.subscriber_id,
        type=wire.type,
        occurred_at=occurred_at,
        properties=properties,
    )


def _check_properties(kind: EventType, properties: dict[str, Any]) -> dict[str, Any]:
    if len(properties) > MAX_PROPERTY_KEYS:
        raise EventError("properties", f"has {len(properties)} keys; at most {MAX_PROPERTY_KEYS}")
    size = len(_json_encoder.encode(properties))
    if size > MAX_PROPERTIES_BYTES:
        raise EventError(
            "properties", f"is {size} bytes as JSON; at most {MAX_PROPERTIES_BYTES} are accepted"
        )
    try:
        if kind is EventType.SUBSCRIBED or kind is EventType.PROFILE_UPDATED:
            profile = msgspec.convert(properties, _Profile)
        elif kind is EventType.SMS_RECEIVED:
            msgspec.convert(properties, _SmsReceived)
            return properties
        elif kind is EventType.TIMER_FIRED:
            msgspec.convert(properties, _TimerFired)
            return properties
        else:
            return properties
    except msgspec.ValidationError as exc:
        raise _validation_error(exc, "properties") from None
    return _check_profile(kind, profile)


def _check_profile(kind: EventType, profile: _Profile) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if profile.phone is not None:
        out["phone"] = normalise_phone(profile.phone)
    if profile.email is not None:
        email = profile.email.strip()
        if len(email) > 254 or not _EMAIL.match(email):
            raise EventError("properties.email", f"not a valid email address: {profile.email!r}")
        local, _, domain = email.rpartition("@")
        out["email"] = f"{local}@{domain.lower()}"
    if profile.timezone is not None:
        out["timezone"] = _check_timezone(profile.timezone)
    if kind is EventType.SUBSCRIBED and "phone" not in out and "email" not in out:
        raise EventError("properties", "subscribed needs a phone or an email")
    consent = {k: v for k, v in (("sms", profile.consent.sms), ("email", profile.consent.email))}
    out["consent"] = {k: v for k, v in consent.items() if v is not None}
    if profile.source is not None:
        out["source"] = profile.source
    if len(profile.attributes) > MAX_ATTRIBUTES:
        raise EventError("properties.attributes", f"at most {MAX_ATTRIBUTES} attributes")
    for name, value in profile.attributes.items():
        if isinstance(value, str) and len(value) > 256:
            raise EventError(f"properties.attributes.{name}", "at most 256 characters")
        if isinstance(value, int) and not -(2**63) <= value < 2**63:  # stored in the state
            raise EventError(f"properties.attributes.{name}", "must fit in 64 bits")
    out["attributes"] = dict(profile.attributes)
    return out


def normalise_phone(text: str, field: str = "properties.phone") -> str:
    """``text`` as an E.164 number (``+14155550123``).

    Raises:
        EventError: ``text`` is not a valid phone number in international format.
    """
    if not text.startswith("+"):
        raise EventError(field, f"must be in E.164 form starting with '+', got {text!r}")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise EventError(field, f"not a phone number: {text!r}") from None
    if not phonenumbers.is_valid_number(number):
        raise EventError(field, f"not a valid phone number: {text!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long
        raise EventError(
            "properties.timezone", f"unknown time zone {name!r} (use an IANA name)"
        ) from None
    return name
