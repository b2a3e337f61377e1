"""The provider contract: a :class:`Delivery` goes in, a :class:`Receipt` comes out.

A :class:`Delivery` is exactly the JSON body of the webhook contract (``docs/providers.md``), so
the same value is what the relay hands a provider, what the webhook POSTs and what the embedded
gateway records. Every delivery carries the send intent's idempotency key: a provider that
honours it delivers a key at most once, however often it is retried.

Idempotency compares the delivery's *content*: every field except ``sent_at``, which is the
engine's clock at the attempt and so legitimately differs between retries of one send
(:data:`CONTENT_FIELDS`, :meth:`Delivery.differing_fields`).

This module imports no backend (no httpx, no web framework).
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from keylane.errors import InvalidArgumentError
from keylane.resource import AsyncClosable

__all__ = [
    "CHANNELS",
    "CONTENT_FIELDS",
    "MAX_BODY_CHARS",
    "MAX_KEY_CHARS",
    "MESSAGE_CLASSES",
    "ChannelRouter",
    "Delivery",
    "DeliveryFieldError",
    "Outcome",
    "Provider",
    "Receipt",
    "mask_recipient",
]

Channel = Literal["sms", "email"]
MessageClass = Literal["marketing", "transactional"]

#: The channels a delivery can use.
CHANNELS: tuple[str, ...] = ("sms", "email")
#: The message classes (quiet hours and consent apply to marketing only).
MESSAGE_CLASSES: tuple[str, ...] = ("marketing", "transactional")
#: Longest idempotency key, as Stripe's.
MAX_KEY_CHARS = 255
#: Longest message body in characters.
MAX_BODY_CHARS = 32_768
#: Longest identifier (brand, subscriber, journey, step) in characters.
MAX_ID_CHARS = 256

_KEY_RE = re.compile(r"[!-~]+")  # visible ASCII: the key travels in an HTTP header as well
_E164_RE = re.compile(r"\+[1-9][0-9]{6,14}")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_MAX_EMAIL_CHARS = 254


class DeliveryFieldError(InvalidArgumentError):
    """A delivery field is missing, of the wrong type or out of range.

    Attributes:
        field: the field's name, or ``""`` when the problem is the document as a whole.
        reason: what is wrong, without the field's name.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def _text(name: str, value: object, limit: int) -> None:
    if not isinstance(value, str):
        raise DeliveryFieldError(name, f"must be a string, not {type(value).__name__}")
    if not value.strip():
        raise DeliveryFieldError(name, "must not be empty")
    if len(value) > limit:
        raise DeliveryFieldError(name, f"must be at most {limit} characters, got {len(value)}")


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise DeliveryFieldError(name, f"must be one of {', '.join(choices)}; got {value!r}")


def _recipient(channel: str, to: str) -> None:
    if channel == "sms" and not _E164_RE.fullmatch(to):
        raise DeliveryFieldError("to", "an sms recipient must be an E.164 number like +15551234567")
    if channel == "email" and (len(to) > _MAX_EMAIL_CHARS or not _EMAIL_RE.fullmatch(to)):
        raise DeliveryFieldError("to", "an email recipient must be an address like a@example.com")


