"""Results of a comparison run: one :class:`StrategyResult` per strategy, and their JSON form.

Imports no backend and no rich.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from keylane.compare.stats import LatencySummary, summarize

__all__ = ["CompareResult", "StrategyResult", "throughput"]


def throughput(completions: int, seconds: float) -> float:
    """``completions / seconds``, or NaN when the phase had no length (nothing was measured)."""
    return completions / seconds if seconds > 0 else math.nan


def _round(value: float, digits: int = 3) -> float | None:
    return None if math.isnan(value) else round(value, digits)


@dataclass(frozen=True, slots=True)
class StrategyResult:
    """What one strategy did on the workload.

    Attributes:
        throughput: successful completions per second during the measured phase.
        latency: publish -> first success, every event of the run.
        others: with the stuck-key scenario, the same for every user but the stuck one.
        stuck: with the stuck-key scenario, the stuck user's events.
        exclusivity_violations .. duplicates: the checker's exact counts. ``order_violations``
            uses the checker's default rule: reorderings that a redelivery explains are not
            violations; they are counted in ``excused_reorders``, which is not an anomaly.
        unfinished: events still outstanding when the drain ended (0 when ``drained``); the
            checker counts them as lost messages.
        stats: the strategy's own counters (acks, nacks, lock contention...).
        skipped: why the strategy did not run (then every number is meaningless).
    """

    name: str
    summary: str
    throughput: float = math.nan
    latency: LatencySummary = field(default_factory=lambda: summarize([]))
    others: LatencySummary | None = None
    stuck: LatencySummary | None = None
    exclusivity_violations: int = 0
    lost_updates: int = 0
    order_violations: int = 0
    excused_reorders: int = 0
    lost_messages: int = 0
    duplicates: int = 0
    published: int = 0
    completed: int = 0
    unfinished: int = 0
    drained: bool = True
    elapsed: float = 0.0
    stats: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None

    @classmethod
    def skip(cls, name: str, reason: str) -> StrategyResult:
        """A result for a strategy that could not run."""
        from keylane.compare.strategies import STRATEGIES

        return cls(name=name, summary=STRATEGIES[name].summary, skipped=reason, drained=False)

    @property
    def correct(self) -> bool:
        """No anomaly of any kind (and it ran)."""
        return self.skipped is None and not (
            self.exclusivity_violations
            or self.lost_updates
            or self.order_violations
            or self.lost_messages
            or self.duplicates
        )

    def to_json(self) -> dict[str, object]:
        """The ``--json`` entry of this strategy."""
        if self.skipped is not None:
            return {"skipped": self.skipped}
        data: dict[str, object] = {
            "throughput": _round(self.throughput, 1),
            "p50_ms": _round(self.latency.p50_ms),
            "p99_ms": _round(self.latency.p99_ms),
            "max_ms": _round(self.latency.max_ms),
            "exclusivity_violations": self.exclusivity_violations,
            "lost_updates": self.lost_updates,
            "order_violations": self.order_violations,
            "excused_reorders": self.excused_reorders,
            "lost_messages": self.lost_messages,
            "duplicates": self.duplicates,
            "published": self.published,
            "completed": self.completed,
            "unfinished": self.unfinished,
            "drained": self.drained,
            "elapsed_s": round(self.elapsed, 2),
            "stats": dict(self.stats),
        }
        if self.others is not None:
            data["others_p99_ms"] = _round(self.others.p99_ms)
            data["others_p50_ms"] = _round(self.others.p50_ms)
        if self.stuck is not None:
            data["stuck_key_max_ms"] = _round(self.stuck.max_ms)
        return data


@dataclass(frozen=True, slots=True)
class CompareResult:
    """Every strategy's result plus the workload description."""

    results: list[StrategyResult]
    workload: dict[str, object]
    stuck: bool = False

    def get(self, name: str) -> StrategyResult | None:
        """The result of strategy ``name`` if it ran (not skipped)."""
        for result in self.results:
            if result.name == name and result.skipped is None:
                return result
        return None

    def ratios(self) -> dict[str, float]:
        """Headline ratios of ``key-shared-lanes`` against the others (those that ran)."""
        lanes = self.get("key-shared-lanes")
        ratios: dict[str, float] = {}
        if lanes is None:
            return ratios
        serial = self.get("key-shared-serial")
        lock = self.get("shared-lock")
        failover = self.get("failover")
        if serial is not None and serial.throughput > 0:
            ratios["lanes_vs_serial_throughput"] = lanes.throughput / serial.throughput
        if failover is not None and failover.throughput > 0:
            ratios["lanes_vs_failover_throughput"] = lanes.throughput / failover.throughput
        if lock is not None:
            if lock.throughput > 0:
                ratios["lanes_vs_lock_throughput"] = lanes.throughput / lock.throughput
            if lock.latency.p99_ms > 0:
                ratios["lanes_vs_lock_p99"] = lanes.latency.p99_ms / lock.latency.p99_ms
        return {key: value for key, value in ratios.items() if not math.isnan(value)}

    def to_json(self) -> dict[str, object]:
        """The ``--json`` document."""
        return {
            "strategies": {result.name: result.to_json() for result in self.results},
            "workload": dict(self.workload),
            "ratios": {key: round(value, 4) for key, value in self.ratios().items()},
        }
