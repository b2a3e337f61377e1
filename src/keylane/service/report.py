"""The report of ``keylane run``: what the simulated day did, and the three independent verdicts.

- the embedded gateway's duplicate deliveries (its own log: the same idempotency key twice);
- the compliance audit of every delivered message (quiet hours in the recipient's zone, caps
  over rolling windows, sends after an opt-out), re-derived from the gateway's log;
- the history checker's verdict on the decisions (committed once each, in publish order, no
  interleaved commits, nothing lost).

Values only; rendering is the CLI's (:mod:`keylane.cli.render.run`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from keylane.audit import ComplianceReport
from keylane.check import Report

__all__ = ["RunReport", "percentile"]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values`` by nearest rank; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


@dataclass(frozen=True, slots=True)
class RunReport:
    """Everything ``keylane run`` measured.

    Attributes:
        wall_seconds: real time of the run; ``simulated_hours`` the simulated time it covered.
        events: events published; ``published_late_max`` how far behind the clock the
            publisher fell at worst (simulated seconds).
        decisions: handler attempts by outcome (``ok`` = committed, ``dedupe``, ``fenced``, ...).
        events_by_type: committed decisions by event type.
        sends_created: send intents committed, by channel.
        deliveries: messages the gateway delivered, by channel and by journey.
        skips: why messages did not go out (or not at once), by reason: the decisions'
            (``skipped_*``, ``deferred_quiet_hours``) and the relay's dispatch-time re-check.
        reasons: every reason code of the committed decisions.
        relay: the relay's outcomes.
        timers_fired, timer_lateness_p50/p99/max: timers fired and their lateness (simulated
            seconds after the due time); ``timers_armed_at_end`` still armed when the run ended.
        dead_lettered: events that could not be decided (malformed), sent to the DLQ.
        duplicate_deliveries: the gateway's count; must be 0.
        compliance: the audit of the gateway's log; ``compliance.total`` must be 0.
        checker: the history checker's report (None without a history).
        events_per_second: events decided per wall second.
        data_dir, gateway_url, store_url: where the run kept its files and ran.
    """

    wall_seconds: float
    simulated_hours: float
    events: int
    published_late_max: float
    decisions: dict[str, int]
    events_by_type: dict[str, int]
    sends_created: dict[str, int]
    deliveries: dict[str, dict[str, int]]
    skips: dict[str, int]
    reasons: dict[str, int]
    relay: dict[str, int]
    timers_fired: int
    timer_lateness_p50: float
    timer_lateness_p99: float
    timer_lateness_max: float
    timers_armed_at_end: int
    dead_lettered: int
    duplicate_deliveries: int
    compliance: ComplianceReport
    checker: Report | None
    events_per_second: float
    data_dir: str
    gateway_url: str | None
    store_url: str
    group_commit_mean_batch: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """0 duplicate deliveries, 0 compliance violations and a clean checker verdict."""
        checker_ok = self.checker is None or self.checker.clean
        return self.duplicate_deliveries == 0 and self.compliance.total == 0 and checker_ok

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the whole report."""
        out = {
            name: getattr(self, name)
            for name in (
                "wall_seconds",
                "simulated_hours",
                "events",
                "published_late_max",
                "decisions",
                "events_by_type",
                "sends_created",
                "deliveries",
                "skips",
                "reasons",
                "relay",
                "timers_fired",
                "timer_lateness_p50",
                "timer_lateness_p99",
                "timer_lateness_max",
                "timers_armed_at_end",
                "dead_lettered",
                "duplicate_deliveries",
                "events_per_second",
                "data_dir",
                "gateway_url",
                "store_url",
                "group_commit_mean_batch",
            )
        }
        out = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}
        out["ok"] = self.ok
        out["compliance"] = self.compliance.to_dict()
        out["checker"] = None if self.checker is None else self.checker.to_json()
        out["notes"] = list(self.notes)
        return out
