"""Latency summaries: nearest-rank percentiles over a run's samples. Imports no backend."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from keylane.errors import InvalidArgumentError

__all__ = ["LatencySummary", "percentile", "summarize"]


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of an ascending list; NaN for an empty one.

    Raises:
        InvalidArgumentError: ``q`` outside [0, 100].
    """
    if not 0 <= q <= 100:
        raise InvalidArgumentError(f"percentile must be in [0, 100], got {q}")
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """p50, p99 and max of a set of latencies, in milliseconds (NaN when there were none)."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    def to_json(self) -> dict[str, float | int | None]:
        """JSON-ready dict; NaN becomes None."""

        def clean(value: float) -> float | None:
            return None if math.isnan(value) else round(value, 3)

        return {
            "count": self.count,
            "p50_ms": clean(self.p50_ms),
            "p99_ms": clean(self.p99_ms),
            "max_ms": clean(self.max_ms),
        }


def summarize(latencies_s: Iterable[float]) -> LatencySummary:
    """Summarize latencies given in seconds."""
    ordered = sorted(latencies_s)
    if not ordered:
        return LatencySummary(0, math.nan, math.nan, math.nan)
    return LatencySummary(
        count=len(ordered),
        p50_ms=percentile(ordered, 50) * 1000,
        p99_ms=percentile(ordered, 99) * 1000,
        max_ms=ordered[-1] * 1000,
    )
