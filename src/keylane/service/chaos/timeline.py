"""Completions over time: who decided which key when, while the run goes, and recovery times after.

:class:`HistoryTail` follows the workers' history files as they grow (the harness asks it which
keys a worker owns right now, and whether everything published was decided).
:func:`longest_gap` and :func:`owned_keys` are the pure parts of the recovery times: the
recovery time of a fault is the longest gap in the affected completions (the keys the faulted
worker owned, or every key) from the last completion before the fault to ``horizon`` seconds
after it ended. :func:`per_second` bins times for the plot.

Imports the standard library and the checker's records.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Completion",
    "Gap",
    "GatewayEvent",
    "HistoryTail",
    "completion_gap",
    "gateway_recovery",
    "longest_gap",
    "owned_keys",
    "per_second",
]


@dataclass(frozen=True, slots=True)
class Completion:
    """A committed decision: ``key`` by ``consumer`` at ``time`` (the commit's monotonic time)."""

    time: float
    key: str
    consumer: str


@dataclass(frozen=True, slots=True)
class Gap:
    """The longest pause in a stream of completions: from ``start`` to ``end`` (``end - start``)."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        """Its length."""
        return self.end - self.start


def longest_gap(times: Sequence[float], start: float, end: float) -> Gap | None:
    """The longest gap between consecutive ``times`` (sorted) that ends after ``start``.

    The gap may begin before ``start`` (at the last time before it); only times up to ``end``
    count. None when no time falls in ``(start, end]`` (the stream did not resume).
    """
    first = bisect.bisect_right(times, start)
    last = bisect.bisect_right(times, end)
    if first >= last:
        return None
    previous = times[first - 1] if first > 0 else start
    best = Gap(previous, times[first])
    for i in range(first + 1, last):
        if times[i] - times[i - 1] > best.seconds:
            best = Gap(times[i - 1], times[i])
    return best


def owned_keys(
    completions: Iterable[Completion], worker: str, at: float, window: float = 15.0
) -> set[str]:
    """Keys whose latest completion in ``[at - window, at]`` was by a consumer of ``worker``."""
    latest: dict[str, Completion] = {}
    for c in completions:
        if at - window <= c.time <= at:
            seen = latest.get(c.key)
            if seen is None or c.time > seen.time:
                latest[c.key] = c
    prefix = f"{worker}-"
    return {key for key, c in latest.items() if c.consumer.startswith(prefix)}


def per_second(times: Iterable[float], origin: float) -> Counter[int]:
    """How many ``times`` fall in each whole second after ``origin``."""
    return Counter(int(t - origin) for t in times if t >= origin)


@dataclass
class HistoryTail:
    """Follows history files as they grow; collects completions and decided message ids."""

    paths: list[Path] = field(default_factory=list)
    completions: list[Completion] = field(default_factory=list)
    decided: set[str] = field(default_factory=set)
    _offsets: dict[Path, int] = field(default_factory=dict)

    def follow(self, path: Path) -> None:
        """Also follow ``path`` (a new worker's file); a path already followed is ignored."""
        if path not in self._offsets:
            self.paths.append(path)
            self._offsets[path] = 0

    def poll(self) -> None:
        """Read what the files gained since the last poll (whole lines only)."""
        for path in self.paths:
            try:
                with open(path, "rb") as file:
                    file.seek(self._offsets[path])
                    data = file.read()
            except FileNotFoundError:
                continue
            end = data.rfind(b"\n") + 1
            self._offsets[path] += end
            for raw in data[:end].splitlines():
                self._take(raw)

    def _take(self, raw: bytes) -> None:
        try:
            record = json.loads(raw)
        except ValueError:
            return  # a line cut short by kill -9
        if not isinstance(record, dict):
            return
        outcome = record.get("outcome")
        if outcome in ("ok", "dedupe"):
            self.decided.add(str(record.get("message_id")))
        if outcome == "ok":
            when = record.get("committed") or record.get("end")
            if isinstance(when, int | float):
                self.completions.append(
                    Completion(float(when), str(record.get("key")), str(record.get("consumer")))
                )

    def keys_of(self, worker: str, at: float, window: float = 5.0) -> set[str]:
        """Keys ``worker`` decided last among the completions of the last ``window`` seconds."""
        self.poll()
        return owned_keys(self.completions, worker, at, window)


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """A gateway log record that matters for recovery: a fault or a delivery (or replay)."""

    time: float
    idempotency_key: str
    fault: bool


def gateway_recovery(events: Sequence[GatewayEvent], start: float, end: float) -> float | None:
    """Seconds from ``end`` until every key failed in ``[start, end]`` was delivered or replayed.

    0 when nothing failed in the window, or everything was answered by ``end``; None when some
    failed key was never delivered afterwards.
    """
    failed: dict[str, float] = {}
    for e in events:
        if e.fault and start <= e.time <= end + 1.0:
            failed[e.idempotency_key] = max(e.time, failed.get(e.idempotency_key, e.time))
    latest = end
    for key, last_fault in failed.items():
        answered = [e.time for e in events if not e.fault and e.idempotency_key == key]
        after = [t for t in answered if t >= last_fault]
        if not after:
            return None
        latest = max(latest, min(after))
    return latest - end


def completion_gap(
    completions: Sequence[Completion],
    start: float,
    end: float,
    *,
    keys: set[str] | None = None,
) -> Gap | None:
    """The longest gap in the completions (of ``keys``, or of all) ending in ``(start, end]``."""
    times = sorted(c.time for c in completions if keys is None or c.key in keys)
    return longest_gap(times, start, end)
