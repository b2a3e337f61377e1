"""The compiled journeys: journeys, their steps, brand settings and conditions.

These are what :mod:`.loader` builds from a journeys file and what :mod:`.engine` runs. They are
immutable values; durations are in milliseconds, local times of day in minutes after midnight.

Imports the domain's policies and templates only.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keylane.journeys.events import EventType
from keylane.journeys.policies.caps import CapRule
from keylane.journeys.policies.quiet_hours import Window
from keylane.journeys.templates import Template

__all__ = [
    "Branch",
    "BrandConfig",
    "Channel",
    "Clause",
    "Exit",
    "Journey",
    "JourneySet",
    "MessageClass",
    "Send",
    "Step",
    "Trigger",
    "Wait",
    "WaitFor",
]

#: The target name that ends a run without an explicit ``exit`` step.
EXIT = "exit"


class Channel(enum.StrEnum):
    """Where a message goes."""

    SMS = "sms"
    EMAIL = "email"


class MessageClass(enum.StrEnum):
    """Marketing messages obey consent, quiet hours and caps; transactional ones are exempt."""

    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"


def _in(value: Any, expected: Any) -> bool:
    return bool(value in expected)


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
    "in": _in,
}
OPERATORS = frozenset({*_OPERATORS, "exists"})


@dataclass(frozen=True, slots=True)
class Clause:
    """One test: ``<source>.<key> <op> <value>``.

    ``source`` is ``props`` (the event's properties, for filters) or one of ``event``,
    ``trigger``, ``profile``, ``state`` (branch conditions). A missing value fails every
    operator except ``exists = false``; a type mismatch (``"a" < 1``) fails the clause.
    """

    source: str
    key: str
    op: str
    value: Any

    def test(self, scope: Mapping[str, Any]) -> bool:
        """Evaluate against ``scope`` (the mapping of ``source``)."""
        present = self.key in scope
        if self.op == "exists":
            return present is bool(self.value)
        if not present:
            return False
        try:
            return _OPERATORS[self.op](scope[self.key], self.value)
        except TypeError:
            return False


def all_match(clauses: tuple[Clause, ...], scopes: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when every clause holds (an empty tuple always holds)."""
    return all(clause.test(scopes.get(clause.source, {})) for clause in clauses)


@dataclass(frozen=True, slots=True)
class Trigger:
    """Start a run on ``event`` whose properties pass ``where``."""

    id: str
    event: EventType
    where: tuple[Clause, ...]
    next: str


@dataclass(frozen=True, slots=True)
class Wait:
    """Wait ``duration_ms``, or until local time ``until_minute`` in the recipient's zone."""

    id: str
    duration_ms: int | None
    until_minute: int | None
    next: str


@dataclass(frozen=True, slots=True)
class WaitFor:
    """Wait for ``event`` (passing ``where``; ``match`` keys equal to the trigger's) or time out."""

    id: str
    event: EventType
    where: tuple[Clause, ...]
    match: tuple[str, ...]
    timeout_ms: int
    on_arrived: str
    on_timeout: str


@dataclass(frozen=True, slots=True)
class Branch:
    """Go to ``then`` when every clause of ``condition`` holds, else to ``otherwise``."""

    id: str
    condition: tuple[Clause, ...]
    then: str
    otherwise: str


@dataclass(frozen=True, slots=True)
class Send:
    """Send a rendered message, then go to ``next`` (also when the send is skipped)."""

    id: str
    channel: Channel
    message_class: MessageClass
    template: Template
    subject: Template | None
    next: str


@dataclass(frozen=True, slots=True)
class Exit:
    """End the run."""

    id: str


Step = Trigger | Wait | WaitFor | Branch | Send | Exit


@dataclass(frozen=True, slots=True)
class Journey:
    """One journey.

    Attributes:
        name: its name (``[a-z][a-z0-9_]*``).
        trigger: the first step.
        steps: every step by id, the trigger included.
        goals: event types that end an active run (``exited_goal``).
        min_interval_ms: the least time between two run starts for one subscriber.
        restart: a trigger while a run is active restarts it (else it is ignored).
        max_lateness_ms: how late after its intended time a send may still go (else ``stale``).
        trigger_keys: the trigger properties a run keeps (named by templates, conditions, match).
    """

    name: str
    trigger: Trigger
    steps: Mapping[str, Step]
    goals: frozenset[EventType]
    min_interval_ms: int
    restart: bool
    max_lateness_ms: int
    trigger_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BrandConfig:
    """A brand's settings: name, default zones, windows, caps and keyword replies."""

    name: str
    timezones: tuple[str, ...]
    sms_window: Window
    email_window: Window
    jitter_s: int
    sms_caps: tuple[CapRule, ...]
    email_caps: tuple[CapRule, ...]
    help_reply: Template
    stop_reply: Template
    start_reply: Template


@dataclass(frozen=True, slots=True)
class JourneySet:
    """Every journey of a journeys file, indexed for the engine.

    Attributes:
        source: where it was loaded from (for messages).
        journeys: by name, in file order.
        default_brand: settings for brands without their own ``[brands.<id>]`` table.
        brands: per-brand settings.
    """

    source: str
    journeys: Mapping[str, Journey]
    default_brand: BrandConfig
    brands: Mapping[str, BrandConfig] = field(default_factory=dict)
    by_trigger: Mapping[EventType, tuple[Journey, ...]] = field(init=False)
    by_goal: Mapping[EventType, tuple[Journey, ...]] = field(init=False)
    waited_for: frozenset[EventType] = field(init=False)
    cap_horizon_ms: int = field(init=False)

    def __post_init__(self) -> None:
        by_trigger: dict[EventType, list[Journey]] = {}
        by_goal: dict[EventType, list[Journey]] = {}
        waited: set[EventType] = set()
        for journey in self.journeys.values():
            by_trigger.setdefault(journey.trigger.event, []).append(journey)
            for goal in journey.goals:
                by_goal.setdefault(goal, []).append(journey)
            waited.update(s.event for s in journey.steps.values() if isinstance(s, WaitFor))
        object.__setattr__(self, "by_trigger", {k: tuple(v) for k, v in by_trigger.items()})
        object.__setattr__(self, "by_goal", {k: tuple(v) for k, v in by_goal.items()})
        object.__setattr__(self, "waited_for", frozenset(waited))
        windows = [
            rule.window_ms
            for brand in (self.default_brand, *self.brands.values())
            for rule in (*brand.sms_caps, *brand.email_caps)
        ]
        object.__setattr__(self, "cap_horizon_ms", max([86_400_000, *windows]))

    def brand(self, brand_id: str) -> BrandConfig:
        """The settings of ``brand_id`` (its own table, else the defaults)."""
        return self.brands.get(brand_id, self.default_brand)

    def __contains__(self, name: object) -> bool:
        return name in self.journeys
