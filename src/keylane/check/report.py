"""The checker's result: exact counts of each anomaly, a few examples of each, and totals.

The anomalies are defined in :mod:`keylane.check.checker` and ``docs/checker.md``.

This module imports only the standard library and :mod:`keylane.check.records`; no backend.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from keylane.check.decisions import DecisionReport
from keylane.check.records import Attempt

__all__ = [
    "Duplicate",
    "ExclusivityViolation",
    "LostMessage",
    "LostUpdate",
    "OrderViolation",
    "Report",
    "Totals",
]


@dataclass(frozen=True, slots=True)
class ExclusivityViolation:
    """Two attempts for one key that ran at the same time (``first`` started first)."""

    key: str
    first: Attempt
    second: Attempt


@dataclass(frozen=True, slots=True)
class OrderViolation:
    """A message (``seq``) that completed before an earlier message of its key (``overtaken_seq``).

    Times are the ends of each message's first successful attempt.
    """

    key: str
    seq: int
    message_id: str
    completed: float
    overtaken_seq: int
    overtaken_message_id: str
    overtaken_completed: float


@dataclass(frozen=True, slots=True)
class LostMessage:
    """A published message that never completed successfully."""

    key: str
    seq: int
    message_id: str
    attempts: int
    last_outcome: str | None


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A message that completed successfully more than once."""

    key: str
    seq: int
    message_id: str
    completions: int
    consumers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LostUpdate:
    """A key whose final counter is below its number of successful completions."""

    key: str
    completions: int
    counter: int

    @property
    def lost(self) -> int:
        """How many completions left no trace in the counter."""
        return max(0, self.completions - self.counter)


@dataclass(frozen=True, slots=True)
class Totals:
    """What the history contained."""

    attempts: int = 0
    messages: int = 0
    published: int = 0
    keys: int = 0
    consumers: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    skipped_lines: int = 0


@dataclass(frozen=True, slots=True)
class Report:
    """Result of :func:`keylane.check.check`.

    The ``*_count`` attributes (and :meth:`counts`) are exact; the lists hold at most
    ``max_examples`` examples each, earliest first.

    Attributes:
        exclusivity_count: pairs of overlapping attempts of one key.
        order_count: messages that overtook an earlier message of their key without excuse.
        excused_order_count: messages that overtook only earlier messages that were redelivered.
        lost_count: published messages that never completed successfully.
        duplicate_count: messages that completed successfully more than once (redelivered
            duplicates excluded).
        redelivered_duplicate_count: messages that completed more than once where every success
            after the first ran on a broker redelivery (``redelivery_count`` > 0); not anomalies.
        lost_updates: sum over keys of ``max(0, completions - counter)``; ``None`` when no
            counters were given.
        strict_order: whether redeliveries were not accepted as an excuse.
        decisions: the checks of committed decisions, for a decision history (keylane's
            runtime); then overlapping attempts (``exclusivity_count``) are reported but are not
            an anomaly, only overlapping *commits* are. ``None`` for other histories.
    """

    exclusivity_count: int = 0
    order_count: int = 0
    excused_order_count: int = 0
    lost_count: int = 0
    duplicate_count: int = 0
    redelivered_duplicate_count: int = 0
    lost_updates: int | None = None
    exclusivity_violations: list[ExclusivityViolation] = field(default_factory=list)
    order_violations: list[OrderViolation] = field(default_factory=list)
    excused_order: list[OrderViolation] = field(default_factory=list)
    lost_messages: list[LostMessage] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    redelivered_duplicates: list[Duplicate] = field(default_factory=list)
    lost_update_examples: list[LostUpdate] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)
    strict_order: bool = False
    decisions: DecisionReport | None = None

    @property
    def clean(self) -> bool:
        """True when no anomaly was found (excused reorderings and redelivered duplicates are
        not anomalies; in a decision history neither are overlapping attempts)."""
        if self.decisions is not None and not self.decisions.clean:
            return False
        exclusivity = self.exclusivity_count if self.decisions is None else 0
        return not (
            exclusivity
            or self.order_count
            or self.lost_count
            or self.duplicate_count
            or self.lost_updates
        )

    def counts(self) -> dict[str, int | None]:
        """The exact count of each kind; ``lost_updates`` is ``None`` when not checked."""
        return {
            "exclusivity_violations": self.exclusivity_count,
            "order_violations": self.order_count,
            "excused_order": self.excused_order_count,
            "lost_messages": self.lost_count,
            "duplicates": self.duplicate_count,
            "redelivered_duplicates": self.redelivered_duplicate_count,
            "lost_updates": self.lost_updates,
        }

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict: ``clean``, the counts at top level, ``totals`` and ``examples``."""
        examples: dict[str, list[dict[str, object]]] = {
            "exclusivity_violations": [asdict(e) for e in self.exclusivity_violations],
            "order_violations": [asdict(e) for e in self.order_violations],
            "excused_order": [asdict(e) for e in self.excused_order],
            "lost_messages": [asdict(e) for e in self.lost_messages],
            "duplicates": [{**asdict(e), "consumers": list(e.consumers)} for e in self.duplicates],
            "redelivered_duplicates": [
                {**asdict(e), "consumers": list(e.consumers)} for e in self.redelivered_duplicates
            ],
            "lost_updates": [{**asdict(e), "lost": e.lost} for e in self.lost_update_examples],
        }
        out: dict[str, object] = {
            "clean": self.clean,
            **self.counts(),
            "strict_order": self.strict_order,
            "totals": asdict(self.totals),
            "examples": examples,
        }
        if self.decisions is not None:
            out["decisions"] = {
                **self.decisions.counts(),
                "examples": [
                    {"kind": e.kind, "key": e.key, "detail": e.detail,
                     "attempts": [asdict(a) for a in e.attempts]}
                    for e in self.decisions.examples
                ],
            }  # fmt: skip
        return out
