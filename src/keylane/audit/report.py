"""The audit's values: :class:`ConsentChange` (input), :class:`Violation` and
:class:`ComplianceReport` (output).

Imports the standard library and :mod:`keylane.errors` only.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keylane.errors import InvalidArgumentError

__all__ = ["ComplianceReport", "ConsentChange", "Violation", "ViolationKind"]


class ViolationKind(enum.StrEnum):
    """What a delivered message broke."""

    #: A marketing message outside its recipient's allowed local window (in some candidate zone).
    QUIET_HOURS = "quiet_hours"
    #: A marketing message over a frequency cap in some rolling window.
    FREQUENCY_CAP = "frequency_cap"
    #: A message to a subscriber whose latest consent change was an opt-out (other than the one
    #: STOP confirmation of that opt-out).
    AFTER_OPT_OUT = "after_opt_out"
    #: A second (or later) delivery of one idempotency key.
    DUPLICATE = "duplicate"


def _aware(name: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidArgumentError(f"{name}: must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """An opt-out or opt-in of one subscriber, at the engine's decision time.

    Attributes:
        key: the subscriber key, ``"<brand_id>:<subscriber_id>"``.
        at: when the engine decided it (timezone-aware; stored in UTC).
        opted_in: True for an opt-in (START, a new subscription), False for an opt-out (STOP).
    """

    key: str
    at: datetime
    opted_in: bool

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or ":" not in self.key:
            raise InvalidArgumentError(
                f"key: must be a subscriber key '<brand_id>:<subscriber_id>', got {self.key!r}"
            )
        object.__setattr__(self, "at", _aware("at", self.at))
        if not isinstance(self.opted_in, bool):
            raise InvalidArgumentError(f"opted_in: must be a bool, got {self.opted_in!r}")


@dataclass(frozen=True, slots=True)
class Violation:
    """One delivered message that broke a rule.

    Attributes:
        kind: the rule.
        idempotency_key: the delivery's key.
        key: the subscriber key.
        to: the recipient, masked for logs and reports.
        channel: ``sms`` or ``email``.
        journey: the journey that sent it; ``step`` its step.
        sent_at: the delivery's ``sent_at``.
        detail: what exactly was wrong, e.g. ``20:30:00 in America/New_York is outside
            [08:00, 20:00) (federal ∩ FL ∩ brand)``.
    """

    kind: ViolationKind
    idempotency_key: str
    key: str
    to: str
    channel: str
    journey: str
    step: str
    sent_at: datetime
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """The violation as JSON values."""
        return {
            "kind": self.kind.value,
            "idempotency_key": self.idempotency_key,
            "key": self.key,
            "to": self.to,
            "channel": self.channel,
            "journey": self.journey,
            "step": self.step,
            "sent_at": self.sent_at.isoformat().replace("+00:00", "Z"),
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    """What the audit of a delivery log found.

    Attributes:
        deliveries: delivery records checked.
        marketing: how many of them were marketing (quiet hours and caps apply to those).
        counts: violations per kind (every kind present, 0 when none).
        examples: up to the audit's ``max_examples`` violations per kind, earliest first.
        audited_at: the ``now`` the audit was given, if any.
    """

    deliveries: int
    marketing: int
    counts: Mapping[str, int]
    examples: Mapping[str, tuple[Violation, ...]] = field(default_factory=dict)
    audited_at: datetime | None = None

    @property
    def total(self) -> int:
        """Violations of every kind."""
        return sum(self.counts.values())

    @property
    def clean(self) -> bool:
        """True when no delivered message broke any rule."""
        return self.total == 0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON values."""
        return {
            "clean": self.clean,
            "total": self.total,
            "deliveries": self.deliveries,
            "marketing": self.marketing,
            "counts": dict(self.counts),
            "examples": {k: [v.to_dict() for v in vs] for k, vs in self.examples.items() if vs},
            "audited_at": None
            if self.audited_at is None
            else self.audited_at.isoformat().replace("+00:00", "Z"),
        }

    def to_json(self) -> str:
        """The report as a JSON document."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