def _timezone(value: object) -> None:
    if value is None:
        return
    _text("subscriber_timezone", value, 64)
    try:
        zoneinfo.ZoneInfo(str(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DeliveryFieldError(
            "subscriber_timezone", f"must be an IANA time zone like America/Chicago; got {value!r}"
        ) from None


def _sent_at(value: object) -> None:
    if not isinstance(value, dt.datetime):
        raise DeliveryFieldError("sent_at", f"must be a datetime, not {type(value).__name__}")
    if value.utcoffset() != dt.timedelta(0):
        raise DeliveryFieldError(
            "sent_at", "must be in UTC (an aware datetime; on the wire ISO-8601 ending in Z)"
        )


class Delivery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One message to one recipient: exactly the webhook contract's JSON body.

    A frozen msgspec struct, so that it is validated and (de)serialised by one fast typed codec;
    construction validates every field (:class:`DeliveryFieldError` names the field).

    Attributes:
        idempotency_key: the send intent's key (visible ASCII, at most 255 characters); the same
            send retried carries the same key.
        channel: ``"sms"`` or ``"email"``.
        to: an E.164 number (``+15551234567``) for sms, an address for email.
        brand_id: the sending brand.
        subscriber_id: the recipient's subscriber id at that brand.
        journey: the journey that decided the send.
        step: the journey step that sends.
        body: the message text.
        message_class: ``"marketing"`` or ``"transactional"``.
        sent_at: the engine's clock at this attempt, an aware UTC datetime (``...Z`` on the wire).
        subscriber_timezone: the recipient's IANA zone, or None when unknown.
    """

    idempotency_key: str
    channel: Channel
    to: str
    brand_id: str
    subscriber_id: str
    journey: str
    step: str
    body: str
    message_class: MessageClass
    sent_at: dt.datetime
    subscriber_timezone: str | None

    def __post_init__(self) -> None:
        key = self.idempotency_key
        _text("idempotency_key", key, MAX_KEY_CHARS)
        if not _KEY_RE.fullmatch(key):
            raise DeliveryFieldError(
                "idempotency_key", "must be visible ASCII without spaces (it is an HTTP header)"
            )
        _choice("channel", self.channel, CHANNELS)
        _text("to", self.to, _MAX_EMAIL_CHARS)
        _recipient(self.channel, self.to)
        for name in ("brand_id", "subscriber_id", "journey", "step"):
            _text(name, getattr(self, name), MAX_ID_CHARS)
        _text("body", self.body, MAX_BODY_CHARS)
        _choice("message_class", self.message_class, MESSAGE_CLASSES)
        _sent_at(self.sent_at)
        _timezone(self.subscriber_timezone)

    def to_json(self) -> bytes:
        """The webhook body: compact JSON, fields in contract order, ``sent_at`` ending in Z."""
        return _ENCODER.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> Delivery:
        """Parse and validate a webhook body.

        Raises:
            DeliveryFieldError: malformed JSON, or a field that is missing, unknown, of the
                wrong type or out of range (``field`` names it).
        """
        try:
            return _DECODER.decode(data)
        except msgspec.ValidationError as exc:
            raise _field_error(exc) from None
        except msgspec.DecodeError as exc:
            raise DeliveryFieldError("", f"malformed JSON: {exc}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Delivery:
        """Build a delivery from JSON-like values (``sent_at`` as an ISO-8601 string).

        Raises:
            DeliveryFieldError: as :meth:`from_json`.
        """
        try:
            return msgspec.convert(data, type=cls)
        except msgspec.ValidationError as exc:
            raise _field_error(exc) from None

    def to_dict(self) -> dict[str, Any]:
        """The webhook body as JSON-ready builtins (``sent_at`` as an ISO-8601 string)."""
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result

    def content(self) -> tuple[object, ...]:
        """The values idempotency compares: every field of :data:`CONTENT_FIELDS`, in order."""
        return tuple(getattr(self, name) for name in CONTENT_FIELDS)

    def differing_fields(self, other: Delivery) -> tuple[str, ...]:
        """The content fields (not ``sent_at``) whose values differ from ``other``'s."""
        return tuple(n for n in CONTENT_FIELDS if getattr(self, n) != getattr(other, n))


#: The fields whose values make "the same body" for idempotency: all but ``sent_at``.
CONTENT_FIELDS: tuple[str, ...] = tuple(f for f in Delivery.__struct_fields__ if f != "sent_at")

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Delivery)
_PATH_RE = re.compile(r"`\$\.([A-Za-z_]+)")
_NAMED_RE = re.compile(r"(?:unknown|required) field `([^`]+)`")


def _field_error(exc: msgspec.ValidationError) -> DeliveryFieldError:
    """Turn msgspec's message (or the __post_init__ error it wraps) into a field error."""
    if isinstance(exc.__cause__, DeliveryFieldError):
        return exc.__cause__
    message = str(exc)
    match = _PATH_RE.search(message) or _NAMED_RE.search(message)
    field = match.group(1) if match else ""
    reason = message.split(" - at `", 1)[0]
    return DeliveryFieldError(field, reason)


def mask_recipient(to: str) -> str:
    """``to`` fit for a log line: a number keeps its last 4 digits (2 if short), an address its
    first character and domain."""
    if "@" in to:
        local, _, domain = to.rpartition("@")
        return f"{local[:1]}***@{domain}"
    keep = 4 if len(to) >= 10 else 2
    return "*" * max(len(to) - keep, 1) + to[-keep:]


class Outcome(enum.StrEnum):
    """What became of one send attempt."""

    #: Accepted by the provider (including a replay of an accepted key).
    SENT = "sent"
    #: Not delivered, and retrying under the same key is safe (5xx, timeout, connection error).
    FAILED_RETRYABLE = "failed_retryable"
    #: Will never be delivered as it is (4xx, 409 key reuse, no provider for the channel).
    FAILED_PERMANENT = "failed_permanent"
    #: May or may not have been delivered, and the provider does not de-duplicate retries.
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Receipt:
    """A provider's answer to one :meth:`Provider.send`.

    Attributes:
        outcome: what became of the attempt.
        status_code: the HTTP status, or None when there was none (connection error, a provider
            that is not HTTP).
        provider_message_id: the provider's id for the message, when it gave one.
        detail: a one-line explanation, fit for logs (never the recipient or body in clear).
        replayed: the provider answered from its idempotency ledger: an earlier attempt under
            this key was delivered, and this one was not delivered again.
    """

    outcome: Outcome
    status_code: int | None
    provider_message_id: str | None
    detail: str
    replayed: bool = False


class Provider(AsyncClosable):
    """Sends deliveries on one or more channels.

    Delivery guarantee: a provider that honours idempotency keys (the webhook contract, the
    embedded gateway, :class:`~keylane.providers.memory.MemoryProvider`) delivers each key at
    most once; retrying a ``FAILED_RETRYABLE`` under the same key is then safe. Concurrent
    :meth:`send` calls are allowed.
    """

    async def send(self, delivery: Delivery) -> Receipt:
        """Attempt one delivery.

        Delivery failures are outcomes, never exceptions.

        Raises:
            InvalidArgumentError: ``delivery`` is not a :class:`Delivery`.
        """
        if not isinstance(delivery, Delivery):
            raise InvalidArgumentError(
                f"delivery must be a Delivery, not {type(delivery).__name__}"
            )
        return await self._send(delivery)

    @abc.abstractmethod
    async def _send(self, delivery: Delivery) -> Receipt:
        """Deliver a validated delivery (see :meth:`send`)."""


class ChannelRouter(Provider):
    """Routes each delivery to the provider of its channel (say an sms and an email webhook).

    A channel without a provider is ``FAILED_PERMANENT``. :meth:`close` closes every provider
    once, even one that serves several channels.
    """

    def __init__(self, providers: Mapping[str, Provider]) -> None:
        """Args:
            providers: channel (``"sms"``, ``"email"``) to provider.

        Raises:
            InvalidArgumentError: an unknown channel, a value that is not a Provider, or none.
        """
        if not providers:
            raise InvalidArgumentError("ChannelRouter needs at least one channel's provider")
        for channel, provider in providers.items():
            if channel not in CHANNELS:
                raise InvalidArgumentError(
                    f"ChannelRouter channel must be one of {', '.join(CHANNELS)}; got {channel!r}"
                )
            if not isinstance(provider, Provider):
                raise InvalidArgumentError(
                    f"ChannelRouter[{channel!r}] must be a Provider, not {type(provider).__name__}"
                )
        self._providers = dict(providers)

    async def _send(self, delivery: Delivery) -> Receipt:
        provider = self._providers.get(delivery.channel)
        if provider is None:
            configured = ", ".join(sorted(self._providers))
            return Receipt(
                Outcome.FAILED_PERMANENT,
                None,
                None,
                f"no provider for channel {delivery.channel!r} (configured: {configured})",
            )
        return await provider.send(delivery)

    async def close(self) -> None:
        closed: list[Provider] = []
        for provider in self._providers.values():
            if not any(provider is done for done in closed):
                closed.append(provider)
                await provider.close()
